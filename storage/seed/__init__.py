"""Deterministic, realistic demo data, written fast (``taskops seed-demo``, benchmarks).

``seed_demo`` appends ``tasks`` tasks spread over the 30 days before ``now`` with about
``events_per_task`` events each. The same ``seed`` and ``now`` on an empty store give the
same rows, byte for byte.

What the data looks like:

* every status and trigger, mostly completed, some failed, a few paused; running tasks
  only among the newest (at most 20 running, 10 paused, whatever the size), a few of
  them never started; a few failed tasks were killed before they started;
* seven provider/model pairs plus tasks on the task default (``used_default`` with the
  pair ``[tasks] default_provider/default_model`` resolves to); ``local/llama-3.1-70b``
  has no price, so its cost is NULL;
* names and prompts full of HTML-hostile text (``<``, ``>``, ``&``, quotes, emoji, Arabic
  and Hebrew), a few 200-character names and multi-KB prompts; cronjob tasks repeat a
  handful of cronjob names; some user tasks are restarts of earlier failed tasks;
* parent sessions of the platform's web chat only: demo results are never sent to a
  Telegram chat;
* per task a plausible timeline (``history``), with exactly the payloads and derived
  columns the store writes (``storage.rules``).

Speed: rows are generated from precomputed pools and written with the driver's bulk
path inside one transaction per chunk — ``executemany`` on SQLite, binary ``COPY`` on
PostgreSQL — with explicit ids continuing after the current maximum. Seeding is meant for
a quiet store: concurrent writers would race for the same ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from taskops.storage import list_indexes
from taskops.storage.models import UTCDateTime
from taskops.storage.seed.history import EVENT_COLUMNS, TASK_COLUMNS, Generator, Row
from taskops.storage.store import TaskStore

CHUNK_TASKS = 10_000


@dataclass(frozen=True)
class SeedReport:
    tasks: int
    events: int
    seconds: float
    #: Seconds per phase (generate, write, indexes, counts, analyze), so that a slow
    #: seed says where its time went.
    phases: dict[str, float] = field(default_factory=dict)

    def describe_phases(self) -> str:
        return ", ".join(f"{name} {seconds:.0f} s" for name, seconds in self.phases.items())


def _sqlite_timestamp(dialect: Dialect) -> Callable[[datetime], Any]:
    """A fast formatter producing exactly what the UTCDateTime column binds on SQLite."""
    bind = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)

    def exact(value: datetime) -> Any:  # the slow path through SQLAlchemy's own types
        aware = value.replace(tzinfo=UTC)
        return bind(aware) if bind else aware

    def fast(value: datetime) -> str:
        return value.isoformat(" ", "microseconds")

    samples = (datetime(2026, 11, 20, 12, 0, tzinfo=UTC).replace(tzinfo=None),
               datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC).replace(tzinfo=None))
    return fast if all(fast(s) == exact(s) for s in samples) else exact


def _identity(value: datetime) -> datetime:
    return value


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    return (f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})")


async def _write_chunk(conn: AsyncConnection, is_sqlite: bool, tasks: list[Row],
                       events: list[Row]) -> None:
    if is_sqlite:
        await conn.exec_driver_sql(_insert_sql("tasks", TASK_COLUMNS), tasks)
        if events:
            await conn.exec_driver_sql(_insert_sql("task_events", EVENT_COLUMNS), events)
        return
    # Starts the transaction on the driver connection before COPY runs inside it.
    await conn.execute(text("SET LOCAL synchronous_commit TO OFF"))
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    await raw.copy_records_to_table("tasks", records=tasks, columns=TASK_COLUMNS)
    if events:
        await raw.copy_records_to_table("task_events", records=events, columns=EVENT_COLUMNS)


async def seed_demo(store: TaskStore, tasks: int, seed: int = 0, *, now: datetime | None = None,
                    events_per_task: int = 10,
                    progress: Callable[[int], None] | None = None) -> SeedReport:
    """Append ``tasks`` deterministic demo tasks (see the module docstring)."""
    began = time.perf_counter()
    if tasks < 0:
        raise ValueError("tasks must not be negative")
    now = now or store.clock()
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    engines = store.engines
    is_sqlite = engines.is_sqlite
    written_tasks = written_events = 0
    phases = dict.fromkeys(("generate", "write", "indexes", "counts", "analyze"), 0.0)
    async with engines.write.connect() as conn:
        if is_sqlite:
            # A big page cache keeps the random-order indexes (name, cost, ...) in memory.
            await conn.exec_driver_sql("PRAGMA cache_size=-400000")
            await conn.commit()
        try:
            async with conn.begin():
                max_task = (await conn.execute(text("SELECT coalesce(max(id), 0) FROM tasks"))
                            ).scalar_one()
                max_event = (await conn.execute(text(
                    "SELECT coalesce(max(id), 0) FROM task_events"))).scalar_one()
            timestamp = _sqlite_timestamp(engines.write.dialect) if is_sqlite else _identity
            generator = Generator(store.settings, tasks, seed, now, events_per_task,
                                  int(max_task) + 1, int(max_event) + 1, timestamp,
                                  with_txid=not is_sqlite)
            async with (list_indexes.checks_suspended(conn, tasks),
                        list_indexes.suspended(conn, tasks)):
                while written_tasks < tasks:
                    mark = time.perf_counter()
                    task_rows, event_rows = generator.chunk(CHUNK_TASKS)
                    generated = time.perf_counter()
                    async with conn.begin():
                        await _write_chunk(conn, is_sqlite, task_rows, event_rows)
                    phases["generate"] += generated - mark
                    phases["write"] += time.perf_counter() - generated
                    written_tasks += len(task_rows)
                    written_events += len(event_rows)
                    if progress is not None:
                        progress(written_tasks)
                mark = time.perf_counter()
            phases["indexes"] = time.perf_counter() - mark
            if not is_sqlite and tasks:
                async with conn.begin():
                    for table in ("tasks", "task_events"):
                        await conn.execute(text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))"))
        finally:
            if is_sqlite:
                await conn.exec_driver_sql("PRAGMA cache_size=-2000")
                await conn.commit()
    mark = time.perf_counter()
    await store.rebuild_counts()
    phases["counts"] = time.perf_counter() - mark
    mark = time.perf_counter()
    await _analyze(store)
    phases["analyze"] = time.perf_counter() - mark
    return SeedReport(written_tasks, written_events, time.perf_counter() - began, phases)


async def _analyze(store: TaskStore) -> None:
    """Fresh planner statistics; on PostgreSQL also the visibility map (VACUUM), which
    index-only scans need and which autovacuum would otherwise set later, mid-benchmark."""
    if store.engines.is_sqlite:
        async with store.engines.write.begin() as conn:
            await conn.exec_driver_sql("ANALYZE")
        return
    async with store.engines.write.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.exec_driver_sql("VACUUM (ANALYZE) tasks")
        await auto.exec_driver_sql("VACUUM (ANALYZE) task_events")
        await auto.exec_driver_sql("ANALYZE task_counts")
        await auto.exec_driver_sql("ANALYZE task_totals")
        await auto.exec_driver_sql("ANALYZE task_names")


__all__ = ["SeedReport", "seed_demo"]
