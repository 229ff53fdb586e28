"""Calling Telegram for the push side and the auto-refresh, told apart by what went wrong.

Pacing and retries happen in the flood gate (bot/flood.py) under the request's policy:
push messages are retried until delivered (429s after their retry_after, other transient
failures with backoff), live views a few times. What reaches the caller here cannot be
fixed by trying again:
- the chat blocked the bot, was deleted, or the bot was removed: ``ChatGone``;
- a group became a supergroup: ``ChatMoved`` with the new id;
- any other 400: ``Rejected`` (retrying the same request cannot succeed);
- a transient failure a bounded policy gave up on: the Telegram error itself.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from telegram import InlineKeyboardMarkup, Message
from telegram.error import BadRequest, ChatMigrated, Forbidden

from taskops.bot.flood import PUSH, FloodGate, SendPolicy
from taskops.bot.ui import unless_not_modified

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


class NotLeading(Exception):
    """This process no longer leads the cluster: what only the leader sends is not sent."""


def _always() -> bool:
    return True


class Telegram:
    """The bot as the push side and the auto-refresh use it: every call classified.

    ``leading`` is the cluster's fence (storage.leader.Leadership.valid): checked before
    every call, so a process that lost its leadership sends nothing more, even in the
    moment before its push jobs are stopped.
    """

    def __init__(self, bot: Any, gate: FloodGate,
                 leading: Callable[[], bool] = _always) -> None:
        self.bot, self.gate = bot, gate
        self.leading = leading

    async def _classified(self, chat_id: int, request: Awaitable[T]) -> T:
        if not self.leading():
            if inspect.iscoroutine(request):
                request.close()
            raise NotLeading(f"not the leader: nothing sent to chat {chat_id}")
        try:
            return await request
        except ChatMigrated as exc:
            raise ChatMoved(chat_id, int(exc.new_chat_id)) from None
        except Forbidden as exc:
            raise ChatGone(chat_id, exc.message) from None
        except BadRequest as exc:
            if any(marker in exc.message.lower() for marker in _GONE):
                raise ChatGone(chat_id, exc.message) from None
            raise Rejected(exc.message) from exc

    async def send(self, chat_id: int, text: str, keyboard: InlineKeyboardMarkup | None,
                   policy: SendPolicy = PUSH) -> Message:
        message: Message = await self._classified(chat_id, self.bot.send_message(
            chat_id, text, reply_markup=keyboard, rate_limit_args=policy))
        return message

    async def edit(self, chat_id: int, message_id: int, text: str,
                   keyboard: InlineKeyboardMarkup | None, policy: SendPolicy = PUSH) -> bool:
        """Edit a message; False when it was already showing exactly this."""
        return await self._classified(chat_id, unless_not_modified(self.bot.edit_message_text(
            text, chat_id=chat_id, message_id=message_id, reply_markup=keyboard,
            rate_limit_args=policy)))
