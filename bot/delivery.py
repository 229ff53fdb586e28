"""Calling Telegram for the push side and the auto-refresh, told apart by what went wrong.

Pacing and retries happen in the flood gate (bot/flood.py) under the request's policy:
push messages are retried until delivered (429s after their retry_after, other transient
failures with backoff), live views a few times. What reaches the caller here cannot be
fixed by trying again:
- the chat blocked the bot, was deleted, or the bot was removed: ``ChatGone``;
- a group became a supergroup: ``ChatMoved`` with the new id;
- any other 400: ``Rejected`` (retrying the same request cannot succeed);
- a transient failure a bounded policy gave up on: the Telegram error itself;
- a new message that Telegram may or may not have delivered twice over: ``Unconfirmed``.

At most one repeat per message. A send that timed out, lost its connection or got a 5xx
may have arrived anyway, and the Bot API cannot be asked whether it did. So the gate does
not repeat it blindly (bot/flood.py raises ``Unconfirmed``); ``send`` tells its caller
first (``on_unconfirmed``: the notifier records it with its delivery state, so a restart
also knows the next send is the repeat), waits until Telegram answers that chat again (a
request it refuses without sending anything: a text it cannot parse), then sends it once
more with a line saying it may repeat an earlier one. If that one is unconfirmed too, it is
not sent a third time: the caller gets ``Unconfirmed`` and counts the message as sent.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from telegram import InlineKeyboardMarkup, Message, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, TelegramError

from taskops import metrics
from taskops.bot.flood import (
    PROBE,
    PROBE_TEXT,
    PROBES_IN_FLIGHT,
    PUSH,
    FloodGate,
    SendPolicy,
    Unconfirmed,
    sent_again,
)
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


__all__ = ["ChatGone", "ChatMoved", "NotLeading", "Rejected", "Telegram", "Unconfirmed",
           "sent_again"]

#: waiting for Telegram to answer a chat again before the one repeat
PROBE_FIRST_SECONDS = 0.5
#: one refused request per chat every 2 s while Telegram does not answer it: service is
#: back within about that of Telegram's return (with 4 s, up to 4 s more)
PROBE_MAX_SECONDS = 2.0


class NotLeading(Exception):
    """This process no longer leads the cluster: what only the leader sends is not sent."""


def _always() -> bool:
    return True


class Telegram:
    """The bot as the push side and the auto-refresh use it: every call classified."""

    def __init__(self, bot: Any, gate: FloodGate,
                 leading: Callable[[], bool] = _always) -> None:
        self.bot, self.gate = bot, gate
        #: the cluster's fence (storage.leader.Leadership.valid), checked before every
        #: call: a process that lost its leadership sends nothing more, even in the
        #: moment before its push jobs are stopped
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
                   policy: SendPolicy = PUSH, *, sent_before: bool = False,
                   on_unconfirmed: Callable[[], Awaitable[None]] | None = None,
                   reply_to: int | None = None) -> Message:
        """Send a message, repeating it at most once if Telegram did not confirm it.

        ``sent_before``: an earlier attempt (before a restart) was unconfirmed, so this one
        is already the repeat. ``on_unconfirmed`` is awaited before the repeat is sent.
        Raises ``Unconfirmed`` when the repeat is unconfirmed too (the message may have
        arrived once or twice, or not at all; it is not sent again). ``reply_to``: a
        message of the chat this one answers (sent anyway if that one is gone).

        Every push message passes here, so this is where they are counted
        (``taskops_notifications_total``): once each, whatever sent it."""
        try:
            message = await self._send_repeating(chat_id, text, keyboard, policy, sent_before,
                                                 on_unconfirmed, reply_to)
        except Unconfirmed:
            metrics.notification("unconfirmed")
            raise
        except (Rejected, ChatGone, ChatMoved):
            metrics.notification("dropped")
            raise
        metrics.notification("sent")
        return message

    async def _send_repeating(self, chat_id: int, text: str,
                              keyboard: InlineKeyboardMarkup | None, policy: SendPolicy,
                              sent_before: bool,
                              on_unconfirmed: Callable[[], Awaitable[None]] | None,
                              reply_to: int | None) -> Message:
        if not sent_before:
            try:
                return await self._send(chat_id, text, keyboard, policy, reply_to)
            except Unconfirmed as exc:
                log.warning("message to chat %s may have arrived (%s); sending it once more "
                            "when Telegram answers again", chat_id, exc.cause.message)
                if on_unconfirmed is not None:
                    await on_unconfirmed()
        await self.answering(chat_id)
        return await self._send(chat_id, sent_again(text), keyboard, policy, reply_to)

    async def _send(self, chat_id: int, text: str, keyboard: InlineKeyboardMarkup | None,
                    policy: SendPolicy, reply_to: int | None) -> Message:
        message: Message = await self._classified(chat_id, self.bot.send_message(
            chat_id, text, reply_markup=keyboard, rate_limit_args=policy,
            reply_parameters=(ReplyParameters(reply_to, allow_sending_without_reply=True)
                              if reply_to is not None else None)))
        return message

    async def send_photo(self, chat_id: int, png: bytes, caption: str,
                         policy: SendPolicy = PUSH) -> Message | None:
        """Send a picture with its caption; None when Telegram did not confirm it. A chart
        is not repeated (it follows a text that was): better once or not than twice."""
        try:
            message: Message = await self._classified(chat_id, self.bot.send_photo(
                chat_id, png, caption=caption, rate_limit_args=policy))
        except Unconfirmed as exc:
            metrics.notification("unconfirmed")
            log.warning("photo to chat %s may have arrived (%s); not sent again", chat_id,
                        exc.cause.message)
            return None
        except (Rejected, ChatGone, ChatMoved):
            metrics.notification("dropped")
            raise
        metrics.notification("sent")
        return message

    async def answering(self, chat_id: int) -> None:
        """Wait until Telegram answers a send to ``chat_id`` again: a text it cannot parse,
        which it refuses (400) without sending anything, is asked with backoff until it is
        refused (the first time after a pause: the failure just happened).

        A probe Telegram leaves hanging is not waited for before the next is asked: it
        would hold the chat's recovery for the client's whole timeout (5 s) after Telegram
        is back (telegram-answer-after-timeout-pg: full service 8.9 s). The next one goes
        at its time anyway, at most ``PROBES_IN_FLIGHT`` at once, none while a 429 holds
        the chat (the one asking waits that out)."""
        delay = PROBE_FIRST_SECONDS
        asking: set[asyncio.Task[bool]] = set()
        loop = asyncio.get_running_loop()
        try:
            while True:
                due = loop.time() + delay
                while asking and (left := due - loop.time()) > 0:
                    done, asking = await asyncio.wait(asking, timeout=left,
                                                      return_when=asyncio.FIRST_COMPLETED)
                    if any(task.result() for task in done):
                        return
                await asyncio.sleep(max(0.0, due - loop.time()))
                delay = min(delay * 2, PROBE_MAX_SECONDS)
                if len(asking) < PROBES_IN_FLIGHT and not self.gate.holding(chat_id):
                    asking.add(asyncio.create_task(self._probe(chat_id, delay),
                                                   name=f"probe {chat_id}"))
        finally:
            for task in asking:
                task.cancel()
            await asyncio.gather(*asking, return_exceptions=True)

    async def _probe(self, chat_id: int, next_in: float) -> bool:
        """Does Telegram answer a send to ``chat_id``? (It refuses the probe.)"""
        try:
            await self._classified(chat_id, self.bot.send_message(
                chat_id, PROBE_TEXT, parse_mode=ParseMode.HTML, rate_limit_args=PROBE))
        except Rejected:
            return True
        except TelegramError as exc:
            log.info("chat %s: Telegram not answering yet (%s); asking again in %.1fs",
                     chat_id, exc.message, next_in)
            return False
        return True  # Telegram sent it after all: it answers, whatever it took that for

    async def edit(self, chat_id: int, message_id: int, text: str,
                   keyboard: InlineKeyboardMarkup | None, policy: SendPolicy = PUSH) -> bool:
        """Edit a message; False when it was already showing exactly this."""
        return await self._classified(chat_id, unless_not_modified(self.bot.edit_message_text(
            text, chat_id=chat_id, message_id=message_id, reply_markup=keyboard,
            rate_limit_args=policy)))
