"""The duration sort: finished tasks by their stored duration, merged with the unfinished
ones (counting up to now), then the never-started ones last in either direction.

The list is two groups in order: A, every started task by (duration, id), and N, the
never-started tasks by id. Reading backwards (a page near the end, or ◀) flips each
group's order and their sequence. Within A, finished tasks come through
``list_order.keys_in_order`` on the duration index (the same access-path choice as the
other sorts), and the unfinished ones — few, they are running or paused — are read whole
and merged in Python. A finished task at position j of its own order is at
j + (unfinished tasks before it) in A, so the finished window
[offset − |unfinished|, offset + limit) holds every finished task the page can show.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import BigInteger, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from taskops.storage.list_order import DURATION_ORDER, Sizes, Window, keys_in_order
from taskops.storage.list_query import ListQuery
from taskops.storage.models import TaskRow

STARTED, NEVER = 0, 1
#: an entry of A: ((milliseconds, id)); of the list: ((group, milliseconds), id)
Entry = tuple[int, int]


@dataclass(frozen=True)
class DurationParts:
    unfinished: list[Entry]  # ascending
    never: int
    finished: int


async def parts(conn: AsyncConnection, query: ListQuery, total: int) -> DurationParts:
    where = query.where()
    live = select(TaskRow.id, TaskRow.started_at).where(
        *where, TaskRow.finished_at.is_(None), TaskRow.started_at.is_not(None))
    never = select(func.count()).select_from(TaskRow).where(*where,
                                                            TaskRow.started_at.is_(None))
    if query.sqlite:
        # Without histograms SQLite cannot tell these few rows from many; name the indexes.
        live = live.with_hint(TaskRow, "INDEXED BY ix_tasks_unfinished", "sqlite")
        never = never.with_hint(TaskRow, "INDEXED BY ix_tasks_never_started_facets", "sqlite")
    unfinished = sorted((int((query.now - r.started_at).total_seconds() * 1000), r.id)
                        for r in await conn.execute(live))
    n_never = int((await conn.execute(never)).scalar_one())
    return DurationParts(unfinished, n_never, total - n_never - len(unfinished))


def _before(entry: Entry, ascending: list[Entry], descending: bool) -> int:
    """How many of ``ascending`` come before ``entry`` in the list's direction."""
    if descending:
        return len(ascending) - bisect.bisect_right(ascending, entry)
    return bisect.bisect_left(ascending, entry)


def _is_after(entry: Entry, anchor: Entry, descending: bool) -> bool:
    return entry < anchor if descending else entry > anchor


class DurationReader:
    def __init__(self, conn: AsyncConnection, query: ListQuery, sizes: Sizes,
                 p: DurationParts) -> None:
        self.conn, self.query, self.p = conn, query, p
        self.sizes = replace(sizes, total=p.finished)
        self.bound = (TaskRow.duration_ms.is_not(None),)

    async def _finished(self, window: Window, available: int | None) -> list[Entry]:
        window = replace(window, bound=self.bound)
        return [(int(k), i) for k, i in await keys_in_order(
            self.conn, self.query, self.sizes, DURATION_ORDER, window, available)]

    async def _started_at(self, descending: bool, offset: int, limit: int) -> list[Entry]:
        """A[offset : offset + limit] in the given direction."""
        unfinished, n_fin = self.p.unfinished, self.p.finished
        lo, hi = max(0, offset - len(unfinished)), min(n_fin, offset + limit)
        finished: list[Entry] = []
        if hi > lo:
            far = lo > n_fin - hi  # read the window from the index's nearer end
            if far:
                finished = (await self._finished(
                    Window(not descending, n_fin - hi, hi - lo), hi - lo))[::-1]
            else:
                finished = await self._finished(Window(descending, lo, hi - lo), hi - lo)
        finished_asc = sorted(finished)
        placed = [(lo + t + _before(e, unfinished, descending), e)
                  for t, e in enumerate(finished)]
        for e in unfinished:
            # Ranked before the window's first finished task: it sits before ``offset``.
            if finished and lo > 0 and _before(e, [finished[0]], descending) == 0:
                continue
            placed.append((_before(e, unfinished, descending) + lo
                           + _before(e, finished_asc, descending), e))
        return [e for rank, e in sorted(placed) if offset <= rank < offset + limit]

    async def _started_after(self, descending: bool, anchor: Entry | None,
                             limit: int) -> list[Entry]:
        window = Window(descending, 0, limit, anchor)
        finished = await self._finished(window, None)
        live = [e for e in self.p.unfinished
                if anchor is None or _is_after(e, anchor, descending)]
        merged = sorted(finished + live, reverse=descending)
        return merged[:limit]

    async def _never(self, descending: bool, after: int | None, offset: int,
                     limit: int) -> list[int]:
        q = self.query
        where = [*q.where(), TaskRow.started_at.is_(None)]
        if after is not None:
            ref = literal(after, BigInteger())
            where.append(TaskRow.id < ref if descending else TaskRow.id > ref)
        stmt = (select(TaskRow.id).where(*where)
                .order_by(TaskRow.id.desc() if descending else TaskRow.id.asc())
                .limit(limit).offset(offset))
        if q.sqlite:
            stmt = stmt.with_hint(TaskRow, "INDEXED BY ix_tasks_never_started_facets", "sqlite")
        return [r.id for r in await self.conn.execute(stmt)]

    async def at(self, forward: bool, descending: bool, offset: int,
                 limit: int) -> list[tuple[Any, int]]:
        """``limit`` list entries from ``offset``, reading forwards (A then N) or
        backwards (N then A, each reversed; ``descending`` is then already flipped)."""
        started = self.p.finished + len(self.p.unfinished)
        out: list[tuple[Any, int]] = []
        if forward:
            if offset < started:
                out = [((STARTED, ms), i) for ms, i in
                       await self._started_at(descending, offset, limit)]
            if len(out) < limit:
                skip = max(0, offset - started)
                out += [((NEVER, 0), i) for i in
                        await self._never(descending, None, skip, limit - len(out))]
            return out
        if offset < self.p.never:
            out = [((NEVER, 0), i) for i in
                   await self._never(descending, None, offset, limit)]
        if len(out) < limit:
            skip = max(0, offset - self.p.never)
            out += [((STARTED, ms), i) for ms, i in
                    await self._started_at(descending, skip, limit - len(out))]
        return out

    async def after(self, forward: bool, descending: bool, anchor: tuple[Any, int],
                    limit: int) -> list[tuple[Any, int]]:
        (group, ms), task_id = anchor
        out: list[tuple[Any, int]] = []
        if group == STARTED:
            out = [((STARTED, m), i) for m, i in
                   await self._started_after(descending, (ms, task_id), limit)]
            if forward and len(out) < limit:
                out += [((NEVER, 0), i) for i in
                        await self._never(descending, None, 0, limit - len(out))]
            return out
        out = [((NEVER, 0), i) for i in await self._never(descending, task_id, 0, limit)]
        if not forward and len(out) < limit:
            out += [((STARTED, m), i) for m, i in
                    await self._started_after(descending, None, limit - len(out))]
        return out
