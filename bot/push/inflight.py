"""Deliveries under way, so that a graceful stop lets them end.

A delivery is a push message sent and what records it saved (a chat's cursor with its
alert, a stuck notice's alert and pending list, the relay's cursor, a claimed
re-announcement). A stop that cancels one between Telegram's answer and the save makes
the next process send that message again: a restart of the incident bench repeated an
alert in two chats, and the unacked copy was re-announced too (issue 12).

So a delivery runs as a task of its own (``Deliveries.run``): when the push job that asked
for it is cancelled, the job waits up to ``grace`` seconds for the delivery to end before
cancelling it too. Everything else stops at once, and no new delivery begins. A delivery
cancelled past its grace is waiting for Telegram (its flood budget, or an answer); a save
after Telegram's answer is ``kept``, so even then it is not cut half-way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Deliveries:
    def __init__(self, grace: float) -> None:
        #: seconds a delivery under way may go on once its job is cancelled
        self.grace = grace

    async def run(self, delivery: Coroutine[Any, Any, T], what: str) -> T:
        """Run ``delivery`` (``what``: for the log) to its end, or for ``grace`` seconds
        more once the caller is cancelled; the cancellation goes on after it."""
        task = asyncio.ensure_future(delivery)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # Whatever it ends with is not the caller's news any more: the stop is.
            task.add_done_callback(_retrieved)
            try:
                await asyncio.wait({task}, timeout=self.grace)
            finally:
                if not task.done():
                    log.warning("%s still under way %.1fs after the stop; cancelled", what,
                                self.grace)
                    task.cancel()
            await asyncio.wait({task})  # (a kept save in it ends first)
            raise


def _retrieved(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


async def kept(save: Coroutine[Any, Any, T]) -> T:
    """``save`` run to its end even if the caller is cancelled meanwhile; the cancellation
    goes on once it is saved (a second one gives up waiting: the stop's own bound)."""
    task = asyncio.ensure_future(save)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_retrieved)
        await asyncio.wait({task})
        raise
