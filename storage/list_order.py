"""Ids of one page in (key, id) order: the access path chosen per request from exact counts.

Two ways to find a page, and the counts say which is cheaper before anything is read:

* **walk** an index in sort order from where the page starts (the list's end, or the
  anchor row of a ◀/▶ press) and test the filters the index range does not hold on each
  entry. Expected visits: rows needed × entries in the range / matches.
* **read** every match through the narrowest filter index and sort only those. Cost: the
  entries in that range, all known from ``task_counts`` (or the search count).

A walk is capped at a few times its expected visits: when filter and sort key are
correlated (cronjob names all start alike, unpriced models all cost −1) the cap ends it
early and the read path answers instead, so no combination degrades to a full index walk.
On SQLite the chosen index is forced with ``INDEXED BY``; on PostgreSQL the read path is
fenced with ``OFFSET 0`` and the walk's filters are hidden from index choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Select, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from taskops.storage.domain import SortField
from taskops.storage.list_query import (
    DEFAULT,
    PAIR,
    STATUS,
    TRIGGER,
    FacetCounts,
    ListQuery,
    day_counts,
    day_start_utc,
)
from taskops.storage.models import COST_SORT_KEY, TaskRow

#: relative cost of one visited index entry whose row must be read, and of one that the
#: index answers alone; a read pays for sorting its entries on top
HEAP, INDEX_ONLY, SORT = 1.0, 0.1, 0.2
#: a walk gives up after this many times its expected visits (and at least CAP_MIN)
CAP_FACTOR, CAP_MIN = 4, 2000
#: created pages this deep skip whole days by their counts first
DAY_SKIP_MIN = 1000


@dataclass(frozen=True)
class Path:
    """An index whose range holds ``facets`` (and the dates, for created indexes)."""

    index: str | None
    facets: frozenset[str] = frozenset()
    #: the filters and sort keys are readable from the index alone
    covers: bool = False


_BY_CREATED = (
    Path("ix_tasks_status_trigger_created", frozenset({STATUS, TRIGGER})),
    Path("ix_tasks_status_created", frozenset({STATUS})),
    Path("ix_tasks_trigger_created", frozenset({TRIGGER})),
    Path("ix_tasks_provider_created", frozenset({PAIR})),
    Path("ix_tasks_default_created", frozenset({DEFAULT})),
    Path("ix_tasks_created"),
)
NAME_PATH = Path("ix_tasks_name", covers=True)


@dataclass(frozen=True)
class KeyOrder:
    key: Any
    walks: tuple[Path, ...]

    @property
    def by_created(self) -> bool:
        return self.walks is _BY_CREATED


ORDERS: dict[SortField, KeyOrder] = {
    SortField.CREATED: KeyOrder(TaskRow.created_at, _BY_CREATED),
    SortField.NAME: KeyOrder(TaskRow.sort_name, (NAME_PATH,)),
    SortField.TOKENS: KeyOrder(TaskRow.total_tokens, (Path("ix_tasks_tokens"),)),
    SortField.COST: KeyOrder(COST_SORT_KEY, (Path("ix_tasks_cost"),)),
}
DURATION_ORDER = KeyOrder(TaskRow.duration_ms, (Path("ix_tasks_duration"),))


@dataclass(frozen=True)
class Sizes:
    """What the path choice knows before reading: exact matches and range sizes."""

    total: int
    facets: FacetCounts
    #: tasks the search alone matches (what the name index read visits); 0 = no search
    searched: int = 0


@dataclass(frozen=True)
class Window:
    """Which rows, in one direction: after ``after`` (key, id) if set, skip ``offset``."""

    descending: bool
    offset: int
    limit: int
    after: tuple[Any, int] | None = None
    #: extra range conditions on the key (a day skipped to)
    bound: tuple[ColumnElement[bool], ...] = ()


def _ordering(key: Any, descending: bool) -> tuple[Any, Any]:
    return (key.desc(), TaskRow.id.desc()) if descending else (key.asc(), TaskRow.id.asc())


def _after(key: Any, window: Window) -> list[ColumnElement[bool]]:
    if window.after is None:
        return []
    value, task_id = window.after
    ref = tuple_(literal(value, key.type), literal(task_id, BigInteger()))
    row = tuple_(key, TaskRow.id)
    return [row < ref if window.descending else row > ref]


def _range_size(query: ListQuery, sizes: Sizes, order: KeyOrder, path: Path) -> int:
    return sizes.facets.count(query.filters, path.facets, dated=order.by_created)


def _walks(query: ListQuery, order: KeyOrder) -> list[Path]:
    return [p for p in order.walks if p.facets <= query.facets]


def _reads(query: ListQuery, sizes: Sizes) -> list[tuple[Path, int]]:
    """Index ranges that hold every match, with their sizes."""
    if query.terms.ids:
        return [(Path(None, covers=False), min(sizes.searched, sizes.total * 4 + 100))]
    if query.terms.words:
        return [(NAME_PATH, sizes.searched)]
    return [(p, sizes.facets.count(query.filters, p.facets, dated=True))
            for p in _BY_CREATED if p.facets <= query.facets]


def _residual_empty(query: ListQuery, order: KeyOrder, path: Path) -> bool:
    return (path.facets == query.facets and not query.terms
            and (order.by_created or not query.dated))


@dataclass(frozen=True)
class Choice:
    path: Path
    walk: bool
    #: estimated cost, and the cost if the estimate is wrong (the whole range)
    cost: float
    worst: float
    expected: float


def choose(query: ListQuery, sizes: Sizes, order: KeyOrder, need: int) -> list[Choice]:
    """Every usable path with its estimated cost, cheapest first."""
    out: list[Choice] = []
    matches = max(1, sizes.total)
    for path in _walks(query, order):
        size = _range_size(query, sizes, order, path)
        if _residual_empty(query, order, path):
            out.append(Choice(path, True, need * INDEX_ONLY, need * INDEX_ONLY, need))
            continue
        visit = INDEX_ONLY if path.covers else HEAP
        expected = min(size, need * size / matches)
        out.append(Choice(path, True, expected * visit, size * visit, expected))
    if not order.by_created:
        for path, size in _reads(query, sizes):
            visit = INDEX_ONLY if path.covers else HEAP
            out.append(Choice(path, False, size * (visit + SORT), size * (visit + SORT), size))
    return sorted(out, key=lambda c: c.cost)


def walk_stmt(query: ListQuery, order: KeyOrder, path: Path, window: Window,
              cap: int | None) -> Select[Any]:
    key = order.key
    dates_in_range = order.by_created
    others = query.facets - path.facets
    ranged = (query.facet_where(skip=others) + (query.date_where() if dates_in_range else [])
              + list(window.bound) + _after(key, window))
    ordering = _ordering(key, window.descending)
    if _residual_empty(query, order, path) or cap is None:
        stmt = select(TaskRow.id, key.label("k")).where(*ranged, *query.where(
            skip=path.facets, dates=not dates_in_range, col=query.hide))
    else:
        inner_cols = [TaskRow.id, key.label("k"),
                      *query.columns_for(skip=path.facets, dates=not dates_in_range)]
        inner = select(*inner_cols).where(*ranged).order_by(*ordering).limit(cap)
        if query.sqlite and path.index:
            inner = inner.with_hint(TaskRow, f"INDEXED BY {path.index}", "sqlite")
        sub = inner.subquery()
        return (select(sub.c.id, sub.c.k)
                .where(*query.where(skip=path.facets, dates=not dates_in_range,
                                    col=lambda c: sub.c[c.key]))
                .limit(window.limit).offset(window.offset))
    stmt = stmt.order_by(*ordering).limit(window.limit).offset(window.offset)
    if query.sqlite and path.index:
        stmt = stmt.with_hint(TaskRow, f"INDEXED BY {path.index}", "sqlite")
    return stmt


def read_stmt(query: ListQuery, order: KeyOrder, path: Path, window: Window) -> Select[Any]:
    key = order.key
    where = query.where() + list(window.bound) + _after(key, window)
    if query.sqlite:
        stmt = (select(TaskRow.id, key.label("k")).where(*where)
                .order_by(*_ordering(key, window.descending)))
        if path.index:
            stmt = stmt.with_hint(TaskRow, f"INDEXED BY {path.index}", "sqlite")
        return stmt.limit(window.limit).offset(window.offset)
    # OFFSET 0 keeps PostgreSQL from walking the sort index: it collects, then sorts.
    sub = select(TaskRow.id, key.label("k")).where(*where).offset(0).subquery()
    ordering = ((sub.c.k.desc(), sub.c.id.desc()) if window.descending
                else (sub.c.k.asc(), sub.c.id.asc()))
    return (select(sub.c.id, sub.c.k).order_by(*ordering).limit(window.limit)
            .offset(window.offset))


async def _range_exhausted(conn: AsyncConnection, query: ListQuery, order: KeyOrder,
                           path: Path, window: Window, cap: int) -> bool:
    """Did a short walk end because its range ended (not because of its cap)?"""
    ranged = (query.facet_where(skip=query.facets - path.facets)
              + (query.date_where() if order.by_created else [])
              + list(window.bound) + _after(order.key, window))
    inner = (select(TaskRow.id).where(*ranged)
             .order_by(*_ordering(order.key, window.descending)).limit(cap))
    if query.sqlite and path.index:
        inner = inner.with_hint(TaskRow, f"INDEXED BY {path.index}", "sqlite")
    seen = (await conn.execute(select(func.count()).select_from(inner.subquery()))).scalar_one()
    return int(seen) < cap


async def keys_in_order(conn: AsyncConnection, query: ListQuery, sizes: Sizes,
                        order: KeyOrder, window: Window, available: int | None
                        ) -> list[tuple[Any, int]]:
    """Up to ``window.limit`` (key, id) pairs in order; ``available`` = rows known to
    exist in the window (None after an anchor, where it is not known)."""
    need = window.offset + window.limit
    choices = choose(query, sizes, order, need)
    first = choices[0]
    if first.walk and not _residual_empty(query, order, first.path):
        cap = max(CAP_MIN, int(first.expected * CAP_FACTOR) + need)
        ids = [(r.k, r.id) for r in await conn.execute(
            walk_stmt(query, order, first.path, window, cap))]
        if len(ids) >= window.limit:
            return ids
        if available is not None and len(ids) >= min(window.limit, available):
            return ids
        if available is None and await _range_exhausted(conn, query, order, first.path,
                                                        window, cap):
            return ids
        # The cap ended the walk: filter and key are correlated here. Take the path whose
        # cost is bounded best even if its estimate is wrong too.
        first = min(choices[1:] or choices, key=lambda c: c.worst)
    stmt = (walk_stmt(query, order, first.path, window, None) if first.walk
            else read_stmt(query, order, first.path, window))
    return [(r.k, r.id) for r in await conn.execute(stmt)]


async def day_bound(conn: AsyncConnection, query: ListQuery, descending: bool,
                    offset: int) -> tuple[tuple[ColumnElement[bool], ...], int]:
    """For a deep created page without a search: skip the whole days before it.

    Returns the range condition that starts at the page's day and the offset left inside
    it, so the walk covers one day's matches at most instead of ``offset`` rows.
    """
    if offset < DAY_SKIP_MIN or query.terms:
        return (), offset
    days = await day_counts(conn, query)
    if descending:
        days.reverse()
    skipped = 0
    for day, n in days:
        if skipped + n > offset:
            if descending:
                edge = day_start_utc(day + timedelta(days=1), query.tz)
                return (TaskRow.created_at < edge,), offset - skipped
            return (TaskRow.created_at >= day_start_utc(day, query.tz),), offset - skipped
        skipped += n
    return (), offset
