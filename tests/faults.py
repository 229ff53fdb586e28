"""Real store faults for tests and benchmarks: a SQLite write lock held by another process,
and a PostgreSQL database of our own that refuses connections for a while.

Never the shared server itself: only the database under test is made to refuse, and only
its own sessions are terminated.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy.engine import make_url

HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


@asynccontextmanager
async def sqlite_locked(url: str) -> AsyncIterator[None]:
    """Another process holds the database's write lock until the block ends."""
    path = make_url(url).database
    assert path, url
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLD_LOCK, path, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdin is not None
    try:
        assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"locked"
        yield
    finally:
        proc.stdin.write(b"\n")
        await proc.stdin.drain()
        await asyncio.wait_for(proc.wait(), 30)


def _admin_dsn(url: str) -> tuple[str, str]:
    parsed = make_url(url)
    assert parsed.database, url
    host = parsed.host or "127.0.0.1"
    auth = parsed.username or "postgres"
    return f"postgresql://{auth}@{host}:{parsed.port or 5432}/postgres", parsed.database


async def _admin(url: str, *statements: str) -> None:
    dsn, _ = _admin_dsn(url)
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def refuse_connections(url: str) -> None:
    _, name = _admin_dsn(url)
    await _admin(url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false',
                 "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")


async def allow_connections(url: str) -> None:
    _, name = _admin_dsn(url)
    await _admin(url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


@asynccontextmanager
async def postgres_refusing(url: str) -> AsyncIterator[None]:
    """The database at ``url`` (ours, never the server) refuses connections and its
    sessions are cut, until the block ends."""
    await refuse_connections(url)
    try:
        yield
    finally:
        await allow_connections(url)
