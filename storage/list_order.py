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

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import InstrumentedAttribute

from taskops.storage.domain import SortField
from taskops.storage.list_query import (
    DEFAULT,
    PAIR,
    STATUS,
    TRIGGER,
    FacetCounts,
    FacetSums,
    ListQuery,
    day_counts,
    day_start_utc,
    facet_binds,
    facet_sums,
)
from taskops.storage.models import COST_SORT_KEY, TaskRow, list_index_layout
from taskops.storage.rows import PAGE_COLUMNS


@dataclass(frozen=True)
class Costs:
    """Microseconds per index entry on this machine's class of hardware (measured at a
    million tasks; only their ratios matter for the choice)."""

    #: an entry skipped by OFFSET in a range that holds every filter
    skip: float
    #: an entry a walk tests its remaining filters on, from the index alone / its row
    walk_index: float
    walk_row: float
    #: an entry a read collects, from the index alone / its row, and sorts
    read_index: float
    read_row: float
    sort: float


COSTS = {
    # A walk reads rows in key order, all over a table much larger than the page cache.
    "sqlite": Costs(skip=0.03, walk_index=0.15, walk_row=3.0, read_index=0.2, read_row=0.9,
                    sort=0.15),
    # PostgreSQL reads rows through a bitmap in table order, but a walk visits them in key
    # order: mostly outside shared_buffers at a million tasks.
    "postgresql": Costs(skip=0.13, walk_index=0.3, walk_row=3.0, read_index=0.3,
                        read_row=0.4, sort=0.3),
}
#: a walk gives up after this many times its expected visits (and at least CAP_MIN)
CAP_FACTOR, CAP_MIN = 4, 2000
#: created pages this deep skip whole days by their counts first
DAY_SKIP_MIN = 1000


@dataclass(frozen=True)
class Path:
    """An index whose range holds ``facets`` (and the dates, for created indexes)."""

    index: str | None
    facets: frozenset[str] = frozenset()
    #: task columns the index holds: filters on these are tested without reading rows
    columns: frozenset[str] = frozenset({"id"})

    def covers(self, columns: set[str]) -> bool:
        return columns <= self.columns


_LAYOUT = list_index_layout()
_FACET_INDEX = {STATUS: "status", TRIGGER: "trigger", PAIR: "provider", DEFAULT: "default"}


def _path(name: str, facets: Iterable[str] = ()) -> Path:
    return Path(name, frozenset(facets),
                frozenset(c for c in _LAYOUT[name] if isinstance(c, str)))


def _by(key: str) -> tuple[Path, ...]:
    """A sort key's walks: one (filter, key, id) index per filter, and the key's own."""
    return (*(_path(f"ix_tasks_{name}_{key}", {facet})
              for facet, name in _FACET_INDEX.items()), _path(f"ix_tasks_{key}"))


_BY_CREATED = (_path("ix_tasks_status_trigger_created", {STATUS, TRIGGER}), *_by("created"))
#: the name indexes also hold every sort key: a search reads its matches from them alone
NAME_PATHS = _by("name")


@dataclass(frozen=True)
class KeyOrder:
    key: Any
    #: the task column the key is made of
    column: str
    walks: tuple[Path, ...]

    @property
    def by_created(self) -> bool:
        return self.walks is _BY_CREATED


ORDERS: dict[SortField, KeyOrder] = {
    SortField.CREATED: KeyOrder(TaskRow.created_at, "created_at", _BY_CREATED),
    SortField.NAME: KeyOrder(TaskRow.sort_name, "sort_name", NAME_PATHS),
    SortField.TOKENS: KeyOrder(TaskRow.total_tokens, "total_tokens", _by("tokens")),
    SortField.COST: KeyOrder(COST_SORT_KEY, "cost_usd", _by("cost")),
}
DURATION_ORDER = KeyOrder(TaskRow.duration_ms, "duration_ms", _by("duration"))


def search_path(query: ListQuery, facets: FacetCounts) -> Path:
    """The name index a word search counts and reads through: the one led by the
    narrowest filter of the request, so it visits only that filter's tasks of each name."""
    usable = [p for p in NAME_PATHS if p.facets <= query.facets]
    return min(usable, key=lambda p: facets.count(p.facets, dated=False))


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


def _hint(index: str) -> str:
    return index if index == "NOT INDEXED" else f"INDEXED BY {index}"


def _ordering(key: Any, descending: bool) -> tuple[Any, Any]:
    return (key.desc(), TaskRow.id.desc()) if descending else (key.asc(), TaskRow.id.asc())


def _after(key: Any, window: Window) -> list[ColumnElement[bool]]:
    if window.after is None:
        return []
    value, task_id = window.after
    return [_beyond(key, value, task_id, "<" if window.descending else ">")]


def _beyond(key: Any, value: Any, task_id: int, op: str) -> ColumnElement[bool]:
    """``(key, id) op (value, task_id)`` in the form the index range can start or end at.
    A row value does on a column key; on an expression key (the cost's coalesce) SQLite
    only tests a row value on each entry — a ◀ near the top of a long list walked the
    whole range (95 ms at 1M) — so there the key's own bound goes first and seeks:
    ``key >= value AND (key > value OR id > task_id)``."""
    return _beyond_of(key, literal(value, key.type), literal(task_id, BigInteger()), op)


def _beyond_of(key: Any, v: Any, i: Any, op: str) -> ColumnElement[bool]:
    """``_beyond`` with the value and id as SQL elements (literals or named parameters)."""
    if isinstance(key, InstrumentedAttribute):
        row, ref = tuple_(key, TaskRow.id), tuple_(v, i)
        return {"<": row < ref, ">": row > ref, "<=": row <= ref, ">=": row >= ref}[op]
    strict = {"<": key < v, ">": key > v, "<=": key < v, ">=": key > v}[op]
    closed = key <= v if op.startswith("<") else key >= v
    on_tie = {"<": TaskRow.id < i, ">": TaskRow.id > i, "<=": TaskRow.id <= i,
              ">=": TaskRow.id >= i}[op]
    return and_(closed, or_(strict, on_tie))


def _range_size(query: ListQuery, sizes: Sizes, order: KeyOrder, path: Path) -> int:
    return sizes.facets.count(path.facets, dated=order.by_created)


def _walks(query: ListQuery, order: KeyOrder) -> list[Path]:
    return [p for p in order.walks if p.facets <= query.facets]


def _reads(query: ListQuery, sizes: Sizes) -> list[tuple[Path, int]]:
    """Index ranges that hold every match, with their sizes."""
    if query.terms.ids:
        # NOT INDEXED leaves SQLite the primary key ranges the fragments make.
        return [(Path("NOT INDEXED"), sizes.searched)]
    if query.terms.words:
        return [(search_path(query, sizes.facets), sizes.searched)]
    return [(p, sizes.facets.count(p.facets, dated=True))
            for p in _BY_CREATED if p.facets <= query.facets]


def _residual_empty(query: ListQuery, order: KeyOrder, path: Path) -> bool:
    return (path.facets == query.facets and not query.terms
            and (order.by_created or not query.dated))


def _residual_columns(query: ListQuery, order: KeyOrder, path: Path) -> set[str]:
    return {c.key for c in query.columns_for(skip=path.facets, dates=not order.by_created)}


def _covered(query: ListQuery, order: KeyOrder, path: Path) -> bool:
    return path.covers(_residual_columns(query, order, path))


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
    c = COSTS[query.dialect]
    out: list[Choice] = []
    matches = max(1, sizes.total)
    for path in _walks(query, order):
        size = _range_size(query, sizes, order, path)
        if _residual_empty(query, order, path):
            out.append(Choice(path, True, need * c.skip, need * c.skip, need))
            continue
        visit = c.walk_index if _covered(query, order, path) else c.walk_row
        expected = min(size, need * size / matches)
        probe = c.skip * min(size, expected * CAP_FACTOR) if query.sqlite else 0
        out.append(Choice(path, True, expected * visit + probe, size * visit, expected))
    # Created's filter indexes are its walks already; a search brings its own read.
    if not order.by_created or query.terms:
        for path, size in _reads(query, sizes):
            needed = {col.key for col in query.columns_for()} | {order.column}
            visit = c.read_index if path.covers(needed) else c.read_row
            cost = size * (visit + c.sort) + need * c.sort
            out.append(Choice(path, False, cost, cost, size))
    return sorted(out, key=lambda choice: choice.cost)


def _ranged(query: ListQuery, order: KeyOrder, path: Path, window: Window
            ) -> list[ColumnElement[bool]]:
    """What the index range itself holds: its facets, the dates (created), the bounds."""
    return (query.facet_where(skip=query.facets - path.facets)
            + (query.date_where() if order.by_created else [])
            + list(window.bound) + _after(order.key, window))


def _residual(query: ListQuery, order: KeyOrder, path: Path,
              col: Any = None) -> list[ColumnElement[bool]]:
    return query.where(skip=path.facets, dates=not order.by_created,
                       col=col or query.hide)


def walk_stmt(query: ListQuery, order: KeyOrder, path: Path, window: Window,
              cap: int | None) -> Select[Any]:
    """Walk ``path`` in key order, testing the other filters on each entry.

    ``cap`` (PostgreSQL only) bounds the entries visited: the range in a subquery with
    LIMIT, the filters outside it. SQLite bounds a walk by a probed key instead
    (``_probe``), because its subqueries cost three times a direct walk per row.
    """
    key = order.key
    ordering = _ordering(key, window.descending)
    if cap is not None and not query.sqlite:
        inner_cols = [TaskRow.id, key.label("k"),
                      *query.columns_for(skip=path.facets, dates=not order.by_created)]
        sub = (select(*inner_cols).where(*_ranged(query, order, path, window))
               .order_by(*ordering).limit(cap).subquery())
        return (select(sub.c.id, sub.c.k)
                .where(*_residual(query, order, path, lambda c: sub.c[c.key]))
                .limit(window.limit).offset(window.offset))
    stmt = (select(TaskRow.id, key.label("k"))
            .where(*_ranged(query, order, path, window), *_residual(query, order, path))
            .order_by(*ordering).limit(window.limit).offset(window.offset))
    if query.sqlite and path.index:
        stmt = stmt.with_hint(TaskRow, _hint(path.index), "sqlite")
    return stmt


async def _probe(conn: AsyncConnection, query: ListQuery, order: KeyOrder, path: Path,
                 window: Window, cap: int) -> tuple[Any, int] | None:
    """SQLite: the (key, id) ``cap`` entries into the walk's range (None: it is shorter).
    Skipping index entries costs a fifth of testing them, so a walk bounded by this key
    costs little more than an unbounded one and cannot run away."""
    stmt = (select(order.key.label("k"), TaskRow.id)
            .where(*_ranged(query, order, path, window))
            .order_by(*_ordering(order.key, window.descending)).limit(1).offset(cap - 1))
    if path.index:
        stmt = stmt.with_hint(TaskRow, _hint(path.index), "sqlite")
    row = (await conn.execute(stmt)).first()
    return None if row is None else (row.k, row.id)


def _upto(key: Any, window: Window, bound: tuple[Any, int]) -> ColumnElement[bool]:
    value, task_id = bound
    return _beyond(key, value, task_id, ">=" if window.descending else "<=")


def read_stmt(query: ListQuery, order: KeyOrder, path: Path, window: Window) -> Select[Any]:
    key = order.key
    if query.sqlite:
        where = query.where() + list(window.bound) + _after(key, window)
        stmt = (select(TaskRow.id, key.label("k")).where(*where)
                .order_by(*_ordering(key, window.descending)))
        if path.index:
            stmt = stmt.with_hint(TaskRow, _hint(path.index), "sqlite")
        return stmt.limit(window.limit).offset(window.offset)
    # OFFSET 0 keeps PostgreSQL from walking the sort index: it collects, then sorts. The
    # anchor of ◀/▶ applies to what was collected: inside, its row value joined the
    # filter index's condition next to a search's names (``sort_name = ANY``), and
    # PostgreSQL walked from the anchor to the end of the filter's range (121k buffers,
    # ~1 s at 1M, for 11 rows; bench/list_bot.py).
    sub = (select(TaskRow.id, key.label("k")).where(*query.where(), *window.bound)
           .offset(0).subquery())
    after: list[ColumnElement[bool]] = []
    if window.after is not None:
        value, task_id = window.after
        row = tuple_(sub.c.k, sub.c.id)
        ref = tuple_(literal(value, key.type), literal(task_id, BigInteger()))
        after.append(row < ref if window.descending else row > ref)
    ordering = ((sub.c.k.desc(), sub.c.id.desc()) if window.descending
                else (sub.c.k.asc(), sub.c.id.asc()))
    return (select(sub.c.id, sub.c.k).where(*after).order_by(*ordering)
            .limit(window.limit).offset(window.offset))


async def _entries(conn: AsyncConnection, stmt: Select[Any], window: Window,
                   rows: dict[int, Any] | None) -> list[tuple[Any, int]]:
    """Run a page statement; with ``rows``, in the same statement read the page's task
    rows into it too (a press then needs no second round trip for them)."""
    if rows is None:
        return [(r.k, r.id) for r in await conn.execute(stmt)]
    page = stmt.subquery()
    found = (await conn.execute(select(*PAGE_COLUMNS, page.c.k.label("page_key"))
                                .join(page, TaskRow.id == page.c.id))).all()
    for r in found:
        rows[r.id] = r
    return sorted(((r.page_key, r.id) for r in found), reverse=window.descending)


def fixed_walk(query: ListQuery, order: KeyOrder) -> Path | None:
    """The walk whose index range holds every filter, if the request has one (no search,
    no minute window): it reads only the page's own entries from where the page starts,
    so it is the cheapest path whatever the counts say, and a ◀/▶ press can read its
    page and its counts in one statement (``page_with_counts``)."""
    if query.terms or query.since is not None:
        return None
    return next((p for p in _walks(query, order) if _residual_empty(query, order, p)), None)


@dataclass(frozen=True)
class _KeysetShape:
    """What a ``page_with_counts`` statement depends on besides its parameter values."""

    dialect: str
    field: SortField
    descending: bool
    facets: frozenset[str]
    date_from: bool
    date_to: bool
    index: str | None


@lru_cache(maxsize=512)
def _keyset_statement(shape: _KeysetShape) -> Select[Any]:
    """The statement of a ``page_with_counts`` shape, built once, its values named
    parameters: building and keying a statement costs a ◀/▶ press more than running it."""
    order = ORDERS[shape.field]
    key = order.key
    binds = facet_binds(TaskRow)
    ranged = [binds[f] for f in sorted(shape.facets)]
    created = TaskRow.created_at.type
    if shape.date_from:
        ranged.append(TaskRow.created_at >= bindparam("created_from", type_=created))
    if shape.date_to:
        ranged.append(TaskRow.created_at < bindparam("created_to", type_=created))
    ranged.append(_beyond_of(key, bindparam("anchor_key", type_=key.type),
                             bindparam("anchor_id", type_=BigInteger()),
                             "<" if shape.descending else ">"))
    counted = facet_sums(shape.facets, shape.date_from, shape.date_to)[0].subquery()
    # Every entry the walk visits is on the page (its range holds every filter), so it
    # reads the rows directly: no self-join, and one reference to ``tasks`` to plan
    # (PostgreSQL plans each statement, and looks at all of its ~30 indexes per reference).
    stmt = (select(*PAGE_COLUMNS, key.label("page_key"), *counted.c)
            .join(counted, true()).where(*ranged)
            .order_by(*_ordering(key, shape.descending))
            .limit(bindparam("page_limit", type_=Integer())))
    if shape.dialect == "sqlite" and shape.index:
        stmt = stmt.with_hint(TaskRow, _hint(shape.index), "sqlite")
    return stmt


async def page_with_counts(conn: AsyncConnection, query: ListQuery, order: KeyOrder,
                           path: Path, window: Window, rows: dict[int, Any]
                           ) -> tuple[list[tuple[Any, int]], FacetCounts | None]:
    """The entries of ``fixed_walk``'s ``path`` after ``window.after`` with their task
    rows (into ``rows``) and, in the same statement, the request's facet counts: one
    round trip where counting first took two. No entries, no counts (None): the caller
    counts."""
    assert window.after is not None
    assert window.offset == 0
    f = query.filters
    sums = FacetSums.of(f)
    shape = _KeysetShape(query.dialect, query.sort.field, window.descending, query.facets,
                         f.date_from is not None, f.date_to is not None, path.index)
    params = dict(sums.params, anchor_key=window.after[0], anchor_id=window.after[1],
                  page_limit=window.limit)
    if f.date_from is not None:
        params["created_from"] = day_start_utc(f.date_from, query.tz)
    if f.date_to is not None:
        params["created_to"] = day_start_utc(f.date_to + timedelta(days=1), query.tz)
    found = (await conn.execute(_keyset_statement(shape), params)).all()
    if not found:
        return [], None
    width = len(PAGE_COLUMNS) + 1
    for r in found:
        rows[r.id] = r
    return (sorted(((r.page_key, r.id) for r in found), reverse=window.descending),
            sums.counts(found[0][width:]))


async def _capped_walk(conn: AsyncConnection, query: ListQuery, order: KeyOrder,
                       choice: Choice, window: Window, rows: dict[int, Any] | None
                       ) -> tuple[list[tuple[Any, int]], bool]:
    """The walk's entries, and whether its cap (not its range) ended it."""
    need = window.offset + window.limit
    cap = max(CAP_MIN, int(choice.expected * CAP_FACTOR) + need)
    if query.sqlite:
        bound = await _probe(conn, query, order, choice.path, window, cap)
        stmt = walk_stmt(query, order, choice.path, window, None)
        if bound is not None:
            stmt = stmt.where(_upto(order.key, window, bound))
        found = await _entries(conn, stmt, window, rows)
        return found, bound is not None and len(found) < window.limit
    found = await _entries(conn, walk_stmt(query, order, choice.path, window, cap), window,
                           rows)
    if len(found) >= window.limit:
        return found, False
    seen = (await conn.execute(select(func.count()).select_from(
        select(TaskRow.id).where(*_ranged(query, order, choice.path, window))
        .order_by(*_ordering(order.key, window.descending)).limit(cap).subquery()))
            ).scalar_one()
    return found, int(seen) >= cap


async def keys_in_order(conn: AsyncConnection, query: ListQuery, sizes: Sizes,
                        order: KeyOrder, window: Window, available: int | None,
                        rows: dict[int, Any] | None = None) -> list[tuple[Any, int]]:
    """Up to ``window.limit`` (key, id) pairs in order; ``available`` = rows known to
    exist in the window (None after an anchor, where it is not known). With ``rows``,
    the task rows of the entries are read by the same statement into it."""
    need = window.offset + window.limit
    choices = choose(query, sizes, order, need)
    first = choices[0]
    if first.walk and not _residual_empty(query, order, first.path):
        found, capped = await _capped_walk(conn, query, order, first, window, rows)
        if not capped or len(found) >= window.limit or (
                available is not None and len(found) >= min(window.limit, available)):
            return found
        # The cap ended the walk: filter and key are correlated here. Take the path whose
        # cost is bounded best even if its estimate is wrong too — which can be this walk,
        # to its end: a covered walk of a status's cost range (182k entries, ~0.2 µs each)
        # found failed + user + a recent window's cheapest page in 1-2 ms where reading
        # those 34k tasks' rows and sorting them took 110 ms (ties on an unpriced cost
        # run in id order, so the oldest came first and ended the capped walk).
        first = min(choices, key=lambda c: c.worst)
    stmt = (walk_stmt(query, order, first.path, window, None) if first.walk
            else read_stmt(query, order, first.path, window))
    return await _entries(conn, stmt, window, rows)


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
