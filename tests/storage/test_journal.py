"""The journal's group commit: many tasks' events in shared transactions, each task's in
order, nothing lost or written twice, on both engines — also across a store outage."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from pathlib import Path

import pytest

from taskops.storage.domain import EventKind, InvalidTransition, TaskStatus, Usage
from taskops.storage.faults import StoreUnavailable
from taskops.storage.store import TaskStore
from tests.factories import FakeClock, assert_totals_kept, make_settings, make_task
from tests.faults import postgres_refusing, sqlite_locked


async def test_many_tasks_share_transactions_and_keep_their_order(
        store: TaskStore, clock: FakeClock) -> None:
    tasks = [await make_task(store, clock, name=f"t{i}") for i in range(20)]

    async def writer(task_id: int) -> list[int]:
        seqs = []
        for n in range(10):
            event = await store.append_event(task_id, EventKind.TEXT, {"n": n},
                                             prompt_tokens=3, completion_tokens=1)
            assert event is not None
            seqs.append(event.seq)
        return seqs

    batches = store.journal.batches
    written = await asyncio.gather(*(writer(t.id) for t in tasks))
    assert all(seqs == list(range(2, 12)) for seqs in written)
    assert store.journal.batches - batches < 20 * 10  # shared transactions
    for task in tasks:
        journal = await store.task_journal(task.id)
        assert [e.seq for e in journal] == list(range(1, 12))
        assert [e.payload.get("n") for e in journal[1:]] == list(range(10))
        assert [e.id for e in journal] == sorted(e.id for e in journal)
        again = await store.get_task(task.id)
        assert (again.event_count, again.prompt_tokens, again.completion_tokens) == (11, 30, 10)


async def test_events_with_and_without_usage_in_one_batch(store: TaskStore,
                                                           clock: FakeClock) -> None:
    # Half the tasks' events carry tokens or a cost, half do not: the counters of each are
    # exact, and the ids handed back are the ids stored, in each task's order.
    tasks = [await make_task(store, clock, name=f"t{i}") for i in range(12)]

    async def writer(index: int, task_id: int) -> list[int]:
        ids = []
        for n in range(6):
            kind = EventKind.TOOL_CALL if n % 2 else EventKind.TEXT
            usage = index % 3
            event = await store.append_event(
                task_id, kind, {"n": n}, prompt_tokens=5 if usage == 1 else 0,
                completion_tokens=2 if usage == 1 else 0,
                cost_usd=0.25 if usage == 2 else None)
            assert event is not None
            ids.append(event.id)
        return ids

    handed = await asyncio.gather(*(writer(i, t.id) for i, t in enumerate(tasks)))
    for index, (task, ids) in enumerate(zip(tasks, handed, strict=True)):
        journal = await store.task_journal(task.id)
        assert [e.id for e in journal[1:]] == ids
        assert [e.seq for e in journal] == list(range(1, 8))
        again = await store.get_task(task.id)
        usage = index % 3
        assert (again.event_count, again.tool_call_count) == (7, 3)
        assert (again.prompt_tokens, again.completion_tokens, again.total_tokens) == (
            (30, 12, 42) if usage == 1 else (0, 0, 0))
        if usage == 2:
            assert again.cost_usd == pytest.approx(1.5)
        elif usage == 0:
            assert again.cost_usd in (None, 0.0)


async def test_an_ended_task_refuses_events(store: TaskStore, clock: FakeClock) -> None:
    task = await make_task(store, clock)
    await store.kill_task(task.id, by="Ann")
    assert await store.append_event(task.id, EventKind.TEXT, {"text": "late"}) is None
    assert await store.append_event(10_000, EventKind.TEXT, {"text": "nobody"}) is None


async def test_one_bad_event_fails_alone(store: TaskStore, clock: FakeClock) -> None:
    good, bad = (await make_task(store, clock, name="good"),
                 await make_task(store, clock, name="bad"))
    results = await asyncio.gather(
        store.append_event(good.id, EventKind.TEXT, {"text": "fine"}),
        store.append_event(bad.id, EventKind.TEXT, {"text": object()}),
        return_exceptions=True)
    assert results[0] is not None
    assert not isinstance(results[0], BaseException)
    assert isinstance(results[1], Exception)
    assert "not JSON serializable" in str(results[1])
    assert (await store.get_task(bad.id)).event_count == 1


async def test_a_cancelled_append_not_yet_written_never_happened(
        store: TaskStore, clock: FakeClock, tmp_path: Path) -> None:
    """A run stopped while its event waits is not told it was recorded: so it is not."""
    task = await make_task(store, clock)
    other = await make_task(store, clock, name="other")
    async with holding_the_writer(store, tmp_path):
        first = asyncio.create_task(store.append_event(other.id, EventKind.TEXT, {"n": 1}))
        await asyncio.sleep(0.2)  # that batch is now waiting for the writer
        dropped = asyncio.create_task(store.append_event(task.id, EventKind.TEXT, {"n": 2}))
        kept = asyncio.create_task(store.append_event(task.id, EventKind.TEXT, {"n": 3}))
        await asyncio.sleep(0.05)
        dropped.cancel()
    assert await first is not None
    assert (await kept) is not None
    with contextlib.suppress(asyncio.CancelledError):
        await dropped
    journal = await store.task_journal(task.id)
    assert [e.payload.get("n") for e in journal[1:]] == [3]


@contextlib.asynccontextmanager
async def holding_the_writer(store: TaskStore, tmp_path: Path):  # type: ignore[no-untyped-def]
    if store.engines.is_sqlite:
        async with sqlite_locked(store.settings.database.url):
            yield
    else:
        async with store.engines.write.connect() as conn:
            await conn.begin()
            await conn.exec_driver_sql("LOCK TABLE tasks IN EXCLUSIVE MODE")
            yield
            await conn.rollback()


async def test_events_wait_for_the_store_and_are_written_once(
        db_url: str, tmp_path: Path, clock: FakeClock) -> None:
    """SQLite locked by another process past the busy timeout; PostgreSQL refusing
    connections: appends wait (no error reaches the writer) and land once."""
    settings = make_settings(tmp_path, db_url, {"ui": {"timezone": "UTC"}})
    store = await TaskStore.open(settings, clock=clock, sqlite_busy_timeout_ms=100)
    try:
        tasks = [await make_task(store, clock, name=f"o{i}") for i in range(5)]
        fault = (sqlite_locked(db_url) if store.engines.is_sqlite
                 else postgres_refusing(db_url))
        async with fault:
            pending = [asyncio.create_task(store.append_event(t.id, EventKind.TEXT, {"n": 1}))
                       for t in tasks]
            await asyncio.sleep(1.5)
            assert not any(p.done() for p in pending)
            assert store.journal.unavailable_since is not None
        results = await asyncio.wait_for(asyncio.gather(*pending), 30)
        assert all(r is not None for r in results)
        assert store.journal.unavailable_since is None
        for task in tasks:
            journal = await store.task_journal(task.id)
            assert [e.seq for e in journal] == [1, 2]
            assert (await store.get_task(task.id)).status is TaskStatus.RUNNING
    finally:
        await store.close()


async def test_endings_share_the_batches_and_the_counts_stay_exact(
        store: TaskStore, clock: FakeClock) -> None:
    # Thirty tasks end at once — completed, failed, paused, one killed before — with their
    # last events in flight: the endings share transactions and one counter update each,
    # the refused one fails alone, and the counts equal a recount of the tasks.
    tasks = [await make_task(store, clock, name=f"t{i}") for i in range(30)]
    await store.kill_task(tasks[0].id, by="Ann")
    finals = ["STATUS: completed\nSUMMARY: ok", "STATUS: failed\nSUMMARY: broke",
              "STATUS: question\nSUMMARY: which one?"]

    async def run(index: int, task_id: int) -> object:
        await store.append_event(task_id, EventKind.TEXT, {"n": index})
        if index % 4 == 3:
            return await store.fail_task(task_id, "loop detected", usage=Usage(3, 1))
        return await store.finish_task(task_id, finals[index % 3], Usage(2, 1))

    batches = store.journal.batches
    outcomes = await asyncio.gather(*(run(i, t.id) for i, t in enumerate(tasks)),
                                    return_exceptions=True)
    assert isinstance(outcomes[0], InvalidTransition)
    assert store.journal.batches - batches < 30
    for index, task in enumerate(tasks[1:], start=1):
        ended = await store.get_task(task.id)
        expected = (TaskStatus.FAILED if index % 4 == 3
                    else [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.PAUSED][index % 3])
        assert ended.status is expected
        assert ended.total_tokens == (4 if index % 4 == 3 else 3)
        journal = await store.task_journal(task.id)
        assert [e.seq for e in journal] == list(range(1, len(journal) + 1))
        assert ended.event_count == len(journal)
        assert [e.kind for e in journal].count(EventKind.FINAL) == 1
    recount = Counter([(await store.get_task(t.id)).status for t in tasks])
    kept = await store.status_counts()
    assert {s: n for s, n in kept.items() if n} == dict(recount)
    await assert_totals_kept(store)


async def test_an_ending_waits_out_a_short_outage_and_gives_up_after_patience(
        db_url: str, tmp_path: Path, clock: FakeClock) -> None:
    settings = make_settings(tmp_path, db_url, {"ui": {"timezone": "UTC"},
                                                "runtime": {"store_patience_seconds": 1.0}})
    store = await TaskStore.open(settings, clock=clock, sqlite_busy_timeout_ms=100)
    try:
        first, second = (await make_task(store, clock, name="a"),
                         await make_task(store, clock, name="b"))
        fault = (sqlite_locked(db_url) if store.engines.is_sqlite
                 else postgres_refusing(db_url))
        async with fault:
            with pytest.raises(StoreUnavailable):
                await store.finish_task(first.id, "STATUS: completed\nSUMMARY: ok")
            held = asyncio.create_task(store.finish_task(second.id,
                                                         "STATUS: completed\nSUMMARY: ok"))
            await asyncio.sleep(0.3)
        assert (await asyncio.wait_for(held, 30)).status is TaskStatus.COMPLETED
        assert (await store.get_task(first.id)).status is TaskStatus.RUNNING
        assert [e.seq for e in await store.task_journal(first.id)] == [1]
    finally:
        await store.close()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_the_tasks_table_leaves_room_for_in_place_counter_updates(
        store: TaskStore) -> None:
    # fillfactor 70 (migration 0008): a batch's update of a running task's unindexed
    # counters can stay on the row's page (a heap-only update) instead of adding an entry
    # to each of the ~30 list indexes. (The throughput it buys: bench/runtime.py.)
    async with store.engines.read.connect() as conn:
        options = (await conn.exec_driver_sql(
            "SELECT reloptions FROM pg_class WHERE relname = 'tasks'")).scalar_one()
    assert "fillfactor=70" in options


@pytest.fixture(autouse=True)
def _fresh(store: TaskStore) -> None:
    """Every test here starts from an empty database (the ``store`` fixture resets it)."""
