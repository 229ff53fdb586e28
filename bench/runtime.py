"""The worker: kill → run stopped latency, and event throughput (DESIGN.md: kill ≤ 1 s).

    python bench/runtime.py [--db sqlite|postgresql|both] [--only kill|throughput]
                            [--kills 40] [--tasks 200] [--steps 10] [--poll 1.0 0.25]
                            [--pg-fillfactor N] [--seed N]

For each database (a fresh SQLite file under bench/data/, a fresh PostgreSQL database
dropped at the end):

* Kill, in-process: a worker runs a scripted task that waits (``!wait 60``); once its
  first event is stored, ``store.kill_task`` is called and the clock stops when the
  run's asyncio task has finished. Reported: the whole latency, and the part after the
  kill's transaction committed (the worker's own reaction). ``--kills`` samples.
* Kill, cross-process (PostgreSQL only): the worker runs in a child process
  (``--child-worker``) with ``[runtime] poll_interval_seconds`` = each ``--poll`` value;
  the parent kills through its own store at a random moment of the polling cycle and
  the child reports (wall clock) when the run stopped.
* Throughput: one worker with concurrency = ``--tasks`` runs that many scripted tasks at
  once, each ``--steps`` × (a tool call and a text) plus tokens and the final message,
  no waits. Reported: events written per second (all events of those tasks, the
  store's own status/final/injection events included), wall time, and the CPU time of
  the benchmark process (worker + drivers; the PostgreSQL server's CPU is not in it).
  ``--pg-fillfactor`` sets the tasks table's fillfactor on the fresh PostgreSQL database
  first (room on each page for heap-only updates of the counters; the schema's is 70
  since migration 0008, so ``--pg-fillfactor 100`` measures without it).
* The floor, in the same run: the same number of event rows (the same columns and
  payload shapes) inserted with the raw driver — aiosqlite, asyncpg — and no SQLAlchemy,
  no store, no worker: one row per transaction (what the runtime did before group
  commit), and in transactions of ``--tasks`` rows (what group commit can at best do).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import json
import os
import random
import shlex
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiosqlite
import asyncpg
from sqlalchemy import text

from bench.common import (
    DATA_DIR,
    create_pg_database,
    drop_pg_database,
    load_average,
    machine_facts,
    markdown_table,
    pg_facts,
    pg_url,
    print_facts,
    remove_sqlite,
    sqlite_url,
    summarize,
)
from taskops.config import DatabaseSettings, RuntimeSettings, Settings
from taskops.runtime.run import TaskRun
from taskops.runtime.worker import Worker
from taskops.storage.db import migrate
from taskops.storage.domain import EventKind, TaskDraft, TaskStatus
from taskops.storage.store import TaskStore

WAITING = "!say started\n!wait 60\n!end completed never"


def settings_for(url: str, concurrency: int = 4, poll: float = 1.0) -> Settings:
    return Settings(database=DatabaseSettings(url=url),
                    runtime=RuntimeSettings(concurrency=concurrency,
                                            poll_interval_seconds=poll))


async def first_event_stored(store: TaskStore, task_id: int) -> None:
    while True:
        page = await store.list_events(task_id, kinds=[EventKind.TEXT], limit=1)
        if page.total:
            return
        await asyncio.sleep(0.002)


@asynccontextmanager
async def worker_running(store: TaskStore, **options: Any) -> AsyncIterator[Worker]:
    stop = asyncio.Event()
    worker = Worker(store, store.settings, **options)
    job = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await job


# --- kill, in-process ----------------------------------------------------------------------


async def kill_in_process(store: TaskStore, samples: int) -> tuple[list[float], list[float]]:
    total, reaction = [], []
    async with worker_running(store) as worker:
        for _ in range(samples + 2):  # the first two warm up
            task = await store.create_task(TaskDraft(name="kill me", prompt=WAITING))
            await first_event_stored(store, task.id)
            run = worker.runs[task.id]
            start = time.perf_counter()
            await store.kill_task(task.id, by="bench")
            committed = time.perf_counter()
            await run.wait()
            stopped = time.perf_counter()
            total.append((stopped - start) * 1000)
            reaction.append((stopped - committed) * 1000)
    return total[2:], reaction[2:]


# --- kill, cross-process -------------------------------------------------------------------


async def child_worker(url: str, poll: float) -> None:
    """Run a worker and print one JSON line per run that ends (parent reads stdout)."""
    store = await TaskStore.open(settings_for(url, poll=poll))

    def report(run: TaskRun) -> None:
        print(json.dumps({"task": run.task.id, "at": time.time(), "why": run.stop_reason}),
              flush=True)

    try:
        async with worker_running(store, on_run_end=report):
            print(json.dumps({"ready": True}), flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        await store.close()


async def kill_cross_process(store: TaskStore, url: str, samples: int,
                             poll: float) -> list[float]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--child-worker", url, "--poll", str(poll),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert child.stdout is not None
    assert child.stdin is not None
    latencies = []
    try:
        assert json.loads(await child.stdout.readline()) == {"ready": True}
        for _ in range(samples + 2):
            task = await store.create_task(TaskDraft(name="kill me", prompt=WAITING))
            await first_event_stored(store, task.id)
            # Kills come at any moment of the child's polling cycle, not in step with it.
            await asyncio.sleep(random.uniform(0, poll))
            start = time.time()
            await store.kill_task(task.id, by="bench")
            while True:
                line = json.loads(await asyncio.wait_for(child.stdout.readline(), 30))
                if line.get("task") == task.id:
                    break
            assert line["why"] == "killed", line
            latencies.append((line["at"] - start) * 1000)
    finally:
        child.stdin.close()
        await asyncio.wait_for(child.wait(), 30)
    return latencies[2:]


# --- throughput ----------------------------------------------------------------------------


def busy_prompt(steps: int) -> str:
    lines = ["A busy scripted task."]
    for i in range(steps):
        lines += [f'!tool lookup {{"item": {i}}} -> found {i}', f"!say step {i} done"]
    return "\n".join([*lines, "!tokens 1200 300", "!end completed all steps done"])


@dataclass
class Throughput:
    events: int
    seconds: float
    cpu_seconds: float


async def throughput(store: TaskStore, tasks: int, steps: int,
                     fillfactor: int | None = None) -> Throughput:
    if fillfactor and not store.db.is_sqlite:
        async with store.db.engines.write.begin() as conn:
            await conn.execute(text(f"ALTER TABLE tasks SET (fillfactor = {int(fillfactor)})"))
    prompt = busy_prompt(steps)
    ids = [(await store.create_task(TaskDraft(name=f"busy {i}", prompt=prompt))).id
           for i in range(tasks)]
    remaining = set(ids)
    done = asyncio.Event()

    def ended(run: TaskRun) -> None:
        remaining.discard(run.task.id)
        if not remaining:
            done.set()

    cpu, wall = time.process_time(), time.perf_counter()
    async with worker_running(store, on_run_end=ended):
        await asyncio.wait_for(done.wait(), 600)
        seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
    events = 0
    for task_id in ids:
        task = await store.get_task(task_id)
        assert task.status is TaskStatus.COMPLETED, task
        events += task.event_count
    return Throughput(events, seconds, cpu_seconds)


# --- the raw driver floor ------------------------------------------------------------------


def floor_rows(tasks: int, steps: int) -> list[tuple[int, int, str, str]]:
    """(task, seq, kind, payload JSON) of as many events as the throughput run writes,
    shaped like them: a tool call and a text per step, plus four status/final events."""
    rows = []
    for task in range(1, tasks + 1):
        payloads = [("status_change", {"old": None, "new": "running", "message": "Task started"})]
        for i in range(steps):
            payloads.append(("tool_call", {"tool": "lookup", "arguments": {"item": i},
                                           "result": f"found {i}", "is_error": False,
                                           "duration_ms": 0}))
            payloads.append(("text", {"text": f"step {i} done"}))
        payloads += [("status_change", {"old": "running", "new": "completed",
                                        "message": "Task completed"}),
                     ("final", {"status": "completed", "summary": "all steps done",
                                "text": "all steps done", "formatted": False}),
                     ("injection", {"parent_session": None, "status": "completed",
                                    "text": "<task_injection>all steps done</task_injection>"})]
        rows += [(task, seq, kind, json.dumps(p)) for seq, (kind, p) in enumerate(payloads, 1)]
    return rows


FLOOR_SCHEMA = ("CREATE TABLE floor_events (id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL, "
                "seq INTEGER NOT NULL, at TIMESTAMP NOT NULL, kind VARCHAR(16) NOT NULL, "
                "payload {json} NOT NULL, UNIQUE (task_id, seq))")


async def floor_sqlite(path: Path, rows: list[tuple[int, int, str, str]],
                       batch: int) -> Throughput:
    remove_sqlite(path)
    async with aiosqlite.connect(path, isolation_level=None) as db:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute(FLOOR_SCHEMA.format(json="JSON"))
        sql = "INSERT INTO floor_events (task_id, seq, at, kind, payload) VALUES (?, ?, ?, ?, ?)"
        at = time.strftime("%Y-%m-%d %H:%M:%S")
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(0, len(rows), batch):
            await db.execute("BEGIN IMMEDIATE")
            chunk = [(t, s, at, k, p) for t, s, k, p in rows[i:i + batch]]
            if batch == 1:
                await db.execute(sql, chunk[0])
            else:
                await db.executemany(sql, chunk)
            await db.execute("COMMIT")
        result = Throughput(len(rows), time.perf_counter() - wall, time.process_time() - cpu)
    remove_sqlite(path)
    return result


async def floor_postgresql(name: str, rows: list[tuple[int, int, str, str]],
                           batch: int) -> Throughput:
    from bench.common import PG_SERVER
    conn = await asyncpg.connect(f"{PG_SERVER}/{name}")
    try:
        await conn.execute("DROP TABLE IF EXISTS floor_events")
        await conn.execute(FLOOR_SCHEMA.format(json="JSONB").replace(
            "id INTEGER PRIMARY KEY", "id BIGSERIAL PRIMARY KEY"))
        sql = ("INSERT INTO floor_events (task_id, seq, at, kind, payload) "
               "VALUES ($1, $2, now(), $3, $4::jsonb)")
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(0, len(rows), batch):
            async with conn.transaction():
                if batch == 1:
                    await conn.execute(sql, *rows[i])
                else:
                    await conn.executemany(sql, rows[i:i + batch])
        result = Throughput(len(rows), time.perf_counter() - wall, time.process_time() - cpu)
        await conn.execute("DROP TABLE floor_events")
        return result
    finally:
        await conn.close()


def throughput_row(kind: str, what: str, tasks: str, result: Throughput) -> list[str]:
    return [kind, what, tasks, str(result.events), f"{result.seconds:.2f}",
            f"{result.events / result.seconds:,.0f}", f"{result.cpu_seconds:.2f}",
            f"{result.cpu_seconds / result.events * 1e6:.0f}"]


# --- driver --------------------------------------------------------------------------------


@asynccontextmanager
async def database(kind: str) -> AsyncIterator[str]:
    if kind == "sqlite":
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path = DATA_DIR / "runtime_bench.db"
        remove_sqlite(path)
        url = sqlite_url(path)
        await migrate(url)
        try:
            yield url
        finally:
            remove_sqlite(path)
    else:
        name = f"taskops_bench_runtime_{uuid.uuid4().hex[:8]}"
        await create_pg_database(name)
        url = pg_url(name)
        await migrate(url)
        try:
            yield url
        finally:
            await drop_pg_database(name)


def database_name(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def ms(values: list[float]) -> tuple[str, str]:
    p50, p95 = summarize(values)
    return f"{p50:.1f}", f"{p95:.1f}"


async def bench(kind: str, args: argparse.Namespace) -> list[list[str]]:
    rows: list[list[str]] = []
    async with database(kind) as url:
        if args.only != "kill":
            await bench_throughput(kind, url, args)
        if args.only == "throughput":
            return rows
        store = await TaskStore.open(settings_for(url))
        try:
            total, reaction = await kill_in_process(store, args.kills)
            rows.append([kind, "kill → run stopped, in-process", str(len(total)), *ms(total)])
            rows.append([kind, "  of which after the kill committed", str(len(reaction)),
                         *ms(reaction)])
            for poll in args.poll if kind == "postgresql" else ():
                cross = await kill_cross_process(store, url, args.kills, poll)
                rows.append([kind, f"kill → run stopped, other process (poll {poll:g}s)",
                             str(len(cross)), *ms(cross)])
        finally:
            await store.close()
    return rows


async def bench_throughput(kind: str, url: str, args: argparse.Namespace) -> None:
    store = await TaskStore.open(settings_for(url, concurrency=args.tasks))
    try:
        result = await throughput(store, args.tasks, args.steps, args.pg_fillfactor)
    finally:
        await store.close()
    print(f"  {kind}: {args.tasks} tasks, {result.events} events in {result.seconds:.2f}s"
          f" = {result.events / result.seconds:,.0f} events/s; CPU {result.cpu_seconds:.2f}s"
          f" ({result.cpu_seconds / result.events * 1e6:.0f} µs per event)")
    what = "runtime (worker + store)"
    if args.pg_fillfactor and kind == "postgresql":
        what += f", tasks fillfactor {args.pg_fillfactor}"
    args.throughput.append(throughput_row(kind, what, str(args.tasks), result))
    rows = floor_rows(args.tasks, args.steps)
    driver = "aiosqlite" if kind == "sqlite" else "asyncpg"
    for batch, label in ((1, "one row per transaction"),
                         (args.tasks, f"{args.tasks} rows per transaction")):
        if kind == "sqlite":
            floor = await floor_sqlite(DATA_DIR / "runtime_floor.db", rows, batch)
        else:
            floor = await floor_postgresql(database_name(url), rows, batch)
        args.throughput.append(throughput_row(kind, f"floor: raw {driver} insert, {label}",
                                              "—", floor))


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--only", choices=["kill", "throughput"])
    parser.add_argument("--pg-fillfactor", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None,
                        help="for the moments of the cross-process kills")
    parser.add_argument("--kills", type=int, default=40)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--poll", type=float, nargs="+", default=[1.0, 0.25],
                        help="[runtime] poll_interval_seconds of the child worker(s)")
    parser.add_argument("--child-worker", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_worker:
        await child_worker(args.child_worker, args.poll[0])
        return 0
    print("command: python " + shlex.join(["bench/runtime.py", *(argv or sys.argv[1:])]))
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(3), "big")
    random.seed(seed)
    print(f"seed: {seed}")
    facts = machine_facts()
    if args.db != "sqlite":
        facts.update(await pg_facts())
    print_facts(facts)
    args.throughput = []
    rows: list[list[str]] = []
    for kind in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
        rows += await bench(kind, args)
    print()
    if rows:
        print(markdown_table(["db", "latency", "n", "p50 ms", "p95 ms"], rows,
                             right=(2, 3, 4)))
        print()
    if args.throughput:
        print(markdown_table(["db", "what", "tasks", "events", "wall s", "events/s", "CPU s",
                              "CPU µs/event"], args.throughput, right=(2, 3, 4, 5, 6, 7)))
    if rows:
        worst = max(float(r[4]) for r in rows if "in-process" in r[1])
        print(f"\nbudget: kill → worker stopped ≤ 1000 ms in-process; worst p95 {worst:.1f} ms "
              f"({'met' if worst <= 1000 else 'MISSED'})")
    print(f"load average at the end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
