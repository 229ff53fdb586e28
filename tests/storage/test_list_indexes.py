"""A bulk seed drops the list indexes and builds them again, even when it fails midway."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from taskops.storage import list_indexes
from taskops.storage.domain import ListFilters, PageRequest, Sort, SortField, TaskStatus
from taskops.storage.models import list_index_layout
from taskops.storage.seed import seed_demo
from taskops.storage.store import TaskStore
from tests.factories import FakeClock


async def index_names(store: TaskStore) -> set[str]:
    sql = ("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tasks'"
           if store.engines.is_sqlite
           else "SELECT indexname FROM pg_indexes WHERE tablename = 'tasks'")
    async with store.engines.read.connect() as conn:
        return {r[0] for r in await conn.execute(text(sql))}


async def test_a_bulk_seed_rebuilds_every_list_index(store: TaskStore, clock: FakeClock,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    before = await index_names(store)
    assert set(list_index_layout()) <= before
    monkeypatch.setattr(list_indexes, "SUSPEND_MIN", 10)
    await seed_demo(store, 120, seed=3, now=clock())
    assert await index_names(store) == before
    page = await store.list_tasks(ListFilters(status=TaskStatus.COMPLETED),
                                  Sort(SortField.COST), PageRequest.last(), 7)
    assert page.total > 0
    assert len(page.tasks) == page.total - (page.page_count - 1) * 7


async def test_the_indexes_come_back_when_the_load_fails(store: TaskStore) -> None:
    before = await index_names(store)
    during: set[str] = set()

    async def load(conn: AsyncConnection) -> None:
        async with list_indexes.suspended(conn, list_indexes.SUSPEND_MIN):
            during.update(await index_names(store))
            raise RuntimeError("midway")

    async with store.engines.write.connect() as conn:
        with pytest.raises(RuntimeError, match="midway"):
            await load(conn)
    assert not set(list_index_layout()) & during
    assert await index_names(store) == before


async def foreign_keys(store: TaskStore) -> set[tuple[str, str]]:
    """Each foreign key of ``task_events`` with its definition (PostgreSQL only)."""
    async with store.engines.read.connect() as conn:
        return {(r[0], r[1]) for r in await conn.execute(text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'task_events'::regclass AND contype = 'f'"))}


async def test_a_bulk_seed_restores_the_event_keys(store: TaskStore, clock: FakeClock,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    if store.engines.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite keeps its keys during a load")
    before = await foreign_keys(store)
    assert any("ON DELETE CASCADE" in definition for _name, definition in before)
    monkeypatch.setattr(list_indexes, "SUSPEND_MIN", 10)
    await seed_demo(store, 120, seed=3, now=clock())
    assert await foreign_keys(store) == before
    # and the restored key still holds: an event of no task is refused
    async with store.engines.write.connect() as conn:
        with pytest.raises(Exception, match="foreign key"):
            await conn.execute(text(
                "INSERT INTO task_events (task_id, seq, at, kind, payload) "
                "VALUES (999999999, 1, now(), 'text', '{}')"))


async def test_the_event_keys_come_back_when_the_load_fails(store: TaskStore) -> None:
    if store.engines.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite keeps its keys during a load")
    before = await foreign_keys(store)
    during: set[tuple[str, str]] = set()

    async def load(conn: AsyncConnection) -> None:
        async with list_indexes.checks_suspended(conn, list_indexes.SUSPEND_MIN):
            during.update(await foreign_keys(store))
            raise RuntimeError("midway")

    async with store.engines.write.connect() as conn:
        with pytest.raises(RuntimeError, match="midway"):
            await load(conn)
    assert before
    assert not during
    assert await foreign_keys(store) == before
