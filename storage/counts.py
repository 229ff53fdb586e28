"""Task counts per local day and facet, kept in step with every insert and transition.

They make the list's total a sum over a few thousand rows instead of a scan of a
million tasks. The day is the task's creation day in ``[ui] timezone``; when that
setting changes, the counts are rebuilt once (``meta.counts_timezone`` says for which).
"""

from __future__ import annotations

import collections
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from taskops.storage import listing
from taskops.storage.models import MetaRow, TaskCountRow, TaskRow

META_KEY = "counts_timezone"


def local_day(at: datetime, tz: ZoneInfo) -> date:
    return at.astimezone(tz).date()


async def bump(conn: AsyncConnection, tz: ZoneInfo, row: Any, status: str, delta: int) -> None:
    """Add ``delta`` to the counter of the task ``row`` under ``status``."""
    key = dict(day=local_day(row.created_at, tz), status=status, trigger=row.trigger,
               provider=row.provider or "", model=row.model or "",
               used_default=bool(row.used_default))
    await conn.execute(listing.upsert_counts(conn.dialect.name, [dict(key, n=delta)]))


_MOVE: dict[str, Any] = {}


#: a status change to count: (the task's row, old status, new status)
Move = tuple[Any, str, str]


async def move(conn: AsyncConnection, tz: ZoneInfo, row: Any, old: str, new: str) -> None:
    """A task went from status ``old`` to ``new``: one statement for both counters."""
    await move_many(conn, tz, [(row, old, new)])


async def move_many(conn: AsyncConnection, tz: ZoneInfo, moves: list[Move]) -> None:
    """Count many status changes with one statement: the changes of tasks that share a
    day and facets add up in one counter row each (a batch of endings of one day's
    cronjob runs moves two rows, not two per task). In key order: every writer locks the
    counter rows in one order, so two never wait for each other in a circle
    (PostgreSQL)."""
    dialect = conn.dialect.name
    if dialect not in _MOVE:
        ins: Any = (pg_insert if dialect == "postgresql" else sqlite_insert)(TaskCountRow)
        _MOVE[dialect] = ins.on_conflict_do_update(
            index_elements=list(listing.COUNT_KEY), set_={"n": TaskCountRow.n + ins.excluded.n})
    deltas: collections.Counter[tuple[Any, ...]] = collections.Counter()
    for row, old, new in moves:
        key = (local_day(row.created_at, tz), row.trigger, row.provider or "",
               row.model or "", bool(row.used_default))
        deltas[(*key, old)] -= 1
        deltas[(*key, new)] += 1
    rows = [dict(day=k[0], trigger=k[1], provider=k[2], model=k[3], used_default=k[4],
                 status=k[5], n=n)
            for k, n in sorted(deltas.items()) if n]
    if rows:
        await conn.execute(_MOVE[dialect], rows)


async def by_status(conn: AsyncConnection) -> dict[str, int]:
    """Tasks per status, summed from the kept counts (no scan of the tasks)."""
    rows = await conn.execute(select(TaskCountRow.status, func.sum(TaskCountRow.n))
                              .group_by(TaskCountRow.status))
    return {status: int(n or 0) for status, n in rows}


async def kept_for(conn: AsyncConnection) -> str | None:
    """The timezone the stored counts were made for (None: never made)."""
    return (await conn.execute(select(MetaRow.value).where(MetaRow.key == META_KEY))
            ).scalar_one_or_none()


async def rebuild(conn: AsyncConnection, tz: ZoneInfo) -> None:
    counter: collections.Counter[tuple[Any, ...]] = collections.Counter()
    result = await conn.stream(select(
        TaskRow.created_at, TaskRow.status, TaskRow.trigger, TaskRow.provider,
        TaskRow.model, TaskRow.used_default).execution_options(yield_per=10_000))
    async for r in result:
        counter[(local_day(r.created_at, tz), r.status, r.trigger, r.provider or "",
                 r.model or "", bool(r.used_default))] += 1
    await conn.execute(delete(TaskCountRow))
    rows = [dict(day=k[0], status=k[1], trigger=k[2], provider=k[3], model=k[4],
                 used_default=k[5], n=n) for k, n in counter.items()]
    for i in range(0, len(rows), 5000):
        await conn.execute(insert(TaskCountRow), rows[i:i + 5000])
    await conn.execute(delete(MetaRow).where(MetaRow.key == META_KEY))
    await conn.execute(insert(MetaRow).values(key=META_KEY, value=str(tz)))
