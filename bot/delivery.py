"""Calling Telegram from the push side and the auto-refresh: paced, retried, and told apart
by what went wrong.

- 429: python-telegram-bot's rate limiter already waits ``retry_after`` and retries a few
  times; if it still gets 429 we wait the server's ``retry_after`` again, for as long as it
  takes. Nothing is dropped.
- Other server or network errors: retried with exponential backoff, forever (a message is
  only given up for a reason that a retry cannot fix).
- The chat blocked the bot, was deleted, or the bot was removed: ``ChatGone``.
- A group became a supergroup: ``ChatMoved`` with the new id.
- Any other 400: ``Rejected`` (retrying the same request cannot succeed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from telegram import InlineKeyboardMarkup, Message
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from taskops.bot.pacing import Pacer
from taskops.bot.ui import unless_not_modified

log = logging.getLogger(__name__)
T = TypeVar("T")

#: 400 answers that mean the chat is no longer reachable (Telegram's descriptions)
_GONE = ("chat not found", "group chat was deactivated", "bot was kicked",
         "user is deactivated", "have no rights to send", "not enough rights to send",
         "chat_write_forbidden", "need administrator rights")


class ChatGone(Exception):
    def __init__(self, chat_id: int, reason: str) -> None:
        super().__init__(f"chat {chat_id} unreachable: {reason}")
        self.chat_id, self.reason = chat_id, reason


class ChatMoved(Exception):
    def __init__(self, chat_id: int, new_chat_id: int) -> None:
        super().__init__(f"chat {chat_id} moved to {new_chat_id}")
        self.chat_id, self.new_chat_id = chat_id, new_chat_id


class Rejected(Exception):
    """Telegram refused the request itself (a 400 that a retry cannot fix)."""


def seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class Telegram:
    """The bot as the push side uses it: every call paced, retried and classified."""

    #: backoff for Telegram errors other than 429: first wait, doubling up to the cap
    retry_first_seconds = 0.5
    retry_max_seconds = 30.0

    def __init__(self, bot: Any, pacer: Pacer) -> None:
        self.bot, self.pacer = bot, pacer

    async def call(self, chat_id: int, request: Callable[[], Awaitable[T]], what: str,
                   attempts: int | None = None) -> T:
        """Make the request until it succeeds (or ``attempts`` transient failures: then the
        last error is raised, for callers that will simply try again later)."""
        delay = self.retry_first_seconds
        failures = 0
        while True:
            await self.pacer.acquire(chat_id)
            try:
                return await request()
            except RetryAfter as exc:
                failures += 1
                if attempts is not None and failures >= attempts:
                    raise
                wait = seconds(exc.retry_after)
                log.warning("%s to chat %s: flood limit, retrying after %.0fs", what, chat_id,
                            wait)
                await asyncio.sleep(wait)
            except ChatMigrated as exc:
                raise ChatMoved(chat_id, int(exc.new_chat_id)) from None
            except Forbidden as exc:
                raise ChatGone(chat_id, exc.message) from None
            except BadRequest as exc:
                if any(marker in exc.message.lower() for marker in _GONE):
                    raise ChatGone(chat_id, exc.message) from None
                raise Rejected(exc.message) from exc
            except (NetworkError, TelegramError) as exc:
                # 5xx, timeouts, dropped connections. A timeout may have been delivered
                # anyway: then this retry is the one repeat the design allows.
                failures += 1
                if attempts is not None and failures >= attempts:
                    raise
                log.warning("%s to chat %s failed (%s); retrying in %.1fs", what, chat_id, exc,
                            delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_seconds)

    async def send(self, chat_id: int, text: str, keyboard: InlineKeyboardMarkup | None,
                   what: str) -> Message:
        return await self.call(chat_id, lambda: self.bot.send_message(
            chat_id, text, reply_markup=keyboard), what)

    async def edit(self, chat_id: int, message_id: int, text: str,
                   keyboard: InlineKeyboardMarkup | None, what: str,
                   attempts: int | None = None) -> bool:
        """Edit a message; False when it was already showing exactly this."""

        return await self.call(chat_id, lambda: unless_not_modified(self.bot.edit_message_text(
            text, chat_id=chat_id, message_id=message_id, reply_markup=keyboard)), what, attempts)
