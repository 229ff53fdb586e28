"""Questions, answers and the paused timeout, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from taskops.storage.domain import (
    EventKind,
    ResultStatus,
    TaskStatus,
)
from taskops.storage.rules import MAX_DURATION_MESSAGE, PAUSED_TIMEOUT_MESSAGE
from tests.factories import FakeClock
from tests.runtime.conftest import (
    MakeStore,
    events,
    kinds,
    running_worker,
    submit,
    until_gone,
    until_written,
    wait_ended,
    wait_in_step,
    wait_status,
)

QUESTION = "\n".join([
    "Deploy the docs.",
    "!say building",
    "!end question Which branch: main or release?",
    "!say deploying the chosen branch",
    "!end completed deployed",
])


async def test_question_pauses_and_the_answer_completes_the_run(make_store: MakeStore) -> None:
    store = await make_store()
    task = await submit(store, QUESTION, parent_session="telegram:42")
    async with running_worker(store) as worker:
        paused = await wait_status(store, task.id, TaskStatus.PAUSED)
        assert (paused.result_status, paused.summary) == (
            ResultStatus.QUESTION, "Which branch: main or release?")
        injection = [e for e in await events(store, task.id) if e.kind is EventKind.INJECTION]
        assert injection[0].payload["status"] == "question"
        assert injection[0].payload["parent_session"] == "telegram:42"
        assert 'status="question"' in injection[0].payload["text"]
        # the claim is released while it waits, so any worker can continue it
        assert (await store.work.holdings([task.id]))[task.id].claimed_by is None
        await until_gone(worker, task.id)
        await store.resume_task(task.id, "main", by="Ann")
        done = await wait_ended(store, task.id)
    assert (done.status, done.summary) == (TaskStatus.COMPLETED, "deployed")
    timeline = await events(store, task.id)
    texts = [e.payload["text"] for e in timeline if e.kind is EventKind.TEXT]
    assert texts == ["building", "deploying the chosen branch"]
    answer = next(e for e in timeline if e.kind is EventKind.ANSWER)
    assert answer.payload == {"text": "main", "by": "Ann"}
    assert [e.kind for e in timeline].count(EventKind.INJECTION) == 2


async def test_another_worker_continues_an_answered_task(make_store: MakeStore) -> None:
    first = await make_store()
    second = await make_store()
    task = await submit(first, QUESTION)
    async with running_worker(first, worker_id="w1"):
        await wait_status(first, task.id, TaskStatus.PAUSED)
    await first.resume_task(task.id, "release", by="Ann")
    async with running_worker(second, worker_id="w2"):
        done = await wait_ended(second, task.id)
    assert done.summary == "deployed"


async def test_a_paused_task_fails_after_the_paused_timeout(make_store: MakeStore,
                                                            clock: FakeClock) -> None:
    # The timeout must come before the deadline (max duration counts paused time too).
    store = await make_store({"tasks": {"paused_timeout_hours": 2}})
    task = await submit(store, QUESTION, max_duration_minutes=1440)
    async with running_worker(store):
        await wait_status(store, task.id, TaskStatus.PAUSED)
        clock.advance(3600)
        await asyncio.sleep(0.2)
        assert (await store.get_task(task.id)).status is TaskStatus.PAUSED
        clock.advance(3600)
        done = await wait_ended(store, task.id)
    assert (done.status, done.error) == (TaskStatus.FAILED, PAUSED_TIMEOUT_MESSAGE)
    assert (await kinds(store, task.id))[-3:] == [
        EventKind.STATUS_CHANGE, EventKind.FINAL, EventKind.INJECTION]


async def test_time_spent_paused_counts_towards_max_duration(
        make_store: MakeStore, clock: FakeClock) -> None:
    store = await make_store()
    prompt = "!end question Go on?\n!say continuing\n!wait 600\n!end completed never"
    task = await submit(store, prompt, max_duration_minutes=10)
    async with running_worker(store) as worker:
        await wait_status(store, task.id, TaskStatus.PAUSED)
        clock.advance(6 * 60)
        await store.resume_task(task.id, "yes", by="Ann")
        await wait_in_step(worker, task.id)
        await until_written(store, task.id, EventKind.TEXT)
        clock.advance(3 * 60)
        await asyncio.sleep(0.2)
        assert (await store.get_task(task.id)).status is TaskStatus.RUNNING
        clock.advance(60)  # 10 minutes after the start, 4 of them running since the answer
        done = await wait_ended(store, task.id)
    assert (done.status, done.error) == (TaskStatus.FAILED, MAX_DURATION_MESSAGE)


async def test_a_paused_task_fails_when_its_deadline_passes(make_store: MakeStore,
                                                            clock: FakeClock) -> None:
    store = await make_store()
    task = await submit(store, "!end question Go on?\n!end completed yes", max_duration_minutes=30)
    async with running_worker(store):
        await wait_status(store, task.id, TaskStatus.PAUSED)
        clock.advance(29 * 60)
        await asyncio.sleep(0.2)
        assert (await store.get_task(task.id)).status is TaskStatus.PAUSED
        clock.advance(60)
        done = await wait_ended(store, task.id)
    assert (done.status, done.error) == (TaskStatus.FAILED, MAX_DURATION_MESSAGE)
    assert (await kinds(store, task.id))[-3:] == [
        EventKind.STATUS_CHANGE, EventKind.FINAL, EventKind.INJECTION]


async def test_an_answer_after_the_deadline_fails_the_task_at_once(make_store: MakeStore,
                                                                   clock: FakeClock) -> None:
    store = await make_store()
    task = await submit(store, "!end question Go on?\n!say on it\n!end completed yes",
                        max_duration_minutes=30)
    async with running_worker(store):
        await wait_status(store, task.id, TaskStatus.PAUSED)
    clock.advance(31 * 60)  # no worker looked in the meantime
    answered = await store.resume_task(task.id, "yes", by="Ann")
    assert (answered.status, answered.error) == (TaskStatus.FAILED, MAX_DURATION_MESSAGE)
    assert EventKind.ANSWER not in await kinds(store, task.id)
    assert EventKind.TEXT not in await kinds(store, task.id)
