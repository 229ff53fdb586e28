"""Leader election: exactly one process among those sharing the store leads a job (the
triggers today).

* PostgreSQL: a session-level advisory lock held on a dedicated connection. If the
  leader's process or connection dies, PostgreSQL drops the lock and a standby takes
  over on its next try.
* SQLite: the database lives on one machine, so an exclusive ``flock`` on a file beside
  it elects one process among those sharing the file; the kernel releases it when the
  process dies.

For the triggers, leadership is an optimisation, not the safety net: each firing is
also recorded with a compare-and-set (``CronStore.fire``), so even two leaders in the same
minute create one task.

:class:`Leadership` is the election of ``taskops run`` processes (the console: Telegram
polling, push, triggers, pruning), where two leaders at once would each deliver every
notification, so it fences as well as elects:

* Standbys try the advisory lock every ``standby_poll`` seconds on a connection of their
  own, named ``taskops standby <member>`` (renamed ``taskops leader <member>`` once it
  holds the lock; ``taskops status`` reads the names).
* The leader's session has ``idle_session_timeout`` = ``server_timeout``; the leader runs a
  statement on it every ``ping`` seconds. A leader that dies, or is cut off from the
  database, loses its session — at once when the socket closes, at the latest
  ``server_timeout`` after its last statement when nothing comes — and PostgreSQL frees
  the lock for a standby.
* The fence: the leader acts only while its last answered ping was *sent* less than
  ``lease`` seconds ago (``lease`` < ``server_timeout``), by its own monotonic clock. The
  server's idle timer starts after that ping arrived, so it frees the lock strictly after
  the old leader stopped counting itself leader: never two leaders, even under a network
  split, as long as clocks run at the same rate. When the session is ended outright
  (terminated, or its process killed), PostgreSQL frees the lock at once while the old
  leader may not know it before its next ping; so a new leader waits one ``lease`` after
  taking the lock before it acts, by which time the old leader's fence has run out.
  :meth:`Leadership.valid` is the check before every leader action; the leading job is
  cancelled the moment the session fails or the lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import time
from collections.abc import Callable, Coroutine
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Protocol

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from taskops.storage.db import Database
from taskops.storage.notify import app_name, connect

log = logging.getLogger(__name__)

#: the advisory-lock key of the triggers' leader ("taskops1" as a 64-bit integer), kept so
#: a process of the previous version and one of this version never lead at once
ADVISORY_KEYS = {"triggers": 0x7461736B6F707331}
#: the election of ``taskops run`` processes (Telegram, push, triggers, pruning)
CONSOLE = "console"


def advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key per leadership name."""
    if name in ADVISORY_KEYS:
        return ADVISORY_KEYS[name]
    digest = hashlib.blake2b(f"taskops:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class LeaderLock(Protocol):
    async def acquire(self) -> bool:
        """Try once; True when this process is the leader now."""
        ...

    async def held(self) -> bool:
        """Whether leadership still holds (the connection is alive)."""
        ...

    async def release(self) -> None: ...


class PgAdvisoryLock:
    def __init__(self, db: Database, key: int) -> None:
        self.db = db
        self.key = key
        self._conn: AsyncConnection | None = None

    async def acquire(self) -> bool:
        if self._conn is not None:
            return True
        conn = await self.db.engines.write.connect()
        try:
            # Autocommit: holding the lock must not hold a transaction open for hours.
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            got = (await conn.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                      {"key": self.key})).scalar()
        except BaseException:
            await conn.invalidate()
            raise
        if not got:
            await conn.close()
            return False
        self._conn = conn
        return True

    async def held(self) -> bool:
        if self._conn is None:
            return False
        try:
            await self._conn.execute(text("SELECT 1"))
        except Exception:
            log.warning("leader: the database connection holding the lock was lost")
            return False
        return True

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        # Closing for good (not back to the pool) drops the session lock with certainty.
        with contextlib.suppress(Exception):
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
        with contextlib.suppress(Exception):
            await conn.invalidate()
        with contextlib.suppress(Exception):
            await conn.close()


class FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    async def acquire(self) -> bool:
        if self._file is not None:
            return True
        file = self.path.open("ab")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            file.close()
            return False
        self._file = file
        return True

    async def held(self) -> bool:
        return self._file is not None

    async def release(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()  # closing drops the flock


async def is_led(db: Database, name: str) -> bool:
    """Whether some process (another one, on SQLite) leads the election ``name``."""
    if db.is_sqlite:
        probe = FileLock(_lock_path(db, name))
        if await probe.acquire():
            await probe.release()
            return False
        return True
    async with db.read() as conn:
        return bool((await conn.execute(text(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = "
            "current_database() AND application_name LIKE :leader)"),
            {"leader": app_name("leader", "%")})).scalar())


class DeferringLock:
    """A lock taken only while no process leads ``defer_to`` (and given up as soon as one
    does): ``taskops worker`` processes fire the triggers only in a cluster without a
    ``taskops run`` leader, which otherwise fires them itself."""

    def __init__(self, db: Database, inner: LeaderLock, defer_to: str) -> None:
        self.db, self.inner, self.defer_to = db, inner, defer_to

    async def acquire(self) -> bool:
        if await is_led(self.db, self.defer_to):
            return False
        return await self.inner.acquire()

    async def held(self) -> bool:
        return await self.inner.held() and not await is_led(self.db, self.defer_to)

    async def release(self) -> None:
        await self.inner.release()


def leader_lock(db: Database, name: str) -> LeaderLock:
    if not db.is_sqlite:
        return PgAdvisoryLock(db, advisory_key(name))
    return FileLock(_lock_path(db, name))


class Role(StrEnum):
    STARTING = "starting"
    STANDBY = "standby"
    LEADER = "leader"
    STOPPED = "stopped"


class Leadership:
    """Elect one process among those sharing the store to run ``lead`` (see the module's
    docstring); the others stand by and take over when it goes."""

    def __init__(self, db: Database, name: str, member: str, *, ping: float = 1.0,
                 lease: float = 3.0, server_timeout: float = 6.0,
                 standby_poll: float = 1.0) -> None:
        if not lease < server_timeout:
            raise ValueError("the fence's lease must be shorter than the server's timeout")
        self.db, self.name, self.member = db, name, member
        self.key = advisory_key(name)
        self.ping, self.lease = ping, lease
        self.server_timeout, self.standby_poll = server_timeout, standby_poll
        self.role = Role.STARTING
        #: how many times this process became leader (a fencing generation)
        self.term = 0
        self._conn: Any = None
        self._file: FileLock | None = None
        self._last_ok = 0.0
        self._lost = True
        self._acting_from = 0.0

    # --- the fence --------------------------------------------------------------------------

    def valid(self) -> bool:
        """Whether this process may act as the leader now (check before each action)."""
        return (self.role is Role.LEADER and self._fresh()
                and time.monotonic() >= self._acting_from)

    def _fresh(self) -> bool:
        """Whether the lock's session answered within the lease (see the module)."""
        if self._lost:
            return False
        return self.db.is_sqlite or time.monotonic() - self._last_ok < self.lease

    # --- the loop ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event,
                  lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Stand by until elected, run ``lead()`` while leading (cancelled the moment the
        fence fails), stand by again; until ``stop``."""
        try:
            while not stop.is_set():
                self.role = Role.STANDBY
                if not await self._wait_elected(stop):
                    break
                self.term += 1
                # The previous leader may count itself leader for up to one lease after
                # its last answered ping (which came before PostgreSQL freed the lock):
                # wait that long before acting. Its process is gone on SQLite.
                self._acting_from = time.monotonic() + (0.0 if self.db.is_sqlite
                                                        else self.lease)
                watch = asyncio.create_task(self._watch(), name=f"{self.name}-fence")
                halt = asyncio.create_task(stop.wait())
                job: asyncio.Task[None] | None = None
                done: set[asyncio.Task[Any]] = set()
                try:
                    grace = self._acting_from - time.monotonic()
                    if grace > 0:
                        done, _ = await asyncio.wait({watch, halt}, timeout=grace)
                    if not done:
                        self.role = Role.LEADER
                        log.info("%s: leading (member %s, term %d)", self.name, self.member,
                                 self.term)
                        job = asyncio.create_task(lead(), name=f"{self.name}-lead")
                        done, _ = await asyncio.wait({job, watch, halt},
                                                     return_when=asyncio.FIRST_COMPLETED)
                finally:
                    self._lost = True
                    self.role = Role.STANDBY
                    tasks = [t for t in (job, watch, halt) if t is not None]
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    await self._drop()
                if job is not None and job in done and not job.cancelled() \
                        and job.exception() is not None:
                    raise job.exception()  # type: ignore[misc]
                if watch in done:
                    log.warning("%s: leadership lost (member %s); stopped leading, standing by",
                                self.name, self.member)
        finally:
            self.role = Role.STOPPED
            await self._drop()

    async def _wait_elected(self, stop: asyncio.Event) -> bool:
        delay = self.standby_poll
        announced = False
        while not stop.is_set():
            try:
                if await self._try():
                    return True
                delay = self.standby_poll
                if not announced:
                    log.info("%s: standing by (member %s)", self.name, self.member)
                    announced = True
            except Exception as error:
                await self._drop()
                log.warning("%s: cannot reach the database to stand by (%s); retrying",
                            self.name, error.__class__.__name__)
                delay = min(delay * 2, 10.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        return False

    async def _try(self) -> bool:
        if self.db.is_sqlite:
            if self._file is None:
                self._file = FileLock(_lock_path(self.db, self.name))
            got = await self._file.acquire()
            self._lost = not got
            return got
        if self._conn is None or self._conn.is_closed():
            self._conn = await connect(
                self.db, "standby", self.member,
                idle_session_timeout=str(int(self.server_timeout * 1000)),
                tcp_keepalives_idle="2", tcp_keepalives_interval="1",
                tcp_keepalives_count="3")
        sent = time.monotonic()
        got = await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key,
                                        timeout=self.lease)
        if not got:
            return False
        self._last_ok, self._lost = sent, False
        await self._conn.execute("SELECT set_config('application_name', $1, false)",
                                 app_name("leader", self.member))
        return True

    async def _watch(self) -> None:
        """Ping the lock's session; return the moment the fence fails."""
        if self.db.is_sqlite:
            await asyncio.Event().wait()  # the kernel holds the flock until the process ends
        pinger = asyncio.create_task(self._pings())
        try:
            while self._fresh():
                # Wake when the lease would run out unless a ping renews it first.
                left = self._last_ok + self.lease - time.monotonic()
                done, _ = await asyncio.wait({pinger}, timeout=max(left, 0.0))
                if done:
                    break
        finally:
            pinger.cancel()
            with contextlib.suppress(BaseException):
                await pinger
            self._lost = True

    async def _pings(self) -> None:
        while True:
            sent = time.monotonic()
            try:
                await self._conn.execute("SELECT 1", timeout=self.lease)
            except Exception as error:
                log.warning("%s: the session holding the lock failed (%s)", self.name,
                            error.__class__.__name__)
                self._lost = True
                return
            self._last_ok = sent
            await asyncio.sleep(self.ping)

    async def _drop(self) -> None:
        """Give the lock up: the session is closed for good (its locks go with it)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 1)
            if not conn.is_closed():
                conn.terminate()
        file, self._file = self._file, None
        if file is not None:
            await file.release()


def _lock_path(db: Database, name: str) -> Path:
    database = make_url(db.settings.database.url).database or "taskops.db"
    return Path(f"{database}.{name}.lock")
