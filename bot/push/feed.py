"""Reading the change feed for the push side: batches with their tasks, and prefix cursors.

Cursors are the store's own (``read_changes``); nothing here computes one. To confirm a
message about the k-th event of a batch, the cursor just after it is asked from the store
by reading that prefix again — on PostgreSQL that prefix cannot change between the two
reads, since everything in it is older than every transaction still in flight.

Batches are shared for a moment: twenty chats woken by the same change read it once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from taskops.bot.push.options import PushOptions
from taskops.storage.domain import EventKind, Task, TaskEvent
from taskops.storage.store import TaskStore

CACHE_SIZE = 64
#: a full batch cannot change; a short one can only grow, and whoever reads it next from
#: its cursor gets the rest — so both are shared, the short one only very briefly
FULL_SECONDS = 5.0
PARTIAL_SECONDS = 0.3


@dataclass(frozen=True)
class Batch:
    #: where this batch was read from
    start: str
    events: list[TaskEvent]
    #: the cursor after the last event
    cursor: str
    #: a full batch: more may follow at once
    full: bool
    #: the tasks of the batch's status changes, as they were when it was read
    tasks: dict[int, Task]


class FeedReader:
    def __init__(self, store: TaskStore, options: PushOptions,
                 kinds: tuple[EventKind, ...] = (EventKind.STATUS_CHANGE,)) -> None:
        self.store, self.options, self.kinds = store, options, kinds
        self._cache: OrderedDict[str, tuple[float, Batch]] = OrderedDict()

    async def read(self, cursor: str) -> Batch:
        now = time.monotonic()
        hit = self._cache.get(cursor)
        if hit is not None and now - hit[0] < (FULL_SECONDS if hit[1].full else PARTIAL_SECONDS):
            return hit[1]
        limit = self.options.batch_size
        feed = await self.store.read_changes(cursor, limit)
        ids = {e.task_id for e in feed.events if e.kind in self.kinds}
        tasks = await self.store.tasks_by_ids(ids) if ids else {}
        batch = Batch(cursor, feed.events, feed.cursor, len(feed.events) >= limit, tasks)
        self._cache[cursor] = (now, batch)
        self._cache.move_to_end(cursor)
        # Batches past FULL_SECONDS are never used again: kept until 64 newer ones came,
        # each up to batch_size events with their payloads, they were the bulk of the
        # push side's heap (bench/soak.py --heap).
        expired = [c for c, (at, _) in self._cache.items() if now - at >= FULL_SECONDS]
        for old in expired:
            del self._cache[old]
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return batch

    def forget_partial(self) -> None:
        """The feed grew (an in-process signal): short batches read before are outdated."""
        for cursor in [c for c, (_, b) in self._cache.items() if not b.full]:
            del self._cache[cursor]

    async def after(self, batch: Batch, index: int, start: str | None = None,
                    start_index: int = -1) -> str:
        """The cursor just after ``batch.events[index]``.

        ``start`` may be a cursor already past ``batch.events[start_index]`` (the previous
        confirmation), so confirming several events of a batch reads it only once.
        """
        if index == len(batch.events) - 1:
            return batch.cursor
        begin = batch.start if start is None else start
        return (await self.store.read_changes(begin, index - start_index)).cursor
