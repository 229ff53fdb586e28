"""Transient store errors: which failures mean "the store is away for now, try again".

One classification for all of taskops (the worker holds its writes and retries; the bot
answers "the store is unavailable" instead of failing). Transient:

* SQLite: the database is locked or busy (another process holds the write lock longer
  than the busy timeout);
* PostgreSQL: no connection (refused, reset, closed, the server starting up or shutting
  down, the database not accepting connections, too many connections), serialization
  failures and deadlocks (the transaction is rolled back and can run again), a lock not
  available;
* the connection pool timing out, and a connection SQLAlchemy marked invalidated.

Everything else — a constraint violated, bad SQL, a refused transition — is not: asking
again would give the same answer.

:func:`retry` runs an operation until it succeeds, a non-transient error occurs, or an
outage outlasts ``give_up_after``; :class:`StoreUnavailable` then says since when.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

from sqlalchemy import exc as sa_exc

from taskops.storage.domain import StoreError

log = logging.getLogger("taskops.storage")
T = TypeVar("T")

#: SQLSTATE codes after which the same work can simply run again
TRANSIENT_SQLSTATES = frozenset({
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "55P03",  # lock_not_available
    "57P01",  # admin_shutdown (pg_terminate_backend, a fast shutdown)
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now (the server is starting up)
    "53300",  # too_many_connections
    "53400",  # configuration_limit_exceeded
})
#: class 08: connection exceptions
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08"})
_SQLITE_TRANSIENT = ("database is locked", "database table is locked", "database is busy")
_PG_TRANSIENT_TEXT = ("not currently accepting connections", "connection is closed",
                      "connection was closed", "the database system is starting up",
                      "the database system is shutting down")

BACKOFF_FIRST = 0.05
BACKOFF_MAX = 2.0


class StoreUnavailable(StoreError):
    """The store stayed away longer than the caller was willing to wait."""

    def __init__(self, since: float, cause: BaseException) -> None:
        self.since = since
        self.cause = cause
        super().__init__(f"The task store is unavailable ({describe(cause)}), since "
                         f"{time.monotonic() - since:.0f}s.")


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, what SQLAlchemy wrapped, and what that was raised from."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` means the store is away for now (see the module docstring)."""
    for current in _chain(error):
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, sa_exc.TimeoutError):  # the pool had no connection
            return True
        if isinstance(current, OSError):  # refused, reset, unreachable, timed out
            return True
        state = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(state, str) and (state in TRANSIENT_SQLSTATES
                                       or state[:2] in TRANSIENT_SQLSTATE_CLASSES):
            return True
        text = str(current).lower()
        if type(current).__module__.startswith("sqlite3") and any(
                part in text for part in _SQLITE_TRANSIENT):
            return True
        if type(current).__module__.startswith("asyncpg") and any(
                part in text for part in _PG_TRANSIENT_TEXT):
            return True
    return False


def describe(error: BaseException) -> str:
    """One short line for logs and messages: the driver's own words, no SQL, no URL."""
    innermost = error
    for current in _chain(error):
        if not isinstance(current, sa_exc.SQLAlchemyError):
            innermost = current
            break
    text = str(innermost).split("\n", 1)[0].strip()
    text = text[:160] + "…" if len(text) > 160 else text
    return f"{type(innermost).__name__}: {text}" if text else type(innermost).__name__


def backoff(attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``: doubling, capped, jittered."""
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** attempt) * random.uniform(0.5, 1.0)


async def retry(operation: Callable[[], Awaitable[T]], *, give_up_after: float | None = None,
                what: str = "store call") -> T:
    """Run ``operation`` until it succeeds; transient failures are retried with backoff.

    Raises :class:`StoreUnavailable` once failures have lasted ``give_up_after`` seconds
    (never, with None); a non-transient error propagates at once.
    """
    since: float | None = None
    attempt = 0
    while True:
        try:
            result = await operation()
        except Exception as error:
            if not is_transient(error):
                raise
            now = time.monotonic()
            if since is None:
                since = now
                log.warning("%s: the store is unavailable (%s); retrying", what,
                            describe(error))
            if give_up_after is not None and now - since >= give_up_after:
                raise StoreUnavailable(since, error) from error
            await asyncio.sleep(backoff(attempt))
            attempt += 1
        else:
            if since is not None:
                log.info("%s: the store is back after %.1fs", what, time.monotonic() - since)
            return result
