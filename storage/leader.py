"""Leader election: exactly one process among those sharing the store leads a job (the
triggers today).

* PostgreSQL: a session-level advisory lock held on a dedicated connection. If the
  leader's process or connection dies, PostgreSQL drops the lock and a standby takes
  over on its next try.
* SQLite: the database lives on one machine, so an exclusive ``flock`` on a file beside
  it elects one process among those sharing the file; the kernel releases it when the
  process dies.

Leadership is an optimisation, not the safety net: each firing is also recorded with a
compare-and-set (``CronStore.fire``), so even two leaders in the same minute create one
task.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from taskops.storage.db import Database

log = logging.getLogger(__name__)

#: the advisory-lock key of the triggers' leader ("taskops1" as a 64-bit integer), kept so
#: a process of the previous version and one of this version never lead at once
ADVISORY_KEYS = {"triggers": 0x7461736B6F707331}


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


def leader_lock(db: Database, name: str) -> LeaderLock:
    if not db.is_sqlite:
        return PgAdvisoryLock(db, advisory_key(name))
    database = make_url(db.settings.database.url).database or "taskops.db"
    return FileLock(Path(f"{database}.{name}.lock"))
