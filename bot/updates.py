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
        self._locks: dict[int, asyncio.Lock] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        with update_scope():
            if chat is None:
                await coroutine
                return
            # One small lock per chat ever seen: only admins' chats get this far (the gate).
            async with self._locks.setdefault(chat.id, asyncio.Lock()):
                await coroutine

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass
