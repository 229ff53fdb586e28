"""A store that falters never fails a run: the worker holds the run's events until the
store is back, suspends runs after ``store_patience_seconds`` and takes them up again
from their journal; the runs' own limits still apply."""

from __future__ import annotations

import asyncio

import pytest

from taskops.storage.domain import EventKind, TaskStatus
from taskops.storage.rules import MAX_DURATION_MESSAGE
from tests.factories import FakeClock
from tests.faults import postgres_refusing, sqlite_locked
from tests.runtime.conftest import MakeStore, running_worker, submit, wait_ended

STEPS = "\n".join(f"!say step {i}\n!tokens 10 5\n!wait 0.1" for i in range(12))
PROMPT = f"{STEPS}\n!end completed all steps"


async def test_a_sqlite_lock_past_the_busy_timeout_fails_nothing(make_store: MakeStore,
                                                                 sqlite_url: str) -> None:
    store = await make_store(sqlite_busy_timeout_ms=100)
    if not store.engines.is_sqlite:
        pytest.skip("SQLite only")
    tasks = [await submit(store, PROMPT, name=f"t{i}") for i in range(4)]
    async with running_worker(store):
        await asyncio.sleep(0.5)
        async with sqlite_locked(store.settings.database.url):
            await asyncio.sleep(2.0)  # 20 busy timeouts
            assert store.journal.unavailable_since is not None
        done = [await wait_ended(store, t.id, timeout=60) for t in tasks]
    for task in done:
        assert (task.status, task.summary, task.error) == (TaskStatus.COMPLETED, "all steps",
                                                           None)
        assert (task.prompt_tokens, task.completion_tokens) == (120, 60)
        journal = await store.task_journal(task.id)
        assert [e.seq for e in journal] == list(range(1, len(journal) + 1))
        assert sum(e.kind is EventKind.TEXT for e in journal) == 12


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_postgres_refusing_connections_suspends_and_resumes_runs(
        make_store: MakeStore) -> None:
    store = await make_store({"runtime": {"store_patience_seconds": 1.0}})
    tasks = [await submit(store, PROMPT, name=f"t{i}") for i in range(4)]
    async with running_worker(store) as worker:
        await asyncio.sleep(0.5)
        async with postgres_refusing(store.settings.database.url):
            await asyncio.sleep(3.0)
            assert not worker.runs  # suspended: they wait for the store no longer
        done = [await wait_ended(store, t.id, timeout=60) for t in tasks]
    for task in done:
        assert (task.status, task.summary, task.error) == (TaskStatus.COMPLETED, "all steps",
                                                           None)
        assert (task.prompt_tokens, task.completion_tokens) == (120, 60)
        journal = await store.task_journal(task.id)
        assert [e.seq for e in journal] == list(range(1, len(journal) + 1))
        assert sum(e.kind is EventKind.TEXT for e in journal) == 12
        assert sum(e.kind is EventKind.RESUMED for e in journal) >= 1


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_max_duration_still_applies_while_the_store_is_away(
        make_store: MakeStore, clock: FakeClock) -> None:
    store = await make_store()
    task = await submit(store, "!say started\n!wait 600\n!end completed never",
                        max_duration_minutes=5)
    async with running_worker(store) as worker:
        await asyncio.sleep(0.3)
        async with postgres_refusing(store.settings.database.url):
            clock.advance(6 * 60)
            for _ in range(100):
                if task.id not in worker.runs:
                    break
                await asyncio.sleep(0.05)
            assert task.id not in worker.runs  # stopped at its deadline, store or not
        done = await wait_ended(store, task.id, timeout=30)
    assert (done.status, done.error) == (TaskStatus.FAILED, MAX_DURATION_MESSAGE)
