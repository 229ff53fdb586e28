"""One list request as SQL pieces: filter predicates, search, exact counts and anchors.

Everything the access-path choice needs is known before a page is read: the exact number
of matches and the number of entries each candidate index range holds. Without a search
both come from one row the database sums from ``task_totals`` (and a date filter's days
in ``task_counts``, see ``facet_counts``); with a search they come from one counting
statement whose cost is bounded by the search's own matches (see ``search_counts``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from functools import cache
from itertools import combinations
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Interval,
    Select,
    Text,
    UnaryExpression,
    and_,
    any_,
    bindparam,
    case,
    column,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import operators

from taskops.storage.domain import ID_PREFIX_MIN, ListFilters, SearchTerms, Sort, SortField
from taskops.storage.models import TaskCountRow, TaskNameRow, TaskRow, TaskTotalRow

#: Facets of a task, as task_counts and the facet indexes name them.
STATUS, TRIGGER, PAIR, DEFAULT = "status", "trigger", "pair", "default"
#: SQLite's FTS5 trigram index of task_names (a virtual table: created by the migration).
_FTS = table("task_names_fts", column("rowid"))
#: Ids never have more digits than this (BigInteger).
_MAX_ID_DIGITS = 18
TRIGRAM = 3


def day_start_utc(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def opaque(column: Any) -> Any:
    """The same value, hidden from the planner's index choice.

    ``listing`` picks the access path from exact counts and steers the engine with this:
    SQLite's unary ``+``, and on PostgreSQL ``x + 0`` / ``x || ''``, which no index serves.
    """
    return type_coerce(UnaryExpression(column, operator=operators.custom_op("+")),
                       column.type)


def _pg_opaque(column: Any) -> Any:
    python_type = getattr(column.type, "python_type", str)
    if python_type is bool:
        return type_coerce(column.op("AND")(literal(True)), column.type)
    if python_type in (int, float):
        return type_coerce(column + 0, column.type)
    if python_type is str:
        return type_coerce(column.op("||")(literal("")), column.type)
    if python_type is datetime:
        return type_coerce(column + literal(timedelta(0), Interval()), column.type)
    raise TypeError(f"no opaque form for {column} ({python_type})")


def _same(column: Any) -> Any:
    return column


def facets_of(f: ListFilters) -> frozenset[str]:
    out = set()
    if f.status is not None:
        out.add(STATUS)
    if f.trigger is not None:
        out.add(TRIGGER)
    if f.provider is not None:
        out.add(DEFAULT if f.provider.is_default else PAIR)
    return frozenset(out)


@dataclass(frozen=True)
class ListQuery:
    """A request's filters, sort and clock, with the dialect-specific steering."""

    filters: ListFilters
    sort: Sort
    tz: ZoneInfo
    now: datetime
    dialect: str
    terms: SearchTerms = field(default_factory=SearchTerms)
    #: PostgreSQL: the names the search words matched, fetched once (``with_names``)
    names: tuple[str, ...] | None = None
    #: with an id fragment: the largest task id when the request began (``with_names``)
    max_id: int | None = None

    @classmethod
    def make(cls, filters: ListFilters, sort: Sort, tz: ZoneInfo, now: datetime,
             dialect: str) -> ListQuery:
        return cls(filters, sort, tz, now, dialect, filters.terms)

    @property
    def sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def hide(self) -> Callable[[Any], Any]:
        return opaque if self.sqlite else _pg_opaque

    # --- which facets are filtered ---------------------------------------------------

    @property
    def facets(self) -> frozenset[str]:
        return facets_of(self.filters)

    @property
    def dated(self) -> bool:
        f = self.filters
        return f.date_from is not None or f.date_to is not None or f.within_minutes is not None

    @property
    def since(self) -> datetime | None:
        """The start of a ``within_minutes`` window, or None."""
        minutes = self.filters.within_minutes
        return None if minutes is None else self.now - timedelta(minutes=minutes)

    @property
    def day_filters(self) -> ListFilters:
        """The filters in whole days, as ``task_counts`` counts them: a window starts on
        the day it starts in. ``partial_count`` is what that day holds before the window."""
        since = self.since
        if since is None:
            return self.filters
        day = since.astimezone(self.tz).date()
        start = self.filters.date_from
        return replace(self.filters, within_minutes=None,
                       date_from=day if start is None else max(start, day))

    # --- predicates ------------------------------------------------------------------

    def facet_where(self, skip: Iterable[str] = (), col: Callable[[Any], Any] = _same
                    ) -> list[ColumnElement[bool]]:
        f, skipped = self.filters, set(skip)
        where: list[ColumnElement[bool]] = []
        if f.status is not None and STATUS not in skipped:
            where.append(col(TaskRow.status) == f.status.value)
        if f.trigger is not None and TRIGGER not in skipped:
            where.append(col(TaskRow.trigger) == f.trigger.value)
        if f.provider is not None:
            if f.provider.is_default and DEFAULT not in skipped:
                where.append(col(TaskRow.used_default).is_(True))
            elif not f.provider.is_default and PAIR not in skipped:
                where.append(and_(col(TaskRow.provider) == f.provider.provider,
                                  col(TaskRow.model) == f.provider.model))
        return where

    def date_where(self, col: Callable[[Any], Any] = _same) -> list[ColumnElement[bool]]:
        f = self.filters
        where: list[ColumnElement[bool]] = []
        if f.date_from is not None:
            where.append(col(TaskRow.created_at) >= day_start_utc(f.date_from, self.tz))
        if f.date_to is not None:
            where.append(col(TaskRow.created_at)
                         < day_start_utc(f.date_to + timedelta(days=1), self.tz))
        since = self.since
        if since is not None:
            where.append(col(TaskRow.created_at) >= since)
        return where

    def search_where(self, col: Callable[[Any], Any] = _same) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if self.terms.words and self.names is not None:
            where.append(col(TaskRow.sort_name) == any_(literal(list(self.names),
                                                                ARRAY(Text))))
        elif self.terms.words:
            where.append(col(TaskRow.sort_name).in_(self.names_matching()))
        if self.terms.ids:
            where.append(id_ranges_where(self.terms.ids, col(TaskRow.id), self.max_id))
        return where

    def where(self, skip: Iterable[str] = (), col: Callable[[Any], Any] = _same,
              dates: bool = True) -> list[ColumnElement[bool]]:
        """Every filter, minus the facets in ``skip`` (an index range already holds them)
        and the dates unless ``dates``."""
        return (self.facet_where(skip, col) + (self.date_where(col) if dates else [])
                + self.search_where(col))

    def columns_for(self, skip: Iterable[str] = (), dates: bool = True) -> list[Any]:
        """The task columns ``where(skip, dates=dates)`` reads."""
        f, skipped = self.filters, set(skip)
        cols: list[Any] = []
        if f.status is not None and STATUS not in skipped:
            cols.append(TaskRow.status)
        if f.trigger is not None and TRIGGER not in skipped:
            cols.append(TaskRow.trigger)
        if f.provider is not None and f.provider.is_default and DEFAULT not in skipped:
            cols.append(TaskRow.used_default)
        if f.provider is not None and not f.provider.is_default and PAIR not in skipped:
            cols += [TaskRow.provider, TaskRow.model]
        if dates and self.dated:
            cols.append(TaskRow.created_at)
        if self.terms.words:
            cols.append(TaskRow.sort_name)
        return cols

    async def with_names(self, conn: AsyncConnection) -> ListQuery:
        """What the search's statements need to know first.

        Words, on PostgreSQL: the names they match. PostgreSQL may run ``IN (subquery)``
        as a hash join, which does not keep a walk's order; a constant array is a plain
        (hashed) filter, and gives the planner the real number of names.

        An id fragment: the largest id. A fragment's prefix ranges go up to 18 digits
        (15 ranges for ``#8185``); those above every id match nothing, and PostgreSQL
        spent 7 ms planning each statement with all of them OR'd (against ~30 indexes
        that end in the id) to run it in 0.06 ms. A task created meanwhile is newer than
        this read."""
        query = self
        if self.terms.ids:
            top = (await conn.execute(select(func.max(TaskRow.id)))).scalar()
            query = replace(query, max_id=int(top or 0))
        if self.sqlite or not self.terms.words:
            return query
        names = tuple(r[0] for r in await conn.execute(self.names_matching()))
        return replace(query, names=names)

    def names_matching(self) -> Select[Any]:
        """Distinct task names that contain every search word.

        The dictionary of distinct names (``task_names``, filled by a trigger on tasks) is
        searched through a trigram index — FTS5 on SQLite, a GIN over the name's trigrams
        on PostgreSQL — so the cost follows the names that match, not the tasks.
        """
        words = self.terms.words
        long_words = [w for w in words if len(w) >= TRIGRAM]
        stmt = select(TaskNameRow.sort_name)
        if long_words and self.sqlite:
            phrase = " ".join('"' + w.replace('"', '""') + '"' for w in long_words)
            stmt = stmt.where(TaskNameRow.id.in_(
                select(_FTS.c.rowid).where(literal_column(_FTS.name).op("MATCH")(phrase))))
        elif long_words:
            grams = sorted({w[i:i + TRIGRAM] for w in long_words
                            for i in range(len(w) - TRIGRAM + 1)})
            stmt = stmt.where(func.taskops_trigrams(TaskNameRow.sort_name)
                              .op("@>")(literal(grams, ARRAY(Text))))
        for w in words:
            if self.sqlite and len(w) >= TRIGRAM:
                continue  # the FTS5 phrase is already an exact substring match
            stmt = stmt.where(func.instr(TaskNameRow.sort_name, w) > 0 if self.sqlite
                              else func.strpos(TaskNameRow.sort_name, w) > 0)
        return stmt


def id_ranges(fragment: str) -> list[tuple[int, int]]:
    """Ids a fragment matches: itself, and with ``ID_PREFIX_MIN`` digits or more every id
    that starts with it (123, 1230–1239, 12300–12399, ...)."""
    if fragment.startswith("0"):
        return []
    value = int(fragment)
    if len(fragment) < ID_PREFIX_MIN:
        return [(value, value)]
    return [(value * 10 ** j, (value + 1) * 10 ** j - 1)
            for j in range(_MAX_ID_DIGITS - len(fragment) + 1)]


def _intersect(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out = [(max(lo1, lo2), min(hi1, hi2)) for lo1, hi1 in a for lo2, hi2 in b]
    return [(lo, hi) for lo, hi in out if lo <= hi]


def id_ranges_where(fragments: Iterable[str], id_column: Any = TaskRow.id,
                    max_id: int | None = None) -> ColumnElement[bool]:
    """Ids every fragment matches; without the ranges that start above ``max_id``."""
    ranges: list[tuple[int, int]] | None = None
    for fragment in fragments:
        mine = id_ranges(fragment)
        ranges = mine if ranges is None else _intersect(ranges, mine)
    if ranges and max_id is not None:
        ranges = [(lo, hi) for lo, hi in ranges if lo <= max_id]
    if not ranges:
        return false()
    return or_(*(id_column == lo if lo == hi else id_column.between(lo, hi)
                 for lo, hi in ranges))


# --- counts --------------------------------------------------------------------------


@dataclass(frozen=True)
class FacetCounts:
    """Tasks matching a request's facet filters, for every subset of its facets (what an
    index led by those facets holds): over all days, and within its date filter."""

    counts: Mapping[frozenset[str], tuple[int, int]]

    def count(self, facets: Iterable[str], dated: bool) -> int:
        """Tasks matching the request's values for ``facets`` (and its dates if ``dated``)."""
        all_n, dated_n = self.counts[frozenset(facets)]
        return dated_n if dated else all_n


def _subsets(facets: frozenset[str]) -> tuple[frozenset[str], ...]:
    ordered = sorted(facets)
    return tuple(frozenset(s) for r in range(len(ordered) + 1)
                 for s in combinations(ordered, r))


def facet_binds(t: Any) -> dict[str, ColumnElement[bool]]:
    """Each facet's condition on ``t`` (``tasks`` or a counter table), its value a named
    parameter as ``FacetSums.params`` names them: for statements built once per shape."""
    return {STATUS: t.status == bindparam("status"),
            TRIGGER: t.trigger == bindparam("trigger"),
            PAIR: and_(t.provider == bindparam("provider"), t.model == bindparam("model")),
            DEFAULT: t.used_default.is_(True)}


def _sums(t: type[TaskTotalRow] | type[TaskCountRow], subsets: tuple[frozenset[str], ...],
          prefix: str) -> list[Any]:
    conds = facet_binds(t)
    return [func.coalesce(func.sum(case((and_(*(conds[f] for f in s)), t.n), else_=0)
                                   if s else t.n), 0).label(f"{prefix}{i}")
            for i, s in enumerate(subsets)]


@cache
def facet_sums(facets: frozenset[str], date_from: bool, date_to: bool
                ) -> tuple[Select[Any], tuple[frozenset[str], ...]]:
    """One row: the totals of every subset of ``facets``, then (with a date bound) the
    same within the days. Built once per shape, with its values as named parameters: a
    list page runs it every time, and building and keying it cost more than running it."""
    subsets = _subsets(facets)
    totals = select(*_sums(TaskTotalRow, subsets, "a"))
    if not (date_from or date_to):
        return totals, subsets
    c = TaskCountRow
    in_range = ([c.day >= bindparam("date_from")] if date_from else []) + (
        [c.day <= bindparam("date_to")] if date_to else [])
    # The day is the counters' primary key's first column: only the range is read.
    days = select(*_sums(c, subsets, "d")).where(*in_range).subquery()
    all_days = totals.subquery()
    # Each side is one row: a join on true is their product, said so.
    return (select(*all_days.c, *days.c).select_from(all_days.join(days, true())),
            subsets)


@dataclass(frozen=True)
class FacetSums:
    """The statement that counts ``filters``' facets (one row), its parameters, and how
    to read its row — alone (``facet_counts``) or joined to a page's rows."""

    stmt: Select[Any]
    subsets: tuple[frozenset[str], ...]
    params: dict[str, Any]

    @classmethod
    def of(cls, filters: ListFilters) -> FacetSums:
        stmt, subsets = facet_sums(facets_of(filters), filters.date_from is not None,
                                    filters.date_to is not None)
        p = filters.provider
        return cls(stmt, subsets, {
            "status": filters.status.value if filters.status else None,
            "trigger": filters.trigger.value if filters.trigger else None,
            "provider": p.provider if p is not None else None,
            "model": p.model if p is not None else None,
            "date_from": filters.date_from, "date_to": filters.date_to})

    def counts(self, row: Sequence[Any]) -> FacetCounts:
        """The counts from the statement's columns, in order."""
        n = len(self.subsets)
        dated = row[n:] if len(row) > n else row
        return FacetCounts({s: (int(row[i]), int(dated[i]))
                            for i, s in enumerate(self.subsets)})


async def facet_counts(conn: AsyncConnection, filters: ListFilters) -> FacetCounts:
    """The counts of ``filters``' facets from the totals (about a hundred rows), and
    within its date filter from those days' counters too: one statement, one row."""
    sums = FacetSums.of(filters)
    return sums.counts((await conn.execute(sums.stmt, sums.params)).one())


async def partial_count(conn: AsyncConnection, query: ListQuery) -> int:
    """Matches (no search) that ``day_filters`` counts but the ``within_minutes`` window
    leaves out: those of the window's first day created before it starts. One day's
    matches at most, counted from a (filter, created_at) index."""
    since = query.since
    if since is None:
        return 0
    day = since.astimezone(query.tz).date()
    stmt = (select(func.count()).select_from(TaskRow)
            .where(*query.facet_where(), *replace(query, filters=query.day_filters).date_where(),
                   TaskRow.created_at >= day_start_utc(day, query.tz),
                   TaskRow.created_at < since))
    return int((await conn.execute(stmt)).scalar_one())


def counter_where(t: Any, f: ListFilters) -> list[ColumnElement[bool]]:
    """``f`` as conditions on the counters (``task_counts``; ``task_totals`` for filters
    without dates): the list's day-skipping and the provider menu read them alike."""
    where: list[ColumnElement[bool]] = []
    if f.status is not None:
        where.append(t.status == f.status.value)
    if f.trigger is not None:
        where.append(t.trigger == f.trigger.value)
    if f.provider is not None:
        if f.provider.is_default:
            where.append(t.used_default.is_(True))
        else:
            where.append(and_(t.provider == f.provider.provider, t.model == f.provider.model))
    if f.date_from is not None:
        where.append(t.day >= f.date_from)
    if f.date_to is not None:
        where.append(t.day <= f.date_to)
    return where


async def day_counts(conn: AsyncConnection, query: ListQuery) -> list[tuple[date, int]]:
    """Matches per local day (no search), oldest first: deep created pages skip by it."""
    t = TaskCountRow
    where = counter_where(t, query.day_filters)
    rows = await conn.execute(select(t.day, func.sum(t.n)).where(*where)
                              .group_by(t.day).order_by(t.day))
    days = [(r[0], int(r[1])) for r in rows if r[1]]
    before = await partial_count(conn, query)
    if before and days:
        days[0] = (days[0][0], days[0][1] - before)
    return [(day, n) for day, n in days if n > 0]


@dataclass(frozen=True)
class SearchCounts:
    #: tasks matching everything
    total: int
    #: tasks the search alone matches: what reading them through the name index visits
    searched: int


async def search_counts(conn: AsyncConnection, query: ListQuery, index: str | None,
                        facets: frozenset[str]) -> SearchCounts:
    """Exact counts of a search: one index-only pass over the tasks whose names match,
    through the name index led by ``facets`` (``index``), or whose ids match (the
    primary key). ``searched`` is what that pass visits."""
    rest = query.facet_where(skip=facets) + query.date_where()
    hit = case((and_(*rest), 1), else_=0) if rest else literal(1)
    stmt = (select(func.count(), func.coalesce(func.sum(hit), 0)).select_from(TaskRow)
            .where(*query.facet_where(skip=query.facets - facets), *query.search_where()))
    if query.sqlite:
        hint = "NOT INDEXED" if query.terms.ids else f"INDEXED BY {index}"
        stmt = stmt.with_hint(TaskRow, hint, "sqlite")
    row = (await conn.execute(stmt)).one()
    return SearchCounts(total=int(row[1]), searched=int(row[0]))


# --- anchors -------------------------------------------------------------------------

_FIELD_CODES = {SortField.CREATED: "c", SortField.NAME: "n", SortField.TOKENS: "t",
                SortField.COST: "$", SortField.DURATION: "d"}


def encode_anchor(sort: Sort, key: Any, task_id: int) -> str:
    """``<field><direction>|<id>|<key>``: opaque to the bot, checked on the way back."""
    if isinstance(key, datetime):
        text = key.isoformat()
    elif isinstance(key, float):
        text = repr(key)
    elif isinstance(key, tuple):  # duration: (group, milliseconds)
        text = f"{key[0]}:{key[1]}"
    else:
        text = str(key)
    return f"{_FIELD_CODES[sort.field]}{'-' if sort.descending else '+'}|{task_id}|{text}"


def decode_anchor(sort: Sort, anchor: str) -> tuple[Any, int] | None:
    """(key, id) of an anchor made for this sort, else None (the caller falls back)."""
    try:
        head, task_id, text = anchor.split("|", 2)
        if head != f"{_FIELD_CODES[sort.field]}{'-' if sort.descending else '+'}":
            return None
        key: Any
        if sort.field is SortField.CREATED:
            key = datetime.fromisoformat(text)
            if key.tzinfo is None:
                return None
        elif sort.field is SortField.NAME:
            key = text
        elif sort.field is SortField.TOKENS:
            key = int(text)
        elif sort.field is SortField.COST:
            key = float(text)
        else:
            group, _, ms = text.partition(":")
            key = (int(group), int(ms))
        return key, int(task_id)
    except (ValueError, KeyError):
        return None
