"""Task counts per local day and facet, kept in step with every insert and transition.

They make the list's total a sum over a few thousand rows instead of a scan of a
million tasks. The day is the task's creation day in ``[ui] timezone``; when that
setting changes, the counts are rebuilt once (``meta.counts_timezone`` says for which).
``task_totals`` holds the same counts summed over the days, for a list without a date
filter: every change here goes to both, day counters first, each in key order.
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
from taskops.storage.models import MetaRow, TaskCountRow, TaskRow, TaskTotalRow

META_KEY = "counts_timezone"


def local_day(at: datetime, tz: ZoneInfo) -> date:
    return at.astimezone(tz).date()


async def bump(conn: AsyncConnection, tz: ZoneInfo, row: Any, status: str, delta: int) -> None:
    """Add ``delta`` to the counter of the task ``row`` under ``status``."""
    key = (local_day(row.created_at, tz), status, row.trigger, row.provider or "",
           row.model or "", bool(row.used_default))
    await add(conn, collections.Counter({key: delta}))


#: a status change to count: (the task's row, old status, new status)
Move = tuple[Any, str, str]


async def move(conn: AsyncConnection, tz: ZoneInfo, row: Any, old: str, new: str) -> None:
    """A task went from status ``old`` to ``new``."""
    await move_many(conn, tz, [(row, old, new)])


async def move_many(conn: AsyncConnection, tz: ZoneInfo, moves: list[Move]) -> None:
    """Count many status changes at once (``add``): the changes of tasks that share a
    day and facets add up in one counter row each."""
    deltas: collections.Counter[Key] = collections.Counter()
    for row, old, new in moves:
        key = (local_day(row.created_at, tz), row.trigger, row.provider or "",
               row.model or "", bool(row.used_default))
        deltas[(key[0], old, *key[1:])] -= 1
        deltas[(key[0], new, *key[1:])] += 1
    await add(conn, deltas)


#: a day counter's key: (day, status, trigger, provider, model, used_default)
Key = tuple[date, str, str, str, str, bool]
_FIELDS = ("status", "trigger", "provider", "model", "used_default")
_UPSERT: dict[tuple[str, str], Any] = {}


def _upsert(dialect: str, table: Any, keys: list[str]) -> Any:
    """Add ``n`` to each counter, creating it when missing (one statement, many rows)."""
    if (dialect, table.__tablename__) not in _UPSERT:
        ins: Any = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
        _UPSERT[(dialect, table.__tablename__)] = ins.on_conflict_do_update(
            index_elements=keys, set_={"n": table.n + ins.excluded.n})
    return _UPSERT[(dialect, table.__tablename__)]


async def add(conn: AsyncConnection, deltas: collections.Counter[Key]) -> None:
    """Add ``deltas`` to the day counters and to the totals: two statements whatever the
    number of keys (a batch of endings of one day's cronjob runs moves two rows, not two
    per task). In key order, day counters first: every writer locks the counter rows in
    one order, so two never wait for each other in a circle (PostgreSQL)."""
    totals: collections.Counter[tuple[Any, ...]] = collections.Counter()
    for key, n in deltas.items():
        totals[key[1:]] += n
    days = [dict(day=k[0], **dict(zip(_FIELDS, k[1:], strict=True)), n=n)
            for k, n in sorted(deltas.items()) if n]
    if not days:
        return
    dialect = conn.dialect.name
    await conn.execute(_upsert(dialect, TaskCountRow, list(listing.COUNT_KEY)), days)
    summed = [dict(zip(_FIELDS, k, strict=True), n=n) for k, n in sorted(totals.items()) if n]
    if summed:
        await conn.execute(_upsert(dialect, TaskTotalRow, list(_FIELDS)), summed)


async def by_status(conn: AsyncConnection) -> dict[str, int]:
    """Tasks per status, summed from the kept counts (no scan of the tasks)."""
    rows = await conn.execute(select(TaskTotalRow.status, func.sum(TaskTotalRow.n))
                              .group_by(TaskTotalRow.status))
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
    await conn.execute(delete(TaskTotalRow))
    rows = [dict(day=k[0], status=k[1], trigger=k[2], provider=k[3], model=k[4],
                 used_default=k[5], n=n) for k, n in counter.items()]
    for i in range(0, len(rows), 5000):
        await conn.execute(insert(TaskCountRow), rows[i:i + 5000])
    await conn.execute(insert(TaskTotalRow).from_select(
        [*_FIELDS, "n"],
        select(*(getattr(TaskCountRow, f) for f in _FIELDS), func.sum(TaskCountRow.n))
        .group_by(*(getattr(TaskCountRow, f) for f in _FIELDS))))
    await conn.execute(delete(MetaRow).where(MetaRow.key == META_KEY))
    await conn.execute(insert(MetaRow).values(key=META_KEY, value=str(tz)))
