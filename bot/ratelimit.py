"""Pacing that keeps every chat under Telegram's flood limits.

python-telegram-bot's AIORateLimiter paces the overall rate (30/s) and each group
(20/min) but not a single chat. Telegram also limits one chat to about one message a
second, with a short burst, and edits count too. This adds that per-chat bucket in front,
so the bot waits its turn instead of collecting 429s.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.ext import AIORateLimiter

#: endpoints that count as a message in a chat (the fake server counts the same ones)
PACED_ENDPOINTS = frozenset({"sendMessage", "editMessageText", "editMessageReplyMarkup",
                             "sendDocument", "sendPhoto"})


class ChatRateLimiter(AIORateLimiter):
    # A little under the limits Telegram documents (burst 5, 1/s): our clock and the
    # server's never agree exactly, and a 429 costs far more than the margin.
    def __init__(self, *, per_chat_burst: int = 4, per_chat_rate: float = 0.9,
                 max_retries: int = 3) -> None:
        super().__init__(max_retries=max_retries)
        self._burst = per_chat_burst
        self._rate = per_chat_rate
        self._chats: dict[int | str, AsyncLimiter] = {}

    def _chat_limiter(self, chat_id: int | str) -> AsyncLimiter:
        limiter = self._chats.get(chat_id)
        if limiter is None:
            # A leaky bucket: `burst` at once, then `rate` per second.
            limiter = AsyncLimiter(self._burst, self._burst / self._rate)
            self._chats[chat_id] = limiter
        return limiter

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        chat_id = data.get("chat_id")
        if endpoint in PACED_ENDPOINTS and chat_id is not None and self._rate > 0:
            with contextlib.suppress(ValueError, TypeError):
                chat_id = int(chat_id)
            await self._chat_limiter(chat_id).acquire()
        return await super().process_request(callback, args, kwargs, endpoint, data,
                                             rate_limit_args)
