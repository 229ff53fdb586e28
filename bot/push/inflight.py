"""Deliveries under way, so that a graceful stop lets them end.

A delivery is a push message sent and what records it saved (a chat's cursor with its
alert, a stuck notice's pending list, a claimed re-announcement). A stop that cancels one
between Telegram's answer and the save makes the next process send that message again: a
restart of the incident bench repeated an alert in two chats, and the unacked copy was
re-announced too (issue 12). So the push side stops in two steps:

1. ``Deliveries.close``: none begins any more (a job that tries waits there to be
   cancelled), and those under way get a bounded time to end;
2. the push jobs are cancelled (bot/push/service.py).

What is still under way at 2. waits for Telegram (its flood budget, or an answer); a save
after Telegram's answer is ``kept``, so even then it is not cut half-way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

T = TypeVar("T")


class Deliveries:
    def __init__(self) -> None:
        self.under_way = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = asyncio.Event()
        self._never = asyncio.Event()

    @contextlib.asynccontextmanager
    async def one(self) -> AsyncIterator[None]:
        """One delivery: the block runs to its end unless the push side is cancelled. Once
        closed, nothing begins: the caller waits here until its job is cancelled."""
        if self._closed.is_set():
            await self._never.wait()
        self.under_way += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.under_way -= 1
            if not self.under_way:
                self._idle.set()

    async def close(self, grace: float) -> bool:
        """Let no delivery begin, and wait up to ``grace`` seconds for those under way;
        False if some still are."""
        self._closed.set()
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            return False
        return True


async def kept(save: Awaitable[T]) -> T:
    """``save`` run to its end even if the caller is cancelled meanwhile; the cancellation
    goes on once it is saved (a second one gives up waiting: the stop's own bound)."""
    task = asyncio.ensure_future(save)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        # Its failure, if any, is not the caller's news any more: the cancellation is.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        await asyncio.wait({task})
        raise
