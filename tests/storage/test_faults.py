"""Which store errors are transient: classified from real failures of both engines."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from taskops.storage.db import create_engines, migrate
from taskops.storage.domain import InvalidTransition
from taskops.storage.faults import StoreUnavailable, describe, is_transient, retry
from tests import postgres
from tests.faults import allow_connections, refuse_connections, sqlite_locked


async def failure(engine_url: str, sql: str = "SELECT 1", **options: object) -> BaseException:
    engine = create_async_engine(engine_url, **options)  # type: ignore[arg-type]
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql))
    except Exception as error:
        return error
    finally:
        await engine.dispose()
    raise AssertionError("no failure")


async def test_sqlite_locked_is_transient(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    await migrate(url)
    engines = create_engines(url, sqlite_busy_timeout_ms=50)
    try:
        async with sqlite_locked(url):
            with pytest.raises(Exception) as locked:
                async with engines.write.begin() as conn:
                    await conn.execute(text("DELETE FROM meta"))
        assert is_transient(locked.value)
        assert describe(locked.value) == "OperationalError: database is locked"
    finally:
        await engines.dispose()


async def _admin(server: str, sql: str) -> None:
    admin = await asyncpg.connect(postgres.admin_url(server))
    try:
        await admin.execute(sql)
    finally:
        await admin.close()


@pytest.fixture
def own_database(postgres_url: str) -> Iterator[str]:
    """A database of this test's own: it is made to refuse connections, nothing else."""
    server = postgres.ensure_server()
    name = f"taskops_test_faults_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    url = postgres.database_url(server, name)
    yield url
    asyncio.run(allow_connections(url))
    asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def test_postgres_faults_are_transient(own_database: str) -> None:
    engine = create_async_engine(own_database)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            await refuse_connections(own_database)  # cuts this session too
            with pytest.raises(Exception) as cut:
                await conn.execute(text("SELECT 1"))
        assert is_transient(cut.value)
        refused = await failure(own_database)
        assert is_transient(refused)
        assert "not currently accepting connections" in describe(refused)
    finally:
        await allow_connections(own_database)
        await engine.dispose()
    nobody = await failure("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    assert is_transient(nobody)


async def test_serialization_failures_are_transient(own_database: str) -> None:
    engine = create_async_engine(own_database)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x int)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
        async with engine.connect() as one, engine.connect() as two:
            await one.execute(text("BEGIN ISOLATION LEVEL SERIALIZABLE"))
            await two.execute(text("BEGIN ISOLATION LEVEL SERIALIZABLE"))
            await one.execute(text("SELECT * FROM t"))
            await two.execute(text("SELECT * FROM t"))
            await one.execute(text("UPDATE t SET x = 2"))
            await one.commit()
            with pytest.raises(Exception) as conflict:
                await two.execute(text("UPDATE t SET x = 3"))
        assert is_transient(conflict.value)
    finally:
        await engine.dispose()


async def test_other_errors_are_not_transient(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'y.db'}"
    assert not is_transient(await failure(url, "SELECT * FROM no_such_table"))
    assert not is_transient(await failure(
        url, "CREATE TABLE u (x int PRIMARY KEY); INSERT INTO u VALUES (1), (1)"))
    assert not is_transient(IntegrityError("INSERT", {}, Exception("UNIQUE constraint")))
    assert not is_transient(InvalidTransition("Cannot kill task with status 'completed'."))
    assert not is_transient(ValueError("no"))


async def test_retry_waits_for_the_store_then_gives_up() -> None:
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionResetError("reset by peer")
        return "done"

    assert await retry(flaky) == "done"
    assert attempts == 3

    async def away() -> None:
        raise ConnectionRefusedError("refused")

    with pytest.raises(StoreUnavailable, match="unavailable"):
        await asyncio.wait_for(retry(away, give_up_after=0.3), 10)

    async def broken() -> None:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError, match="a bug"):
        await retry(broken, give_up_after=10)
