"""The change feed: every event once, in a safe order, on both engines."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from taskops.storage import transitions
from taskops.storage.domain import EventKind, StoreError, TaskEvent
from taskops.storage.store import TaskStore
from tests.factories import FakeClock, make_task
from tests.postgres import admin_url


async def read_until(store: TaskStore, cursor: str, count: int,
                     timeout: float = 10.0) -> list[TaskEvent]:
    """Read the feed until ``count`` more events arrived (or the timeout passed)."""
    events: list[TaskEvent] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(events) < count and asyncio.get_running_loop().time() < deadline:
        batch = await store.read_changes(cursor, limit=50)
        events += batch.events
        cursor = batch.cursor
        if not batch.events:
            await asyncio.sleep(0.02)
    return events


async def drain(store: TaskStore, cursor: str, count: int = 0,
                timeout: float = 10.0) -> tuple[list[int], str]:
    """Read in small batches until the feed is empty and at least ``count`` events came.

    On PostgreSQL a transaction open anywhere on the server holds the horizon back for a
    moment (delaying, never losing), so an expected count is waited for.
    """
    ids: list[int] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        batch = await store.read_changes(cursor, limit=7)
        if not batch.events:
            if len(ids) >= count or asyncio.get_running_loop().time() > deadline:
                return ids, cursor
            await asyncio.sleep(0.02)
            continue
        ids += [e.id for e in batch.events]
        cursor = batch.cursor


async def test_feed_returns_every_event_once_across_batches(store: TaskStore,
                                                            clock: FakeClock) -> None:
    for i in range(5):
        task = await make_task(store, clock, name=f"t{i}", tokens=(1, 1), final="done")
        await store.restart_task(task.id)
    async with store.engines.read.connect() as conn:
        expected = [r[0] for r in await conn.execute(text("SELECT id FROM task_events"))]
    ids, cursor = await drain(store, "", len(expected))
    assert sorted(ids) == sorted(expected)
    assert len(set(ids)) == len(ids)
    more, _ = await drain(store, cursor)
    assert more == []
    task = await make_task(store, clock, name="late")
    later, _ = await drain(store, cursor, 1)
    assert [e.task_id for e in (await store.read_changes(cursor)).events] == [task.id]
    assert len(later) == 1


async def test_head_skips_history(store: TaskStore, clock: FakeClock) -> None:
    await make_task(store, clock, final="done")
    head = await store.feed_head()
    assert (await store.read_changes(head)).events == []
    task = await make_task(store, clock)
    events = await read_until(store, head, 1)
    assert [e.kind for e in events] == [EventKind.STATUS_CHANGE]
    assert events[0].task_id == task.id


async def test_a_bad_cursor_is_refused(store: TaskStore) -> None:
    with pytest.raises(StoreError, match="bad change-feed cursor"):
        await store.read_changes("not-a-cursor")


async def test_a_late_committing_writer_is_never_skipped(store: TaskStore,
                                                         clock: FakeClock) -> None:
    """The classic trap: id 100 still in flight while id 101 commits (PostgreSQL)."""
    if store.engines.is_sqlite:
        pytest.skip("SQLite has one writer at a time: ids commit in order")
    slow_task = await make_task(store, clock, name="slow")
    fast_task = await make_task(store, clock, name="fast")
    cursor = await store.feed_head()
    holding = asyncio.Event()
    release = asyncio.Event()

    async def slow_writer() -> None:
        async with store.db.write() as conn:
            await transitions.append_event(store.db, conn, slow_task.id, EventKind.TEXT,
                                           {"text": "slow"}, only_active=True)
            holding.set()
            await release.wait()

    writer = asyncio.create_task(slow_writer())
    await holding.wait()
    fast = await store.append_event(fast_task.id, EventKind.TEXT, {"text": "fast"})
    assert fast is not None
    # The fast event has committed, but the slow one (a smaller id) has not: nothing yet.
    assert (await store.read_changes(cursor)).events == []
    release.set()
    await writer
    # Another transaction anywhere on the server can hold the horizon back a little
    # (delaying, never losing): wait for both.
    events = await read_until(store, cursor, 2)
    assert [e.payload["text"] for e in events] == ["slow", "fast"]
    assert events[0].id < events[1].id


async def test_concurrent_writers_and_a_reader_lose_nothing(store: TaskStore,
                                                            clock: FakeClock) -> None:
    tasks = [await make_task(store, clock, name=f"w{i}") for i in range(8)]
    cursor = await store.feed_head()
    seen: list[int] = []
    done = asyncio.Event()

    async def writer(task_id: int) -> list[int]:
        ids = []
        for n in range(15):
            event = await store.append_event(task_id, EventKind.TEXT, {"n": n})
            assert event is not None
            ids.append(event.id)
        return ids

    async def reader() -> None:
        nonlocal cursor
        while not done.is_set():
            batch = await store.read_changes(cursor, limit=20)
            seen.extend(e.id for e in batch.events)
            cursor = batch.cursor
            if not batch.events:
                await asyncio.sleep(0.005)

    reading = asyncio.create_task(reader())
    written = await asyncio.gather(*(writer(t.id) for t in tasks))
    expected = sorted(i for ids in written for i in ids)
    done.set()
    await reading
    seen.extend(e.id for e in await read_until(store, cursor, len(expected) - len(seen)))
    assert sorted(seen) == expected, sorted(set(expected) ^ set(seen))
    assert len(seen) == len(set(seen))


async def test_a_transaction_in_another_database_does_not_hold_the_feed_back(
        store: TaskStore, clock: FakeClock, db_url: str) -> None:
    """Ids are server-wide, but only this database's transactions can write an event here:
    a long one elsewhere on the server (a batch job, another application) must not stall
    the feed; one in this database still does."""
    if store.engines.is_sqlite:
        pytest.skip("PostgreSQL's transaction ids are shared by the server's databases")
    task = await make_task(store, clock, name="job")
    cursor = await store.feed_head()
    elsewhere = await asyncpg.connect(admin_url(db_url))  # the server's "postgres" database
    here = await asyncpg.connect(admin_url(db_url, make_url(db_url).database or ""))
    try:
        await elsewhere.execute("BEGIN")
        await elsewhere.fetchval("SELECT pg_current_xact_id()")  # holds a transaction id
        await store.append_event(task.id, EventKind.TEXT, {"text": "seen"})
        events = await read_until(store, cursor, 1)
        assert [e.payload["text"] for e in events] == ["seen"]
        await here.execute("BEGIN")
        await here.fetchval("SELECT pg_current_xact_id()")
        head = await store.feed_head()
        await store.append_event(task.id, EventKind.TEXT, {"text": "held"})
        await asyncio.sleep(0.2)
        assert (await store.read_changes(head)).events == []
        await here.execute("ROLLBACK")
        assert [e.payload["text"] for e in await read_until(store, head, 1)] == ["held"]
    finally:
        await elsewhere.close()
        await here.close()
