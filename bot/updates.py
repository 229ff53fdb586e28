"""Updates from different chats run side by side; one chat's stay in order.

PTB handles one update at a time by default, so a handler waiting on one chat's flood
pacing held up every other admin. Fully concurrent processing would let two quick
presses in one chat race on the same view's state; a lock per chat keeps their order.
Each update is handled in the console's update scope (bot/outage.py): quick store calls,
and the error handler knows which presses were answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from taskops.bot.outage import update_scope


class PerChatUpdateProcessor(BaseUpdateProcessor):
    def __init__(self, max_concurrent_updates: int = 64) -> None:
        super().__init__(max_concurrent_updates)
        #: one lock per chat with an update in flight, with how many updates hold or wait
        #: for it: dropped when the last one is done, so the map is bounded by the chats
        #: with updates in flight (anyone can message the bot: the gate runs later)
        self._locks: dict[int, tuple[asyncio.Lock, int]] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        with update_scope():
            if chat is None:
                await coroutine
                return
            lock, users = self._locks.get(chat.id, (None, 0))
            if lock is None:
                lock = asyncio.Lock()
            self._locks[chat.id] = (lock, users + 1)
            try:
                async with lock:
                    await coroutine
            finally:
                _, users = self._locks[chat.id]
                if users <= 1:
                    del self._locks[chat.id]
                else:
                    self._locks[chat.id] = (lock, users - 1)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass
