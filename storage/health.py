"""What the store knows of its database's availability, and how long a caller may wait.

Every statement that succeeds is a contact; every transient failure (storage.faults) marks
its path — the reader or the writer, one path on PostgreSQL — as away until the next
success. The health state is kept from engine events, so every caller counts (the
console, the push jobs, the worker's journal), not only the ones that asked.

Callers that must answer a person quickly (the bot, within 2 s) run inside
:func:`quick`: their store calls go to engines with short waits (storage.db), a transient
failure raises :class:`~taskops.storage.faults.StoreUnavailable` carrying the time of
the last contact, and while the path is known to be away only one of them at a time
tries it — the others fail at once instead of queueing behind the same wait. Everyone
else (the worker, push loops, triggers) waits as long as the database's own timeouts
allow and retries on its own terms; :meth:`StoreHealth.pause` is how a loop waits
between its tries without hammering the database and without sleeping past its return.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from taskops.storage.faults import StoreUnavailable, describe

#: set while a quick caller's code runs (see :func:`quick`)
_quick: ContextVar[bool] = ContextVar("store_quick", default=False)

#: a loop's pauses between tries while the store is away: doubling from this ...
PAUSE_FIRST = 0.25
#: ... up to this (the store's return is noticed by whoever tries first, and a paused
#: loop wakes as soon as anyone got an answer; this only bounds a loop that is alone)
PAUSE_MAX = 2.0
_WATCH_STEP = 0.1


@contextlib.contextmanager
def quick() -> Iterator[None]:
    """Store calls in this block (and tasks it starts) answer within about a second."""
    token = _quick.set(True)
    try:
        yield
    finally:
        _quick.reset(token)


def is_quick() -> bool:
    return _quick.get()


@dataclass
class Contact:
    """How one path to the database has been answering."""

    name: str
    #: ``time.monotonic()`` of the last statement that succeeded (None: none yet)
    last_ok: float | None = None
    #: since when it has failed with transient errors, without a success since (None: fine)
    failing_since: float | None = None
    last_error: str | None = None
    #: transient failures since ``failing_since``
    failures: int = 0
    #: quick callers trying the path while it is away
    probes: int = 0

    @property
    def away(self) -> bool:
        return self.failing_since is not None

    def answered(self) -> None:
        self.last_ok = time.monotonic()
        if self.failing_since is not None:
            self.failing_since, self.failures, self.last_error = None, 0, None

    def failed(self, error: BaseException) -> None:
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = now
        self.failures += 1
        self.last_error = describe(error)

    def unavailable(self, error: BaseException) -> StoreUnavailable:
        return StoreUnavailable(self.failing_since or time.monotonic(), error,
                                last_contact=self.last_ok)

    @contextlib.contextmanager
    def probe(self) -> Iterator[None]:
        """A quick caller's try. While the path is away and another quick caller is
        already trying it, fail at once: the answer would be the same, a wait later."""
        if self.away and self.probes:
            raise StoreUnavailable(self.failing_since or time.monotonic(), ConnectionError(
                f"known to be away ({self.last_error})"), last_contact=self.last_ok)
        self.probes += 1
        try:
            yield
        finally:
            self.probes -= 1


@dataclass
class StoreHealth:
    """The store's two paths: on PostgreSQL one engine serves both, so they are one."""

    read: Contact = field(default_factory=lambda: Contact("read"))
    write: Contact = field(default_factory=lambda: Contact("write"))

    @classmethod
    def single(cls) -> StoreHealth:
        one = Contact("database")
        return cls(read=one, write=one)

    def contacts(self) -> tuple[Contact, ...]:
        return (self.read,) if self.read is self.write else (self.read, self.write)

    @property
    def available(self) -> bool:
        return not any(c.away for c in self.contacts())

    def away_since(self) -> float | None:
        """``time.monotonic()`` since when some path has been failing (None: all fine)."""
        times = [c.failing_since for c in self.contacts() if c.failing_since is not None]
        return min(times) if times else None

    async def pause(self, attempt: int) -> None:
        """Wait before a loop's next try while the store is away: ``attempt`` 0, 1, 2, …
        doubles the wait up to :data:`PAUSE_MAX`, but it ends as soon as every path that is
        away now has answered someone."""
        delay = min(PAUSE_MAX, PAUSE_FIRST * 2 ** attempt) * random.uniform(0.75, 1.0)
        started = time.monotonic()
        waiting_for = [c for c in self.contacts() if c.away]
        while (left := delay - (time.monotonic() - started)) > 0:
            if waiting_for and all(c.last_ok is not None and c.last_ok > started
                                   for c in waiting_for):
                return
            await asyncio.sleep(min(_WATCH_STEP, left))
