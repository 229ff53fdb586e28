"""The list view's queries: any filter, search, sort and page at a million tasks.

A request runs in three steps, each bounded independently of the store's size where the
data allows it:

1. **Counts.** The exact number of matches, and of entries in every candidate index
   range. Without a search all of it comes from ``task_totals`` (and ``task_counts`` for
   a date filter's days: one read); a
   search is counted over the tasks whose names or ids match (``list_query``).
2. **Page ids** through the access path those counts make cheapest (``list_order``;
   the duration sort in ``list_duration``). ◀/▶ seek from the anchor row, a numbered page
   is read from the nearer end, and a deep created page first skips whole days by their
   counts.
3. **Rows**, by primary key, and the anchors of the first and last row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from taskops.storage.domain import (
    ListFilters,
    PageKind,
    PageRequest,
    Sort,
    SortField,
    TaskPage,
)
from taskops.storage.list_duration import NEVER, STARTED, DurationReader, parts
from taskops.storage.list_order import (
    ORDERS,
    Sizes,
    Window,
    day_bound,
    fixed_walk,
    keys_in_order,
    page_with_counts,
    search_path,
)
from taskops.storage.list_query import (
    ListQuery,
    day_start_utc,
    decode_anchor,
    encode_anchor,
    facet_counts,
    partial_count,
    search_counts,
)
from taskops.storage.models import TaskRow
from taskops.storage.rows import PAGE_COLUMNS, row_to_task

COUNT_KEY = ("day", "status", "trigger", "provider", "model", "used_default")

__all__ = ["COUNT_KEY", "day_start_utc", "list_tasks"]


class _Pager:
    """Reads entries (key, id) of one list, forwards or backwards, by offset or anchor."""

    def __init__(self, conn: AsyncConnection, query: ListQuery, sizes: Sizes) -> None:
        self.conn, self.query, self.sizes = conn, query, sizes
        self.sort = query.sort
        self.duration: DurationReader | None = None
        #: task rows read along with the page's ids
        self.rows: dict[int, Any] = {}

    async def prepare(self) -> None:
        if self.sort.field is SortField.DURATION:
            self.duration = DurationReader(self.conn, self.query, self.sizes,
                                           await parts(self.conn, self.query, self.sizes.total))

    def _descending(self, forward: bool) -> bool:
        return self.sort.descending == forward

    async def at(self, forward: bool, offset: int, limit: int) -> list[tuple[Any, int]]:
        descending = self._descending(forward)
        if self.duration is not None:
            return await self.duration.at(forward, descending, offset, limit)
        order = ORDERS[self.sort.field]
        bound: tuple[Any, ...] = ()
        if order.by_created:
            bound, offset = await day_bound(self.conn, self.query, descending, offset)
        return await keys_in_order(self.conn, self.query, self.sizes, order,
                                   Window(descending, offset, limit, None, bound), limit,
                                   self.rows)

    async def after(self, forward: bool, anchor: tuple[Any, int],
                    limit: int) -> list[tuple[Any, int]]:
        descending = self._descending(forward)
        if self.duration is not None:
            return await self.duration.after(forward, descending, anchor, limit)
        return await keys_in_order(self.conn, self.query, self.sizes, ORDERS[self.sort.field],
                                   Window(descending, 0, limit, anchor), None, self.rows)

    async def number(self, page: int, size: int) -> list[tuple[Any, int]]:
        """Page ``page`` (1-based), read from the nearer end of the list."""
        total = self.sizes.total
        offset = (page - 1) * size
        rows = max(0, min(size, total - offset))
        if rows == 0:
            return []
        from_end = total - offset - rows
        if offset <= from_end:
            return await self.at(True, offset, rows)
        return (await self.at(False, from_end, rows))[::-1]


async def _sizes(conn: AsyncConnection, query: ListQuery) -> Sizes:
    # Range sizes in whole days: a last-N-minutes window counts from its first day, which
    # only makes the estimates of the path choice a little high. The total is exact.
    facets = await facet_counts(conn, query.day_filters)
    if query.terms:
        path = search_path(query, facets)
        counted = await search_counts(conn, query, path.index,
                                      frozenset() if query.terms.ids else path.facets)
        return Sizes(counted.total, facets, counted.searched)
    total = facets.count(query.facets, dated=True)
    return Sizes(total - await partial_count(conn, query), facets)


async def _entries(pager: _Pager, request: PageRequest, page_size: int,
                   page_count: int) -> tuple[list[tuple[Any, int]], int]:
    """The page's entries and its number."""
    sort = pager.sort
    anchor = decode_anchor(sort, request.anchor) if request.anchor else None
    if request.kind is PageKind.AFTER and anchor is not None:
        entries = await pager.after(True, anchor, page_size)
        if len(entries) == page_size:
            return entries, max(1, min(request.number, page_count))
        if entries:
            return entries, page_count
        return await pager.number(page_count, page_size), page_count
    if request.kind is PageKind.BEFORE and anchor is not None:
        entries = (await pager.after(False, anchor, page_size))[::-1]
        if len(entries) == page_size:
            return entries, max(1, min(request.number, page_count))
        return await pager.number(1, page_size), 1
    if request.kind is PageKind.LAST:
        page = page_count
    elif request.kind is PageKind.FIRST:
        page = 1
    else:
        page = min(max(1, request.number), page_count)
    return await pager.number(page, page_size), page


async def _keyset_page(conn: AsyncConnection, query: ListQuery, request: PageRequest,
                       page_size: int, rows: dict[int, Any]
                       ) -> tuple[list[tuple[Any, int]], int] | None:
    """A full ◀/▶ page and the total, read in one statement where the path needs no
    counts to be chosen (``list_order.fixed_walk``); None: read it the general way (no
    such path, or a short page, whose neighbours the general way settles)."""
    if request.kind not in (PageKind.AFTER, PageKind.BEFORE) or not request.anchor:
        return None
    order = ORDERS.get(query.sort.field)
    anchor = decode_anchor(query.sort, request.anchor)
    path = fixed_walk(query, order) if order is not None and anchor is not None else None
    if path is None or order is None or anchor is None:
        return None
    forward = request.kind is PageKind.AFTER
    window = Window(query.sort.descending == forward, 0, page_size, anchor)
    entries, counts = await page_with_counts(conn, query, order, path, window, rows)
    if counts is None or len(entries) < page_size:
        return None
    return (entries if forward else entries[::-1]), counts.count(query.facets, dated=True)


def _row_key(sort: Sort, row: Any, now: datetime) -> Any:
    if sort.field is SortField.CREATED:
        return row.created_at
    if sort.field is SortField.NAME:
        return row.sort_name
    if sort.field is SortField.TOKENS:
        return row.total_tokens
    if sort.field is SortField.COST:
        return -1.0 if row.cost_usd is None else float(row.cost_usd)
    if row.started_at is None:
        return (NEVER, 0)
    if row.duration_ms is not None:
        return (STARTED, row.duration_ms)
    return (STARTED, int((now - row.started_at).total_seconds() * 1000))


async def list_tasks(conn: AsyncConnection, filters: ListFilters, sort: Sort,
                     request: PageRequest | int, page_size: int, *, tz: ZoneInfo,
                     now: datetime) -> TaskPage:
    if isinstance(request, int):
        request = PageRequest.at(request)
    query = await ListQuery.make(filters, sort, tz, now, conn.dialect.name).with_names(conn)
    rows: dict[int, Any] = {}
    read = await _keyset_page(conn, query, request, page_size, rows)
    if read is not None:
        entries, total = read
        page = max(1, min(request.number, -(-total // page_size)))
    else:
        sizes = await _sizes(conn, query)
        total = sizes.total
        page_count = max(1, -(-total // page_size))
        if total == 0:
            return TaskPage([], 0, 1, page_size)
        pager = _Pager(conn, query, sizes)
        await pager.prepare()
        entries, page = await _entries(pager, request, page_size, page_count)
        rows = pager.rows
    ids = [i for _, i in entries]
    missing = [i for i in ids if i not in rows]
    if missing:  # the duration sort merges several statements' entries
        rows.update((r.id, r) for r in await conn.execute(
            select(*PAGE_COLUMNS).where(TaskRow.id.in_(missing))))
    ordered = [rows[i] for i in ids if i in rows]
    if not ordered:
        return TaskPage([], total, page, page_size)
    first, last = ordered[0], ordered[-1]
    return TaskPage([row_to_task(r) for r in ordered], total, page, page_size,
                    encode_anchor(sort, _row_key(sort, first, now), first.id),
                    encode_anchor(sort, _row_key(sort, last, now), last.id))
