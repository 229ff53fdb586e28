"""Wake-ups between processes through PostgreSQL LISTEN/NOTIFY.

The store NOTIFYs inside the transaction that makes the change (PostgreSQL delivers it at
commit, and never for a rolled-back one); a process LISTENs on a dedicated connection of
its own, outside the pool, and is told at once. Like the in-process bus, a notification
only says "look now": the store stays the source of truth and the listeners keep their
polling as the fallback (a connection being re-made misses what was sent meanwhile).
SQLite has no such channel; its listeners do nothing and polling does the work.

A kill is also announced as its transaction starts, beside it (:class:`KillAnnouncer`),
in one statement on a connection of its own: the owner of the run stops it without
waiting for the kill's transaction, which may queue behind the journal's row locks (the
task's row, the shared day counters) and takes a handful of round trips on a busy
machine. An announcement can come for a kill that then does not commit (the store failed
under it): the worker keeps the task's claim and takes the run up again from its journal
(``runtime.worker``).

The connection carries an ``application_name`` (``taskops <role> <id>``), which is how
``taskops status`` sees which processes are up (``pg_stat_activity``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from taskops.storage.db import CONNECT_SECONDS, Database

log = logging.getLogger(__name__)

#: the channel a kill is announced on; the payload is the task's id
KILL_CHANNEL = "taskops_kill"
#: how often the listening connection is checked, and the longest wait between retries
CHECK_SECONDS = 5.0
RETRY_MAX_SECONDS = 10.0
#: the application_name prefix of every taskops member connection
APP_PREFIX = "taskops"
#: the kill announcer's application_name (not a member: ``taskops status`` leaves it out)
ANNOUNCER_NAME = f"{APP_PREFIX}-kill-announcer"
#: how long an announcement may take, connecting included (a person waits on the kill)
ANNOUNCE_SECONDS = 2.0


def asyncpg_dsn(db: Database) -> str:
    """The database URL as asyncpg takes it (no SQLAlchemy driver name)."""
    url = make_url(db.settings.database.url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def app_name(role: str, member: str) -> str:
    # PostgreSQL keeps 63 bytes of it.
    return f"{APP_PREFIX} {role} {member}"[:63]


async def connect(db: Database, role: str, member: str, **settings: str) -> Any:
    """A dedicated asyncpg connection (outside the pool), named for ``taskops status``."""
    return await asyncpg.connect(
        asyncpg_dsn(db), timeout=CONNECT_SECONDS,
        server_settings={"application_name": app_name(role, member), **settings})


async def notify_kill(db: Database, conn: AsyncConnection, task_id: int) -> None:
    """Announce a kill from within its transaction (delivered when it commits)."""
    if not db.is_sqlite:
        await conn.execute(text("SELECT pg_notify(:channel, :payload)"),
                           {"channel": KILL_CHANNEL, "payload": str(task_id)})


class KillAnnouncer:
    """Announces kills on a connection of its own, outside the pool: one round trip, with
    no pool checkout and no ping before it. Made on first use; a connection found broken
    (the server restarted, a cut) is made again and the announcement sent once more.
    Best effort: the kill's own NOTIFY at its commit, and polling, follow anyway."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: Any = None
        self._lock = asyncio.Lock()
        self._sending: set[asyncio.Task[None]] = set()

    def announce_soon(self, task_id: int) -> None:
        """Start the announcement and return: the kill's transaction goes on beside it, so
        a person's press never waits for it (nor for its connect when the store is away)."""
        if self.db.is_sqlite or not self.db.health.available:
            return  # a store known to be away answers the kill itself
        job = asyncio.create_task(self.announce(task_id), name=f"announce kill #{task_id}")
        self._sending.add(job)
        job.add_done_callback(self._sending.discard)

    async def announce(self, task_id: int) -> None:
        """Tell the run's owner now (delivered at once: outside any transaction)."""
        if self.db.is_sqlite:
            return
        async with self._lock:
            for fresh in (False, True):
                try:
                    if self._conn is None or self._conn.is_closed():
                        fresh = True
                        self._conn = await asyncpg.connect(
                            asyncpg_dsn(self.db), timeout=ANNOUNCE_SECONDS,
                            server_settings={"application_name": ANNOUNCER_NAME})
                    await self._conn.execute("SELECT pg_notify($1, $2)", KILL_CHANNEL,
                                             str(task_id), timeout=ANNOUNCE_SECONDS)
                    return
                except Exception as error:
                    await self._disconnect()
                    if fresh:
                        log.debug("task#%d: the kill could not be announced (%s)", task_id,
                                  error.__class__.__name__)
                        return

    async def close(self) -> None:
        """Close the connection (an announcement still under way is dropped)."""
        for job in list(self._sending):
            job.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
        await self._disconnect()

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)
            if not conn.is_closed():
                conn.terminate()


async def listen_kills(db: Database, member: str, on_kill: Callable[[int], None],
                       stop: asyncio.Event, *, ready: asyncio.Event | None = None) -> None:
    """Call ``on_kill(task_id)`` for every kill committed by any process, until ``stop``.

    Re-connects (with backoff) when the connection is lost. On SQLite, returns at once.
    ``ready`` is set each time the listener is (again) in place.
    """
    if db.is_sqlite:
        return

    def received(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        with contextlib.suppress(ValueError):
            on_kill(int(payload))

    delay = 0.5
    while not stop.is_set():
        conn = None
        try:
            conn = await connect(db, "worker", member)
            await conn.add_listener(KILL_CHANNEL, received)
            if ready is not None:
                ready.set()
            delay = 0.5
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), CHECK_SECONDS)
                if conn.is_closed():
                    raise ConnectionError("the listening connection was closed")
                # A cut that TCP has not noticed yet shows here.
                await conn.execute("SELECT 1", timeout=CHECK_SECONDS)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("kill listener: %s; polling covers until it is back (retry in %.0fs)",
                        error.__class__.__name__, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)
        finally:
            if ready is not None:
                ready.clear()
            if conn is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 2)
                if not conn.is_closed():
                    conn.terminate()
