"""The store's health state and quick calls, under real faults (tests/faults.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from taskops.storage import db, health
from taskops.storage.db import migrate
from taskops.storage.domain import ProviderChoice, TaskDraft
from taskops.storage.faults import StoreUnavailable
from taskops.storage.health import quick
from taskops.storage.store import TaskStore
from tests.factories import FakeClock, make_settings, make_task
from tests.faults import postgres_refusing, sqlite_locked
from tests.postgres import admin_url


async def open_store(tmp_path: Path, url: str) -> TaskStore:
    return await TaskStore.open(make_settings(tmp_path, url), clock=FakeClock())


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[TaskStore]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'health.db'}"
    await migrate(url)
    store = await open_store(tmp_path, url)
    yield store
    await store.close()


@pytest.fixture
async def pg_store(tmp_path: Path, own_postgres_url: str) -> AsyncIterator[TaskStore]:
    store = await open_store(tmp_path, own_postgres_url)
    yield store
    await store.close()


def draft(name: str = "job") -> TaskDraft:
    return TaskDraft(name=name, prompt="do it", provider=ProviderChoice("scripted", "scripted"))


async def test_a_held_sqlite_write_lock_fails_quick_writes_not_reads(
        sqlite_store: TaskStore) -> None:
    store = sqlite_store
    task = await store.create_task(draft())
    assert store.health.available
    async with sqlite_locked(store.settings.database.url):
        with quick():
            with pytest.raises(StoreUnavailable) as caught:
                await store.create_task(draft("blocked"))
            # Readers do not wait for a writer in WAL mode: the console still reads.
            assert (await store.get_task(task.id)).name == "job"
        assert caught.value.last_contact is not None
        assert store.health.write.away
        assert not store.health.read.away
        assert not store.health.available
    with quick():
        await store.create_task(draft("after"))
    assert store.health.available
    assert (await store.list_tasks()).total == 2


async def test_while_a_path_is_known_away_only_one_quick_caller_tries_it(
        sqlite_store: TaskStore) -> None:
    store = sqlite_store
    await store.create_task(draft())
    async with sqlite_locked(store.settings.database.url):
        with quick():
            with pytest.raises(StoreUnavailable):
                await store.create_task(draft("first"))  # learns that the writer is away
            results = await asyncio.gather(*(store.create_task(draft(f"n{i}"))
                                             for i in range(5)), return_exceptions=True)
    assert all(isinstance(r, StoreUnavailable) for r in results)
    causes = [str(r.cause) for r in results if isinstance(r, StoreUnavailable)]
    # One of them waited for the lock; the others did not even try.
    assert sum(c.startswith("known to be away") for c in causes) == 4
    assert (await store.list_tasks()).total == 1


async def test_postgres_refusing_connections(pg_store: TaskStore) -> None:
    store = pg_store
    task = await make_task(store, FakeClock(), name="job")
    async with postgres_refusing(store.settings.database.url):
        with quick():
            with pytest.raises(StoreUnavailable):
                await store.get_task(task.id)
            with pytest.raises(StoreUnavailable):
                await store.kill_task(task.id, by="ann")
        assert not store.health.available
        # A caller that is not quick gets the driver's error, for its own retries.
        with pytest.raises(Exception) as caught:
            await store.get_task(task.id)
        assert not isinstance(caught.value, StoreUnavailable)
    # Back without reopening anything: the pools reconnect.
    with quick():
        assert (await store.get_task(task.id)).name == "job"
    assert store.health.available


async def test_a_pause_ends_when_the_store_answers_someone(
        sqlite_store: TaskStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store = sqlite_store
    monkeypatch.setattr(health, "PAUSE_MAX", 600.0)
    async with sqlite_locked(store.settings.database.url):
        with quick(), pytest.raises(StoreUnavailable):
            await store.create_task(draft())
    pause = asyncio.create_task(store.health.pause(attempt=20))  # 10 minutes at most
    await asyncio.sleep(0)
    assert not pause.done()
    await store.create_task(draft())  # someone else's write goes through
    await asyncio.wait_for(pause, timeout=60)  # not the full pause


async def test_postgresql_read_sessions_cut_while_idle_cost_no_failed_read(
        pg_store: TaskStore, own_postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads run without a ping at every checkout (storage/db.py): a connection that sat
    idle is pinged, and one the server closed meanwhile is replaced, not handed out."""
    await make_task(pg_store, FakeClock())
    with quick():
        assert (await pg_store.list_tasks()).total == 1  # the quick reader's pool has one
    assert (await pg_store.list_tasks()).total == 1  # and the plain reader's
    database = make_url(own_postgres_url).database or ""
    admin = await asyncpg.connect(admin_url(own_postgres_url, database))
    try:
        cut = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()", database)
    finally:
        await admin.close()
    assert cut >= 2
    monkeypatch.setattr(db, "PING_IDLE_SECONDS", 0.0)  # as if they had sat idle a while
    with quick():
        assert (await pg_store.list_tasks()).total == 1
    assert (await pg_store.list_tasks()).total == 1
    assert not pg_store.db.health.read.away
