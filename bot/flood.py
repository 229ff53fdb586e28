"""The one flood gate every request to Telegram passes: installed as the Application's rate
limiter, so console edits and replies, answers, documents, notifications, digests, live
views, refreshed lists and task results all wait their turn in the same place.

Telegram's limits (the fake server in tests enforces the same): about one message a second
per chat with a short burst, 20 a minute per group, 30 a second overall; edits count too.
The gate keeps under each with a margin (our clock and the server's never agree exactly,
and a 429 costs far more than the margin):
- per chat, a token bucket (``chat_burst`` at once, then ``chat_per_second``), of which
  bulk requests leave ``chat_reserve`` to a person, so a reply does not queue behind a
  chat's live views and refreshed lists;
- per group, a sliding window under 20 in any minute (``GroupWindow``); the chat's bucket
  still spreads a long burst;
- overall, a true sliding window under 30 in any second. Bulk requests (push) may fill it
  only up to ``bulk_limit``: the rest is kept for a person waiting on a press, so an answer
  never queues behind a burst of notifications.
A 429 holds that chat for the server's ``retry_after``, for every later request to it too.
Requests waiting for the same chat go by their policy's ``priority``, not by who waited
first: a person's, then notifications, then live views. In a busy group (20 a minute) an
alert or a digest does not queue behind the auto-refresh's edits that came before it.

Retries happen here and nowhere else; a request's ``SendPolicy`` (PTB's ``rate_limit_args``)
says how long: the push side retries until delivered; a person's request (a reply, an
edit, a press's answer) is retried — 429s after their retry_after, 5xx and timeouts with a
short backoff — for as long as its answer is still useful: ``useful_seconds`` from the
person's request (the update's arrival, :func:`asked`), and never past Telegram's own
deadline for a press's answer (``CALLBACK_ANSWER_SECONDS``). A retry that could only end
after that is not made: the request fails at once. What cannot succeed (400, 403, a moved
chat) is raised at once for the caller to classify (bot/delivery.py).

A request that makes a new message (``CREATES``) is not repeated blindly after a failure
that Telegram may have performed anyway (a timeout, a dropped connection, a 5xx): each
repeat could be one more copy in the chat. Unless its policy allows that, the gate raises
``Unconfirmed`` and the caller decides (bot/delivery.py repeats a push message once,
marked as such). A person's reply (``repeat_marked``) is repeated here, once: when
Telegram answers that chat again (``PROBE_TEXT``, which it refuses without sending
anything; asked with backoff while the answer is still useful), with a line saying it may
repeat an earlier one, and never a third time. A 429, a refused connection or a request
never sent is not ambiguous and is retried as before.

Send times are wall-clock seconds so a restarted process can be seeded with the last ones
(``seed``) instead of starting with a full burst into a chat that just had one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, TelegramObject
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.ext import BaseRateLimiter

from taskops import metrics, redaction
from taskops.bot.render import render
from taskops.bot.ui import MAX_TEXT, button_fields, visible_length

log = logging.getLogger(__name__)

#: endpoints that count as a message in a chat (the fake server counts the same ones)
PACED_ENDPOINTS = frozenset({"sendMessage", "editMessageText", "editMessageReplyMarkup",
                             "sendDocument", "sendPhoto"})
#: chats not seen for this long are forgotten (their buckets are full again anyway)
FORGET_SECONDS = 3600.0
MAX_TRACKED = 1024
#: requests that make a new message: a repeat after an unconfirmed attempt may be a copy
CREATES = frozenset({"sendMessage", "sendDocument", "sendPhoto", "sendMediaGroup",
                     "sendVideo", "sendAudio", "sendVoice", "sendAnimation", "sendSticker",
                     "sendPoll", "sendLocation", "sendContact", "copyMessage",
                     "copyMessages", "forwardMessage", "forwardMessages"})
#: failures of the HTTP layer after which nothing reached Telegram (httpx's names)
_NOT_SENT = frozenset({"ConnectError", "ConnectTimeout", "PoolTimeout", "UnsupportedProtocol",
                       "ProxyError", "LocalProtocolError"})
MIN_WAIT = 1e-6
#: refused by Telegram's HTML parser ("Unsupported start tag"), so nothing is sent: a
#: request that shows whether Telegram answers a chat again
PROBE_TEXT = "<taskops-probe>"
#: probes left hanging by Telegram at once, per chat (the client's 5 s timeout spans
#: four of them while the backoff ramps up, fewer after)
PROBES_IN_FLIGHT = 4
#: Telegram refuses a press's answer once the press is about 15 s old ("query is too old"):
#: a retry that could only end later is pointless, whatever the policy
CALLBACK_ANSWER_SECONDS = 14.0
#: a person's command or press waits this long for its reply or edit at most (then they
#: have likely asked again, and the chat's next update waits behind this one)
REPLY_USEFUL_SECONDS = 30.0
#: when the person's request being handled arrived (wall-clock, as the gate's clock):
#: what its answers' usefulness is counted from (None: from the answer's first attempt)
_asked_at: ContextVar[float | None] = ContextVar("asked_at", default=None)


@contextlib.contextmanager
def asked(at: float) -> Iterator[None]:
    """Requests made in the block answer a person who asked at ``at`` (bot/outage.py:
    every update), so a reply queued behind the chat's earlier updates does not get
    longer than its usefulness."""
    token = _asked_at.set(at)
    try:
        yield
    finally:
        _asked_at.reset(token)


@dataclass
class Attempt:
    """Whether a request of a block (:func:`attempt`) left the gate for Telegram: a caller
    cancelled after that cannot know whether it arrived, one cancelled before knows it
    did not (bot/push/notifier.py records the first as an unconfirmed send)."""

    went: bool = False


_attempt: ContextVar[Attempt | None] = ContextVar("attempt", default=None)


@contextlib.contextmanager
def attempt() -> Iterator[Attempt]:
    record = Attempt()
    token = _attempt.set(record)
    try:
        yield record
    finally:
        _attempt.reset(token)


@dataclass(frozen=True)
class FloodLimits:
    #: overall, at most this many counted requests in any ``global_window_seconds``
    global_limit: int = 28
    global_window_seconds: float = 1.1
    #: what bulk requests may fill of that window (the rest waits for interactive ones)
    bulk_limit: int = 24
    #: Telegram's 20 messages a minute per group, as a window of its own: any 19 in 61 s
    #: (a margin for the time a request takes to arrive). A token bucket of 4 and 15 a
    #: minute held a burst's digest 14 s behind a few alerts and acks in a busy group
    #: (bench/push_incident.py), with most of the minute's 20 unused
    group_per_window: int = 19
    group_window_seconds: float = 61.0
    chat_burst: int = 4
    chat_per_second: float = 0.9
    #: what bulk requests leave of a chat's (and a group's) burst for a person's request
    chat_reserve: int = 1


@dataclass(frozen=True)
class SendPolicy:
    """How one request waits and retries (passed as ``rate_limit_args``)."""

    #: yields the overall window to interactive requests
    bulk: bool = False
    #: 429s retried after the server's retry_after; None: until it goes through
    flood_retries: int | None = 3
    #: other transient failures (5xx, timeouts, dropped connections) retried with
    #: exponential backoff; None: forever (a timed-out send may have arrived: that retry is
    #: the one repeat the design allows)
    transient_retries: int | None = 0
    backoff_first_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    #: a request that makes a message is retried after a failure Telegram may have
    #: performed anyway (False: ``Unconfirmed`` is raised, the caller decides)
    repeat_unconfirmed: bool = True
    #: ... unless it has a text: then it is sent once more, marked, if Telegram answers a
    #: probe after ``backoff_first_seconds`` (a person is waiting for it)
    repeat_marked: bool = False
    #: counted in the limits (False only for requests Telegram refuses without sending)
    paced: bool = True
    #: seconds from the person's request (:func:`asked`; else the first attempt) after
    #: which an answer is no longer worth waiting for: no retry, wait or probe is begun
    #: that would end later. None: no bound but the retry counts above
    useful_seconds: float | None = None
    #: of the requests waiting for one chat's limits, those of the highest priority go
    #: first (``PERSON``, ``NOTICE``, ``REFRESH``); the others wait until none is left
    priority: int = 2


#: priorities (``SendPolicy.priority``): a person waits for the answer
PERSON = 2
#: a notification, digest, stuck notice or task result: news, and nobody else sends it
NOTICE = 1
#: a live view or refreshed list: its next pass renders afresh anyway
REFRESH = 0


#: a person is waiting: answers, console edits and replies, documents (the default).
#: Retried while useful: a reply given up after three 429s or one failed probe left the
#: admin with no answer at all (bench/faults.py: 2–3 per 429/500 scenario)
INTERACTIVE = SendPolicy(flood_retries=None, transient_retries=None, repeat_unconfirmed=False,
                         repeat_marked=True, backoff_first_seconds=0.25,
                         backoff_max_seconds=2.0, useful_seconds=REPLY_USEFUL_SECONDS)
#: notifications, digests, stuck notices, task results: delivered, however long it takes
#: (retried at least every 4 s: one request per chat, and service is back within seconds
#: of Telegram's return; with 30 s, 35 s passed after a run of timeouts ended)
PUSH = SendPolicy(bulk=True, flood_retries=None, transient_retries=None,
                  repeat_unconfirmed=False, backoff_max_seconds=4.0, priority=NOTICE)
#: live views and refreshed lists: a few tries, since the next pass renders afresh anyway
LIVE = SendPolicy(bulk=True, flood_retries=2, transient_retries=2, repeat_unconfirmed=False,
                  priority=REFRESH)
#: the console's own requests at start (getMe, the webhook's set-up): nobody waits on them,
#: and a Bot API that fails them is reported by `taskops run` in one line at once —
#: retried like a person's reply, it printed a warning per try for 30 s first
SETUP = SendPolicy(flood_retries=3, transient_retries=0)
SETUP_ENDPOINTS = frozenset({"getMe", "setWebhook", "deleteWebhook", "setMyCommands",
                             "getWebhookInfo"})
#: asking whether Telegram answers a chat again, with a request it refuses without sending
#: anything (bot/delivery.py): not paced, one try, a 429 waited out
PROBE = SendPolicy(bulk=True, flood_retries=None, transient_retries=0, paced=False)


class TokenBucket:
    """``burst`` at once, then ``rate`` per second."""

    def __init__(self, burst: float, rate: float, now: float) -> None:
        self.burst, self.rate = burst, rate
        self.tokens, self.at = burst, now

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = max(self.at, now)

    def wait_time(self, now: float, need: float = 1.0) -> float:
        """Seconds until ``need`` tokens are there (one is taken; the rest stay)."""
        self._refill(now)
        return _due((need - self.tokens) / self.rate)

    def take(self) -> None:
        self.tokens -= 1.0

    def replay(self, sent_at: list[float]) -> None:
        """Rebuild the bucket from the times messages were sent (oldest first)."""
        self.tokens, self.at = self.burst, sent_at[0]
        for at in sent_at:
            self._refill(at)
            self.tokens -= 1.0


class GroupWindow:
    """A group's limit as the gate asks for it (as of a token bucket): at most ``limit``
    messages in any ``span`` seconds, of which ``need`` - 1 are left for a person."""

    def __init__(self, limit: int, span: float, clock: Callable[[], float]) -> None:
        self.limit, self.clock = limit, clock
        self.window = SlidingWindow(span)

    def wait_time(self, now: float, need: float = 1.0) -> float:
        return self.window.wait_time(now, self.limit + 1 - math.ceil(need))

    def take(self) -> None:
        self.window.take(self.clock())

    def replay(self, sent_at: list[float]) -> None:
        self.window.times = deque(sent_at)

    @property
    def at(self) -> float:
        """When the last message was taken (0 before any)."""
        return self.window.times[-1] if self.window.times else 0.0


#: what the gate waits on: a chat's bucket, a group's window
Limit = TokenBucket | GroupWindow


class SlidingWindow:
    """At most ``limit`` takes in any ``span`` seconds; a caller may ask for less room."""

    def __init__(self, span: float) -> None:
        self.span = span
        self.times: deque[float] = deque()

    def wait_time(self, now: float, limit: int) -> float:
        while self.times and self.times[0] <= now - self.span:
            self.times.popleft()
        if len(self.times) < limit:
            return 0.0
        return _due(self.times[len(self.times) - limit] + self.span - now)

    def take(self, now: float) -> None:
        self.times.append(now)


def _due(wait: float) -> float:
    # A wait below the clock's resolution (wall-clock seconds near 1.8e9 step by ~2e-7)
    # is none: waiting for it could not move the clock.
    return wait if wait > MIN_WAIT else 0.0


def is_group(chat_id: int | str) -> bool:
    # Groups, supergroups and channels have negative ids (or an @username).
    return isinstance(chat_id, str) or chat_id < 0


def is_transient(exc: TelegramError) -> bool:
    """A failure that the same request may not meet again (not a refusal of the request)."""
    return (isinstance(exc, NetworkError) and not isinstance(exc, BadRequest)) \
        or type(exc) is TelegramError


def may_have_arrived(exc: TelegramError) -> bool:
    """A transient failure after which Telegram may have performed the request anyway: a
    timeout or a dropped connection once it was sent, a 5xx. Not: a 429, a request that was
    never sent (no connection, no free connection in the pool)."""
    if isinstance(exc, RetryAfter) or not is_transient(exc):
        return False
    cause = exc.__cause__
    return not (cause is not None and type(cause).__name__ in _NOT_SENT)


class Unconfirmed(NetworkError):
    """A request that makes a message failed in a way Telegram may have performed it anyway,
    and its policy does not repeat it blindly."""

    def __init__(self, endpoint: str, chat_id: int | str | None, cause: TelegramError) -> None:
        super().__init__(f"{endpoint} to chat {chat_id} unconfirmed: {cause.message}")
        self.endpoint, self.chat_id, self.cause = endpoint, chat_id, cause


def sent_again(text: str) -> str:
    """The repeat of a message that may have arrived: the same text, marked (unless the mark
    would not fit: then the same text)."""
    marked = f"{text}\n\n{render('sent_again')}"
    return marked if visible_length(marked) <= MAX_TEXT else text


def seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _button_texts(button: InlineKeyboardButton) -> list[str] | None:
    """The strings of a button of the kinds the console sends; None for any other kind
    (it is then redacted through its whole ``to_dict``)."""
    fields = button_fields(button)
    return None if fields is None else [s for s in fields if isinstance(s, str)]


def _keyboard_unchanged(markup: InlineKeyboardMarkup, redactor: redaction.Redactor) -> bool:
    """Whether no label or data of the keyboard needs redacting — read from the buttons
    themselves: a keyboard's ``to_dict`` and the walk over it took ~0.6 ms of every list
    edit, for a keyboard that almost never changes."""
    for row in markup.inline_keyboard:
        for button in row:
            texts = _button_texts(button)
            if texts is None or any(redactor.redact(t) != t for t in texts):
                return False
    return True


def _redacted(value: Any, redactor: redaction.Redactor) -> Any:
    """``value`` with every string in it redacted; the very object when nothing changed."""
    if isinstance(value, str):
        return redactor.redact(value)
    if isinstance(value, InlineKeyboardMarkup) and _keyboard_unchanged(value, redactor):
        return value
    if isinstance(value, InputFile):
        content = value.input_file_content
        if not isinstance(content, bytes):
            return value
        redacted = redactor.redact_bytes(content)
        if redacted is content:
            return value
        copy = InputFile(redacted, filename=value.filename)
        copy.attach_name = value.attach_name
        return copy
    if isinstance(value, TelegramObject):
        plain = value.to_dict()
        cleaned = _redacted(plain, redactor)
        return value if cleaned == plain else cleaned
    if isinstance(value, dict):
        return {k: _redacted(v, redactor) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v, redactor) for v in value]
    return value


#: parameters whose very purpose is to hand Telegram a configured secret (setWebhook's)
_CARRY_SECRETS = frozenset({"secret_token"})


def redact_request(data: dict[str, Any]) -> None:
    """Every configured secret out of a request to Telegram (taskops.redaction): texts,
    captions, button labels, documents. The gate sees every request but getUpdates."""
    redactor = redaction.current()
    for key, value in data.items():
        if isinstance(value, int | float | bool) or value is None or key in _CARRY_SECRETS:
            continue
        cleaned = _redacted(value, redactor)
        if cleaned is not value and cleaned != value:
            data[key] = cleaned


class FloodGate(BaseRateLimiter[SendPolicy]):
    def __init__(self, limits: FloodLimits | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.limits = limits or FloodLimits()
        self.clock, self.sleep = clock, sleep
        self._global = SlidingWindow(self.limits.global_window_seconds)
        self._chats: dict[int | str, TokenBucket] = {}
        self._groups: dict[int | str, GroupWindow] = {}
        #: chats Telegram told to wait (429), until when
        self._held: dict[int | str, float] = {}
        #: per chat, the priorities of the requests waiting for its limits (how many each)
        self._waiting: dict[int | str, Counter[int]] = {}
        #: per chat, set when a request stops waiting for it (those behind look again)
        self._moved: dict[int | str, asyncio.Event] = {}

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    # --- the limits -------------------------------------------------------------------------

    def _chat(self, chat_id: int | str) -> TokenBucket:
        bucket = self._chats.get(chat_id)
        if bucket is None:
            self._forget_idle(self._chats)
            bucket = self._chats[chat_id] = TokenBucket(
                self.limits.chat_burst, self.limits.chat_per_second, self.clock())
        return bucket

    def _group(self, chat_id: int | str) -> GroupWindow:
        bucket = self._groups.get(chat_id)
        if bucket is None:
            self._forget_idle(self._groups)
            bucket = self._groups[chat_id] = GroupWindow(
                self.limits.group_per_window, self.limits.group_window_seconds, self.clock)
        return bucket

    def _forget_idle(self, buckets: dict[int | str, TokenBucket] | dict[int | str, GroupWindow]
                     ) -> None:
        if len(buckets) < MAX_TRACKED:
            return
        now = self.clock()
        for chat_id in [c for c, b in buckets.items() if now - b.at > FORGET_SECONDS]:
            del buckets[chat_id]
            self._held.pop(chat_id, None)

    def _buckets(self, chat_id: int | str) -> list[Limit]:
        buckets: list[Limit] = [self._chat(chat_id)]
        if is_group(chat_id):
            buckets.append(self._group(chat_id))
        return buckets

    async def _wait_held(self, chat_id: int | str, deadline: float | None = None) -> None:
        """Wait out a 429's hold on the chat; raises ``RetryAfter`` at once if it lasts past
        ``deadline`` (the request would be useless by then)."""
        while (wait := self._held.get(chat_id, 0.0) - self.clock()) > 0:
            if self._too_late(deadline, wait):
                raise RetryAfter(math.ceil(wait))
            await self.sleep(wait)

    def _deadline(self, policy: SendPolicy, endpoint: str) -> float | None:
        """Until when (gate clock) the request is worth retrying; None: no bound."""
        useful = policy.useful_seconds
        if endpoint == "answerCallbackQuery":
            useful = min(useful or CALLBACK_ANSWER_SECONDS, CALLBACK_ANSWER_SECONDS)
        if useful is None:
            return None
        asked_at = _asked_at.get()
        return (self.clock() if asked_at is None else asked_at) + useful

    def _too_late(self, deadline: float | None, wait: float) -> bool:
        return deadline is not None and self.clock() + wait > deadline

    def _need(self, bulk: bool) -> float:
        # A bulk request leaves the chat's last tokens to a person: a reply waited behind
        # the auto-refresh's edits of that admin's lists (bench/faults.py: p95 2.3 s, the
        # reply a chat-bucket refill behind two edits)
        return 1.0 + (self.limits.chat_reserve if bulk else 0)

    async def _acquire(self, chat_id: int | str, bulk: bool, priority: int) -> None:
        """Wait until one more message (or edit) to ``chat_id`` is within every limit, and
        no request of a higher priority waits for that chat."""
        need = self._need(bulk)
        with self.turn(chat_id, priority):
            for bucket in self._buckets(chat_id):
                while True:
                    if self._behind(chat_id, priority):
                        await self._moved.setdefault(chat_id, asyncio.Event()).wait()
                    elif (wait := bucket.wait_time(self.clock(), need)) > 0:
                        await self.sleep(wait)
                    else:
                        break
                bucket.take()
        limit = self.limits.bulk_limit if bulk else self.limits.global_limit
        while (wait := self._global.wait_time(self.clock(), limit)) > 0:
            await self.sleep(wait)
        self._global.take(self.clock())

    @contextlib.contextmanager
    def turn(self, chat_id: int | str, priority: int) -> Iterator[None]:
        """While the block runs, requests to ``chat_id`` of a lower priority wait (as for a
        request of ``priority`` waiting in the gate): a message put together at the last
        moment (a digest, once the chat may be sent to) keeps its place."""
        waiting = self._waiting.setdefault(chat_id, Counter())
        waiting[priority] += 1
        try:
            yield
        finally:
            waiting[priority] -= 1
            if not +waiting and self._waiting.get(chat_id) is waiting:
                del self._waiting[chat_id]
            moved = self._moved.pop(chat_id, None)
            if moved is not None:
                moved.set()

    def _behind(self, chat_id: int | str, priority: int) -> bool:
        waiting = self._waiting.get(chat_id)
        return waiting is not None and any(n and p > priority for p, n in waiting.items())

    def hold(self, chat_id: int | str, wait: float) -> None:
        """Telegram asked to wait: nothing goes to that chat before then."""
        self._held[chat_id] = max(self._held.get(chat_id, 0.0), self.clock() + wait)

    def holding(self, chat_id: int | str) -> float:
        """Seconds a chat is still held by a 429 (0 when it is not)."""
        return max(0.0, self._held.get(chat_id, 0.0) - self.clock())

    async def ready(self, chat_id: int) -> None:
        """Wait until a message to ``chat_id`` would not wait for its chat (without taking
        anything): what is sent next may then be put together at the last moment."""
        await self._wait_held(chat_id)
        buckets, need = self._buckets(chat_id), self._need(bulk=True)
        while (wait := max(b.wait_time(self.clock(), need) for b in buckets)) > 0:
            await self.sleep(wait)

    def seed(self, chat_id: int, sent_at: Iterable[float]) -> None:
        """Replay a chat's recent send times (from before a restart) into its limits."""
        times = sorted(t for t in sent_at if t > self.clock() - FORGET_SECONDS)
        if times:
            for bucket in self._buckets(chat_id):
                bucket.replay(times)

    async def _until_answering(self, callback: Callable[..., Coroutine[Any, Any, Any]],
                               chat_id: int | str, kwargs: dict[str, Any],
                               policy: SendPolicy, deadline: float | None) -> bool:
        """Wait until Telegram answers a send to this chat again (it refuses
        ``PROBE_TEXT`` without sending anything), asking with the policy's backoff (the
        first time after a pause: the failure just happened); False if it did not answer
        before ``deadline``. As on the push side (bot/delivery.py), a probe left hanging
        is not waited for before the next is asked: it would hold the reply for the
        client's whole timeout after Telegram is back."""
        delay = policy.backoff_first_seconds
        asking: set[asyncio.Future[bool]] = set()
        try:
            while True:
                last = self._too_late(deadline, delay)
                pause: asyncio.Future[None] = asyncio.ensure_future(self.sleep(
                    delay if not last or deadline is None
                    else max(0.0, deadline - self.clock())))
                while not pause.done():
                    waiting: set[asyncio.Future[Any]] = {pause, *asking}
                    done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                    for probe in asking & done:
                        asking.discard(probe)
                        if probe.result():
                            pause.cancel()
                            return True
                if last:
                    return False
                delay = min(delay * 2, policy.backoff_max_seconds)
                if self._too_late(deadline, self.holding(chat_id)):
                    return False
                if len(asking) < PROBES_IN_FLIGHT and not self.holding(chat_id):
                    asking.add(asyncio.ensure_future(self._probe(callback, chat_id, kwargs)))
        finally:
            for probe in asking:
                probe.cancel()
            await asyncio.gather(*asking, return_exceptions=True)

    async def _probe(self, callback: Callable[..., Coroutine[Any, Any, Any]],
                     chat_id: int | str, kwargs: dict[str, Any]) -> bool:
        """Does Telegram answer a send to this chat now?"""
        try:
            await callback("sendMessage", {"chat_id": chat_id, "text": PROBE_TEXT,
                                           "parse_mode": "HTML"}, **kwargs)
        except BadRequest:
            return True
        except RetryAfter as exc:
            self.hold(chat_id, seconds(exc.retry_after))
            return False
        except TelegramError:
            return False
        return True  # Telegram sent it after all: it answers, whatever it took that for

    # --- PTB's hook -------------------------------------------------------------------------

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: SendPolicy | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        policy = rate_limit_args or (SETUP if endpoint in SETUP_ENDPOINTS else INTERACTIVE)
        redact_request(data)  # the request's own dict: what PTB then sends
        chat_id: int | str | None = data.get("chat_id")
        with contextlib.suppress(ValueError, TypeError):
            chat_id = int(chat_id)  # type: ignore[arg-type]
        floods = transients = 0
        repeated = False
        delay = policy.backoff_first_seconds
        deadline = self._deadline(policy, endpoint)
        while True:
            if chat_id is not None:
                await self._wait_held(chat_id, deadline)
                if endpoint in PACED_ENDPOINTS and policy.paced:
                    await self._acquire(chat_id, policy.bulk, policy.priority)
            if (record := _attempt.get()) is not None:
                record.went = True
            try:
                answer = await callback(*args, **kwargs)
            except RetryAfter as exc:
                metrics.telegram_request(endpoint, "429")
                if policy is PUSH:
                    metrics.notification("retried")
                floods += 1
                wait = seconds(exc.retry_after)
                if chat_id is not None:
                    self.hold(chat_id, wait)
                if (policy.flood_retries is not None and floods > policy.flood_retries) \
                        or self._too_late(deadline, wait):
                    raise
                log.warning("%s to chat %s: flood limit, retrying after %.0fs", endpoint,
                            chat_id, wait)
                if chat_id is None:
                    await self.sleep(wait)
            except TelegramError as exc:
                metrics.telegram_request(endpoint, "error")
                if not is_transient(exc):
                    raise
                if policy is PUSH:
                    metrics.notification("retried")
                if endpoint in CREATES and not policy.repeat_unconfirmed \
                        and may_have_arrived(exc):
                    if repeated or not policy.repeat_marked or chat_id is None \
                            or not isinstance(data.get("text"), str):
                        raise Unconfirmed(endpoint, chat_id, exc) from exc
                    repeated = True
                    if not await self._until_answering(callback, chat_id, kwargs, policy,
                                                       deadline):
                        raise Unconfirmed(endpoint, chat_id, exc) from exc
                    log.warning("%s to chat %s may have arrived (%s); sent once more, marked",
                                endpoint, chat_id, exc)
                    data = {**data, "text": sent_again(data["text"])}
                    args = (endpoint, data)
                    continue
                transients += 1
                if (policy.transient_retries is not None
                        and transients > policy.transient_retries) \
                        or self._too_late(deadline, delay):
                    raise
                log.warning("%s to chat %s failed (%s); retrying in %.1fs", endpoint, chat_id,
                            exc, delay)
                await self.sleep(delay)
                delay = min(delay * 2, policy.backoff_max_seconds)
            else:
                metrics.telegram_request(endpoint, "ok")
                return answer
