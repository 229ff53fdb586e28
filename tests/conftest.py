"""Shared fixtures: stores on SQLite and on the real PostgreSQL, fresh per run."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from taskops.storage.db import migrate
from taskops.storage.store import TaskStore
from tests import postgres
from tests.factories import FakeClock, make_settings

# python-telegram-bot 22 warns (an error under filterwarnings=error) when a RetryAfter's
# retry_after is read as seconds; opt in to timedelta as the product does.
os.environ.setdefault("PTB_TIMEDELTA", "1")

TABLES = ["push_alerts", "push_digest_items", "task_events", "task_counts", "task_totals",
          "console_state", "subscriptions", "audit_log", "cronjobs", "meta", "tasks"]


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'taskops.db'}"
    asyncio.run(migrate(url))
    return url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the test PostgreSQL (``tests/postgres.py``), dropped afterwards."""
    try:
        server = postgres.ensure_server()
    except postgres.NoServer as error:
        pytest.exit(str(error), returncode=1)
    with postgres.database(server, "taskops_test") as url:
        asyncio.run(migrate(url))
        yield url


@pytest.fixture
def own_postgres_url() -> Iterator[str]:
    """A database of this test's own on the test PostgreSQL, migrated, dropped afterwards:
    it may refuse connections (tests/faults.py) without disturbing anyone else."""
    try:
        server = postgres.ensure_server()
    except postgres.NoServer as error:
        pytest.exit(str(error), returncode=1)
    with postgres.database(server, "taskops_faults") as url:
        asyncio.run(migrate(url))
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


async def reset_database(store: TaskStore) -> None:
    async with store.engines.write.begin() as conn:
        if store.engines.is_sqlite:
            for table in TABLES:
                await conn.execute(text(f"DELETE FROM {table}"))
        else:
            await conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(db_url: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[TaskStore]:
    settings = make_settings(tmp_path, db_url, {"ui": {"timezone": "Europe/Berlin"}})
    opened = await TaskStore.open(settings, clock=clock)
    await reset_database(opened)
    await opened.rebuild_counts()
    yield opened
    await opened.close()
