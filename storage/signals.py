"""In-process signal bus: low-latency wake-ups between the bot, the runtime and the store.

It only says "something changed"; the store stays the source of truth, so a missed
signal costs latency, never correctness (readers also poll the change feed).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from taskops.storage.domain import EventKind, TaskStatus


@dataclass(frozen=True)
class TaskChange:
    task_id: int
    #: the new status, when the status changed
    status: TaskStatus | None
    event_kind: EventKind | None = None
    created: bool = False
    killed: bool = False


class ChangeBus:
    def __init__(self, maxsize: int = 10_000) -> None:
        self._queues: set[asyncio.Queue[TaskChange]] = set()
        self._maxsize = maxsize

    def subscribe(self) -> asyncio.Queue[TaskChange]:
        queue: asyncio.Queue[TaskChange] = asyncio.Queue(self._maxsize)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[TaskChange]) -> None:
        self._queues.discard(queue)

    def publish(self, change: TaskChange) -> None:
        for queue in self._queues:
            # A slow consumer loses wake-ups, not data: it re-reads the store.
            if not queue.full():
                queue.put_nowait(change)
