"""The worker running scripted tasks end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from taskops.storage.domain import (
    EventKind,
    ProviderChoice,
    ResultStatus,
    TaskStatus,
)
from taskops.storage.rules import MAX_DURATION_MESSAGE
from tests.factories import FakeClock
from tests.runtime.conftest import (
    MakeStore,
    events,
    kinds,
    running_worker,
    submit,
    until_written,
    wait_ended,
    wait_in_step,
)


@pytest.mark.parametrize(("end", "status", "result", "summary"), [
    ("!end completed all good", TaskStatus.COMPLETED, ResultStatus.COMPLETED, "all good"),
    ("!end failed no creds", TaskStatus.FAILED, ResultStatus.FAILED, "no creds"),
    ("!end silent nothing new", TaskStatus.COMPLETED, ResultStatus.SILENT, "nothing new"),
    ("!say The report is ready.", TaskStatus.COMPLETED, ResultStatus.COMPLETED,
     "The report is ready."),
])
async def test_the_final_message_decides_the_end(make_store: MakeStore, end: str,
                                                 status: TaskStatus, result: ResultStatus,
                                                 summary: str) -> None:
    store = await make_store()
    task = await submit(store, f"Do the thing\n!say working\n{end}")
    async with running_worker(store):
        done = await wait_ended(store, task.id)
    assert (done.status, done.result_status, done.summary) == (status, result, summary)
    assert done.started_at is not None
    if status is TaskStatus.FAILED:
        assert done.error == summary
    timeline = await kinds(store, task.id)
    closing = [EventKind.STATUS_CHANGE, EventKind.FINAL]
    if result is not ResultStatus.SILENT:
        closing.append(EventKind.INJECTION)
    assert timeline[-len(closing):] == closing
    assert timeline[0] is EventKind.STATUS_CHANGE  # "Task started"


async def test_events_are_written_with_payloads_tokens_and_cost(make_store: MakeStore) -> None:
    store = await make_store({"tasks": {"thinking_level": "low"}})
    task = await submit(store, "\n".join([
        "!think plan", "!say step one", '!tool search {"q": "x"} -> 3 hits',
        '!tool fetch {"url": "u"} !! 404', "!tokens 1000 500", "!say done",
        "!end completed ok"]))
    async with running_worker(store):
        done = await wait_ended(store, task.id)
    timeline = await events(store, task.id)
    assert [e.kind for e in timeline][:6] == [
        EventKind.STATUS_CHANGE, EventKind.THINKING, EventKind.TEXT, EventKind.TOOL_CALL,
        EventKind.TOOL_CALL, EventKind.TEXT]
    ok, failed = timeline[3].payload, timeline[4].payload
    assert ok["tool"] == "search"
    assert ok["arguments"] == {"q": "x"}
    assert (ok["result"], ok["is_error"]) == ("3 hits", False)
    assert isinstance(ok["duration_ms"], int)
    assert (failed["result"], failed["is_error"]) == ("404", True)
    assert timeline[1].payload == {"text": "plan"}
    assert (done.tool_call_count, done.prompt_tokens, done.completion_tokens) == (2, 1000, 500)
    # scripted is priced at 0.50 / 1.50 USD per million tokens
    assert done.cost_usd == pytest.approx(1000 / 1e6 * 0.5 + 500 / 1e6 * 1.5)


async def test_thinking_is_not_written_when_the_level_is_off(make_store: MakeStore) -> None:
    store = await make_store()
    task = await submit(store, "!think secret plan\n!end completed ok")
    async with running_worker(store):
        await wait_ended(store, task.id)
    assert EventKind.THINKING not in await kinds(store, task.id)


async def test_tokens_at_the_end_are_counted(make_store: MakeStore) -> None:
    store = await make_store()
    task = await submit(store, "!tokens 10 20\n!end completed ok")
    async with running_worker(store):
        done = await wait_ended(store, task.id)
    assert (done.prompt_tokens, done.completion_tokens) == (10, 20)


async def test_a_tool_step_without_a_result_runs_the_registered_tool(
        make_store: MakeStore) -> None:
    store = await make_store()
    task = await submit(store, '!tool echo {"text": "hello"}\n!tool nope {}\n!end completed ok')
    async with running_worker(store):
        await wait_ended(store, task.id)
    calls = [e.payload for e in await events(store, task.id) if e.kind is EventKind.TOOL_CALL]
    assert (calls[0]["result"], calls[0]["is_error"]) == ("hello", False)
    assert calls[1]["is_error"]
    assert calls[1]["result"].startswith("Unknown tool 'nope'")


async def test_a_bad_script_fails_the_task_naming_the_line(make_store: MakeStore) -> None:
    store = await make_store()
    task = await submit(store, "about\n!wait forever")
    async with running_worker(store):
        done = await wait_ended(store, task.id)
    assert done.status is TaskStatus.FAILED
    assert done.error == "Scripted prompt, line 2: !wait: expected a number, got 'forever'"


async def test_an_unconfigured_provider_fails_the_task(make_store: MakeStore) -> None:
    store = await make_store()
    task = await submit(store, "x", provider=ProviderChoice("anthropic", "claude-3-haiku"))
    async with running_worker(store):
        done = await wait_ended(store, task.id)
    assert done.status is TaskStatus.FAILED
    assert done.error is not None
    assert done.error.startswith("Provider 'anthropic' is not configured")


async def test_loop_detection_fails_the_task_with_the_hint(make_store: MakeStore) -> None:
    store = await make_store({"tasks": {"loop_threshold": 4}})
    task = await submit(store, "!say trying\n!loop fetch_page")
    async with running_worker(store):
        done = await wait_ended(store, task.id)
    assert done.status is TaskStatus.FAILED
    assert done.error is not None
    first, hint = done.error.split("\n")
    assert first.startswith("Loop detected (systematic): tool 'fetch_page' failed 4 times")
    assert hint == f"Hint: Use /kill_task {task.id} if the task needs to be cleaned up."
    assert done.tool_call_count == 4
    assert done.summary == done.error


async def test_smart_loop_detection_ignores_changing_arguments(make_store: MakeStore) -> None:
    store = await make_store({"tasks": {"loop_method": "smart", "loop_threshold": 2}})
    task = await submit(store, '!tool q {"a": 1} !! boom\n!tool q {"a": 2} !! boom\n'
                               "!end completed never")
    async with running_worker(store):
        done = await wait_ended(store, task.id)
    assert done.error is not None
    assert done.error.startswith("Loop detected (smart): tool 'q' failed 2 times")


async def test_successes_in_between_reset_loop_detection(make_store: MakeStore) -> None:
    store = await make_store({"tasks": {"loop_threshold": 2}})
    task = await submit(store, "!tool q {} !! boom\n!tool q {} -> ok\n!tool q {} !! boom\n"
                               "!end completed fine")
    async with running_worker(store):
        done = await wait_ended(store, task.id)
    assert done.status is TaskStatus.COMPLETED


async def test_max_duration_fails_a_running_task(make_store: MakeStore,
                                                 clock: FakeClock) -> None:
    store = await make_store()
    task = await submit(store, "!wait 60\n!end completed never", max_duration_minutes=5)
    async with running_worker(store) as worker:
        await wait_in_step(worker, task.id)
        clock.advance(5 * 60)
        done = await wait_ended(store, task.id)
    assert (done.status, done.error) == (TaskStatus.FAILED, MAX_DURATION_MESSAGE)
    assert EventKind.TEXT not in await kinds(store, task.id)


async def test_progress_events_every_n_running_minutes(make_store: MakeStore,
                                                       clock: FakeClock) -> None:
    store = await make_store({"tasks": {"status_updates": True, "status_update_minutes": 10}})
    task = await submit(store, "!tool a {} -> 1\n!tokens 100 50\n!say half way\n!wait 60\n"
                               "!end completed ok", name="Nightly <audit>")

    async with running_worker(store) as worker:
        await wait_in_step(worker, task.id)
        await until_written(store, task.id, EventKind.TEXT)
        clock.advance(9 * 60)
        await asyncio.sleep(0.1)
        assert EventKind.PROGRESS not in await kinds(store, task.id)
        clock.advance(60)
        await until_written(store, task.id, EventKind.PROGRESS)
        clock.advance(10 * 60)
        await until_written(store, task.id, EventKind.PROGRESS, count=2)
        await store.kill_task(task.id, by="tester")
    progress = [e.payload for e in await events(store, task.id)
                if e.kind is EventKind.PROGRESS]
    assert len(progress) == 2
    assert progress[0] == {
        "name": "Nightly <audit>", "elapsed_minutes": 10, "tool_calls": 1, "tokens": 150,
        "text": f"⏳ Task #{task.id} “Nightly <audit>” is still running: 10 min elapsed, "
                f"1 tool calls, 150 tokens so far.\nStop it with /kill_task {task.id}"}
    assert progress[1]["elapsed_minutes"] == 20


async def test_a_hundred_tasks_run_concurrently(make_store: MakeStore) -> None:
    store = await make_store({"runtime": {"concurrency": 100}})
    tasks = [await submit(store, f"!say task {i}\n!wait 0.2\n!tool t {{}} -> ok\n"
                                 f"!end completed done {i}", name=f"t{i}")
             for i in range(100)]
    peak = 0

    async with running_worker(store) as worker:
        while True:
            peak = max(peak, len(worker.runs))
            statuses = [(await store.get_task(t.id)).status for t in tasks[-5:]]
            if all(s is TaskStatus.COMPLETED for s in statuses):
                break
            await asyncio.sleep(0.01)
        for t in tasks:
            await wait_ended(store, t.id)
    assert peak > 50  # they ran side by side, not one after the other
    for i, t in enumerate(tasks):
        done = await store.get_task(t.id)
        assert (done.status, done.summary) == (TaskStatus.COMPLETED, f"done {i}")
        assert done.tool_call_count == 1


async def test_concurrency_caps_the_runs_in_flight(make_store: MakeStore) -> None:
    store = await make_store({"runtime": {"concurrency": 2}})
    tasks = [await submit(store, "!wait 0.1\n!end completed ok") for _ in range(5)]
    peak = 0
    async with running_worker(store) as worker:
        while (await store.get_task(tasks[-1].id)).status is not TaskStatus.COMPLETED:
            peak = max(peak, len(worker.runs))
            await asyncio.sleep(0.005)
        for t in tasks:
            await wait_ended(store, t.id)
    assert peak == 2


async def test_two_workers_never_run_the_same_task(make_store: MakeStore) -> None:
    first = await make_store({"runtime": {"concurrency": 50}})
    second = await make_store({"runtime": {"concurrency": 50}})
    tasks = [await submit(first, "!say once\n!wait 0.05\n!end completed ok") for _ in range(40)]
    async with running_worker(first, worker_id="w1"), running_worker(second, worker_id="w2"):
        for t in tasks:
            await wait_ended(first, t.id)
    for t in tasks:
        timeline = await kinds(first, t.id)
        assert timeline.count(EventKind.TEXT) == 1
        assert timeline.count(EventKind.FINAL) == 1


async def test_a_stopped_worker_hands_its_runs_to_the_next(make_store: MakeStore) -> None:
    store = await make_store()
    task = await submit(store, "!say before\n!wait 30\n!end completed never")
    async with running_worker(store, worker_id="w1") as worker:
        await wait_in_step(worker, task.id)
        await until_written(store, task.id, EventKind.TEXT)
    held = await store.work.holdings([task.id])
    assert held[task.id].claimed_by is None
    assert held[task.id].status is TaskStatus.RUNNING
    async with running_worker(store, worker_id="w2") as worker:
        # It takes the run up again from its journal: the text is not said twice.
        await until_written(store, task.id, EventKind.RESUMED)
        assert task.id in worker.runs
        assert (await kinds(store, task.id)).count(EventKind.TEXT) == 1
        await store.kill_task(task.id, by="tester")
