"""The list view's queries: filters, sorts and pages at a million tasks.

Totals come from ``task_counts`` (kept in step by the store), never from scanning the
task table. Page rows are found as ids through an index, then loaded by primary key;
pages past the middle are read from the other end of the index.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, UnaryExpression, and_, func, select, type_coerce
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable, operators

from taskops.storage.domain import ListFilters, ProviderChoice, Sort, SortField, Task, TaskPage
from taskops.storage.models import COST_SORT_KEY, TaskCountRow, TaskRow
from taskops.storage.rows import row_to_task

COUNT_KEY = ("day", "status", "trigger", "provider", "model", "used_default")


def upsert_counts(dialect: str, rows: list[dict[str, Any]]) -> Executable:
    """Add ``n`` to each (day, facets) counter, creating it when missing."""
    ins: Any = (pg_insert if dialect == "postgresql" else sqlite_insert)(TaskCountRow)
    stmt = ins.values(rows)
    return stmt.on_conflict_do_update(index_elements=list(COUNT_KEY),
                                      set_={"n": TaskCountRow.n + stmt.excluded.n})


def day_start_utc(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def no_index(column: Any) -> Any:
    """SQLite's unary ``+``: the same value, but the planner may not use an index for it.

    SQLite here keeps no histograms, so it cannot tell a rare status from a common one;
    ``listing`` knows the exact counts and steers it with this instead.
    """
    return type_coerce(UnaryExpression(column, operator=operators.custom_op("+")),
                       column.type)


def _same(column: Any) -> Any:
    return column


def _facet_where(filters: ListFilters, table: Any,
                 col: Callable[[Any], Any] = _same) -> list[ColumnElement[bool]]:
    """Status, trigger and provider filters on the tasks table or the counts table."""
    where: list[ColumnElement[bool]] = []
    if filters.status is not None:
        where.append(col(table.status) == filters.status.value)
    if filters.trigger is not None:
        where.append(col(table.trigger) == filters.trigger.value)
    if filters.provider is not None:
        if filters.provider.is_default:
            where.append(col(table.used_default).is_(True))
        else:
            where.append(and_(col(table.provider) == filters.provider.provider,
                              col(table.model) == filters.provider.model))
    return where


def _task_where(filters: ListFilters, tz: ZoneInfo,
                col: Callable[[Any], Any] = _same) -> list[ColumnElement[bool]]:
    where = _facet_where(filters, TaskRow, col)
    if filters.date_from is not None:
        where.append(col(TaskRow.created_at) >= day_start_utc(filters.date_from, tz))
    if filters.date_to is not None:
        where.append(col(TaskRow.created_at)
                     < day_start_utc(filters.date_to + timedelta(days=1), tz))
    return where


def _count_where(filters: ListFilters) -> list[ColumnElement[bool]]:
    # The counts are kept per local day, so whole-day filters need no time arithmetic.
    where = _facet_where(filters, TaskCountRow)
    if filters.date_from is not None:
        where.append(TaskCountRow.day >= filters.date_from)
    if filters.date_to is not None:
        where.append(TaskCountRow.day <= filters.date_to)
    return where


async def count_tasks(conn: AsyncConnection, filters: ListFilters) -> int:
    total = (await conn.execute(select(func.coalesce(func.sum(TaskCountRow.n), 0))
                                .where(*_count_where(filters)))).scalar_one()
    return int(total)


async def provider_options(conn: AsyncConnection) -> list[ProviderChoice]:
    rows = await conn.execute(
        select(TaskCountRow.provider, TaskCountRow.model)
        .where(TaskCountRow.provider != "")
        .group_by(TaskCountRow.provider, TaskCountRow.model)
        .having(func.sum(TaskCountRow.n) > 0)
        .order_by(TaskCountRow.provider, TaskCountRow.model))
    return [ProviderChoice.default()] + [ProviderChoice(r.provider, r.model) for r in rows]


_SORT_KEYS: dict[SortField, Any] = {
    SortField.CREATED: TaskRow.created_at,
    SortField.NAME: TaskRow.sort_name,
    SortField.TOKENS: TaskRow.total_tokens,
    SortField.COST: COST_SORT_KEY,
}


@dataclass(frozen=True)
class Query:
    """One list query: its filters, and what steering SQLite needs to plan it well."""

    filters: ListFilters
    tz: ZoneInfo
    #: matching tasks, and all tasks (for SQLite's choice of index); 0 = no steering
    total: int
    everything: int = 0

    def where(self, col: Callable[[Any], Any] = _same) -> list[ColumnElement[bool]]:
        return _task_where(self.filters, self.tz, col)


async def _ids_in_order(conn: AsyncConnection, query: Query, key: Any, descending: bool,
                        offset: int, limit: int) -> list[int]:
    where = query.where()
    if query.everything and query.filters.any_set:
        # Walking the sort index visits about (offset + limit) * everything / total rows;
        # reading the matches through a filter index and sorting visits about total.
        if query.total ** 2 < (offset + limit) * query.everything:
            key = no_index(key)
        else:
            where = query.where(no_index)
    order = (key.desc(), TaskRow.id.desc()) if descending else (key.asc(), TaskRow.id.asc())
    rows = await conn.execute(select(TaskRow.id).where(*where).order_by(*order)
                              .offset(offset).limit(limit))
    return [r.id for r in rows]


async def _ids_by_key(conn: AsyncConnection, query: Query, key: Any, descending: bool,
                      offset: int, limit: int) -> list[int]:
    """One page of ids ordered by (key, id); deep pages read the index from its far end."""
    total = query.total
    if offset <= total // 2:
        return await _ids_in_order(conn, query, key, descending, offset, limit)
    end = min(total, offset + limit)
    ids = await _ids_in_order(conn, query, key, not descending, total - end, end - offset)
    return ids[::-1]


async def _ids_by_duration(conn: AsyncConnection, where: list[ColumnElement[bool]],
                           descending: bool, offset: int, limit: int, total: int,
                           now: datetime) -> list[int]:
    """Duration order: finished (stored duration) merged with unfinished (counting up to
    now), then never-started tasks last in either direction.

    Unfinished started tasks are few, so they are read whole and merged in Python with a
    window of the finished ones read through the duration index. A finished task at
    position j is at j + (unfinished before it) overall, so the window
    [offset - |unfinished|, offset + limit) holds every finished task the page can show.
    """
    unfinished = sorted(
        (int((now - r.started_at).total_seconds() * 1000), r.id)
        for r in await conn.execute(
            select(TaskRow.id, TaskRow.started_at).where(
                *where, TaskRow.finished_at.is_(None), TaskRow.started_at.is_not(None))))
    never_started = (await conn.execute(select(func.count()).where(
        *where, TaskRow.started_at.is_(None)))).scalar_one()
    started_total = total - never_started
    finished_total = started_total - len(unfinished)

    def count_before(entry: tuple[int, int], ascending_entries: list[tuple[int, int]]) -> int:
        if descending:
            return len(ascending_entries) - bisect.bisect_right(ascending_entries, entry)
        return bisect.bisect_left(ascending_entries, entry)

    ids: list[int] = []
    if offset < started_total:
        lo = max(0, offset - len(unfinished))
        hi = min(finished_total, offset + limit)
        finished: list[tuple[int, int]] = []
        if hi > lo:
            # Like _ids_by_key: a window past the middle is read from the index's far end.
            far = lo > finished_total - hi
            backwards = descending != far
            order = ((TaskRow.duration_ms.desc(), TaskRow.id.desc()) if backwards
                     else (TaskRow.duration_ms.asc(), TaskRow.id.asc()))
            finished = [(r.duration_ms, r.id) for r in await conn.execute(
                select(TaskRow.duration_ms, TaskRow.id)
                .where(*where, TaskRow.duration_ms.is_not(None))
                .order_by(*order).offset(finished_total - hi if far else lo).limit(hi - lo))]
            if far:
                finished.reverse()
        finished_asc = sorted(finished)
        placed: list[tuple[int, int]] = []
        for t, entry in enumerate(finished):
            placed.append((lo + t + count_before(entry, unfinished), entry[1]))
        for entry in unfinished:
            # Ranked before the window's first finished task: it sits before `offset`
            # (proof in the docstring), and its count of finished tasks ahead is unknown.
            if finished and lo > 0 and count_before(entry, [finished[0]]) == 0:
                continue
            rank = count_before(entry, unfinished) + lo + count_before(entry, finished_asc)
            placed.append((rank, entry[1]))
        ids = [i for rank, i in sorted(placed) if offset <= rank < offset + limit]
    if len(ids) < limit and offset + limit > started_total:
        skip = max(0, offset - started_total)
        order_id = TaskRow.id.desc() if descending else TaskRow.id.asc()
        rows = await conn.execute(select(TaskRow.id).where(*where, TaskRow.started_at.is_(None))
                                  .order_by(order_id).offset(skip).limit(limit - len(ids)))
        ids.extend(r.id for r in rows)
    return ids


async def list_tasks(conn: AsyncConnection, filters: ListFilters, sort: Sort, page: int,
                     page_size: int, *, tz: ZoneInfo, now: datetime) -> TaskPage:
    total = await count_tasks(conn, filters)
    page_count = max(1, -(-total // page_size))
    page = min(max(1, page), page_count)
    offset = (page - 1) * page_size
    if total == 0:
        ids: list[int] = []
    elif sort.field is SortField.DURATION:
        ids = await _ids_by_duration(conn, _task_where(filters, tz), sort.descending, offset,
                                     page_size, total, now)
    else:
        # Every filter has a (filter, created) index, so only the other sorts need steering.
        steer = (conn.dialect.name == "sqlite" and filters.any_set
                 and sort.field is not SortField.CREATED)
        everything = await count_tasks(conn, ListFilters()) if steer else 0
        ids = await _ids_by_key(conn, Query(filters, tz, total, everything),
                                _SORT_KEYS[sort.field], sort.descending, offset, page_size)
    tasks: list[Task] = []
    if ids:
        rows = {r.id: r for r in await conn.execute(select(TaskRow).where(TaskRow.id.in_(ids)))}
        tasks = [row_to_task(rows[i]) for i in ids if i in rows]
    return TaskPage(tasks, total, page, page_size)
