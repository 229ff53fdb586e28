"""The one place the console meets a store that does not answer.

Every update is handled inside :func:`update_scope`: its store calls are quick ones
(storage.health — they fail within about a second instead of waiting for the database),
and the presses it answers are tracked. A handler does not catch store faults: the error
reaches :func:`on_error`, which answers whatever the update was — a command or a reply
gets one line ("⚠️ The task store is unavailable — retrying; last contact 12 s ago."),
a press gets it as an alert — and logs one line without a traceback. Any other error is
logged with its traceback — except Telegram itself not taking a request (the flood gate
gave up on it), one line — and a press it left unanswered gets an empty answer, so no
button ever spins.

The push loops and the auto-refresh are not updates: each keeps a :class:`Streak`, so a
store fault is one line when it starts and one when it ends, with waits between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from telegram import Update
from telegram.error import NetworkError, RetryAfter, TelegramError

from taskops.bot.context import deps_of
from taskops.bot.flood import asked
from taskops.bot.press import answer, track_answers, was_answered
from taskops.bot.render import render
from taskops.storage.faults import StoreUnavailable, describe, is_transient
from taskops.storage.health import StoreHealth, quick
from taskops.storage.store import TaskStore

log = logging.getLogger(__name__)


@contextlib.contextmanager
def update_scope() -> Iterator[None]:
    """What every update is handled in: quick store calls, presses' answers tracked, and
    its answers retried only while still useful to the person who asked (bot/flood.py)."""
    with quick(), track_answers(), asked(time.time()):
        yield


def store_fault(error: BaseException) -> bool:
    """Whether ``error`` means the store did not answer (not that it refused). A Telegram
    error is never one, whatever network error it was raised from."""
    if isinstance(error, TelegramError):
        return False
    return isinstance(error, StoreUnavailable) or is_transient(error)


def why(error: BaseException) -> str:
    """The driver's own words for a store fault, for the log."""
    return describe(error.cause if isinstance(error, StoreUnavailable) else error)


def _last_contact(error: BaseException, health: StoreHealth) -> float | None:
    if isinstance(error, StoreUnavailable) and error.last_contact is not None:
        return error.last_contact
    known = [c.last_ok for c in health.contacts() if c.last_ok is not None]
    return min(known) if known else None


def ago(seconds: float) -> str:
    """"12 s", "5 min", "3 h": how long ago, at the precision a person needs."""
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 120 * 60:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def unavailable_line(error: BaseException, store: TaskStore) -> str:
    last = _last_contact(error, store.health)
    return render("store_unavailable",
                  ago=None if last is None else ago(time.monotonic() - last))


async def on_error(update: object, context: Any) -> None:
    """The Application's error handler: answer the update, log the error once."""
    error = context.error
    update_id = getattr(update, "update_id", None)
    if error is None:
        return
    if isinstance(error, NetworkError | RetryAfter):
        # Telegram did not take a request (the flood gate has retried it as far as an
        # interactive request may): a fault of the moment, not a bug to trace.
        log.warning("update %s: Telegram did not take the answer (%s: %s)", update_id,
                    type(error).__name__, error)
        await _answer(update, None)
        return
    if not store_fault(error):
        # Log and carry on: one bad update must never stop the console.
        log.error("error while handling update %s", update_id if update_id is not None
                  else update, exc_info=error)
        await _answer(update, None)
        return
    log.warning("update %s: the task store is unavailable (%s); told the admin", update_id,
                why(error))
    await _answer(update, unavailable_line(error, deps_of(context.application).store))


async def _answer(update: object, line: str | None) -> None:
    if not isinstance(update, Update):
        return
    query = update.callback_query
    try:
        if query is not None:
            if not was_answered(query):
                await answer(query, line, alert=line is not None)
        elif line is not None and update.effective_message is not None:
            await update.effective_message.reply_text(line)
    except TelegramError as exc:
        log.warning("update %s: could not answer: %s", update.update_id, exc)


class Streak:
    """A background loop's run of store faults (push, auto-refresh): logged once when it
    starts and once when it ends, with a wait between tries that backs off but ends as
    soon as the store answers anyone."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.attempt = 0
        self.since = 0.0

    async def failed(self, store: TaskStore, error: Exception, *, pause: bool = True) -> bool:
        """A pass failed: True if for a store fault (logged once, waited for); False for
        anything else, which the caller reports itself."""
        if not store_fault(error):
            return False
        if self.attempt == 0:
            self.since = time.monotonic()
            log.warning("%s: the task store is unavailable (%s); waiting for it", self.what,
                        why(error))
        if pause:
            await store.health.pause(self.attempt)
        self.attempt += 1
        return True

    def ok(self) -> None:
        """A pass went through."""
        if self.attempt:
            log.info("%s: the task store answers again (after %.1f s)", self.what,
                     time.monotonic() - self.since)
        self.attempt = 0


async def repeat(store: TaskStore, what: str, step: Callable[[], Awaitable[Any]],
                 wait: Callable[[], Awaitable[Any]], *,
                 going: Callable[[], bool] = lambda: True) -> None:
    """Run ``step`` again and again while ``going()``, awaiting ``wait()`` between runs. A
    store fault pauses (:class:`Streak`, logged once) and tries again; anything else is
    logged with its traceback once per run of failures and waits like a success, so a
    step that keeps failing never spins."""
    streak = Streak(what)
    failing = False
    while going():
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if await streak.failed(store, error):
                continue
            if not failing:
                log.exception("%s failed; trying again", what)
            failing = True
        else:
            failing = False
            streak.ok()
        await wait()


async def periodic(store: TaskStore, what: str, every: float,
                   check: Callable[[], Awaitable[Any]]) -> None:
    """Run ``check`` every ``every`` seconds for ever: a store fault is logged once per
    streak (the next check comes soon enough, so no pause of its own), anything else with
    its traceback, and the loop goes on."""
    streak = Streak(what)
    while True:
        await asyncio.sleep(every)
        try:
            await check()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if not await streak.failed(store, error, pause=False):
                log.exception("%s failed; trying again later", what)
        else:
            streak.ok()
