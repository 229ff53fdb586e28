"""Task lifecycle through the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from taskops.storage.domain import (
    EventKind,
    InvalidTransition,
    ProviderChoice,
    RestartEdits,
    ResultStatus,
    StoreError,
    TaskDraft,
    TaskNotFound,
    TaskStatus,
    Trigger,
)
from taskops.storage.store import TaskStore
from tests.factories import FakeClock, make_task


async def kinds(store: TaskStore, task_id: int) -> list[EventKind]:
    return [e.kind for e in (await store.list_events(task_id, limit=1000)).events]


async def test_a_new_task_is_running_and_never_started(store: TaskStore) -> None:
    task = await store.create_task(TaskDraft(name="n", prompt="p"))
    assert task.status is TaskStatus.RUNNING
    assert task.started_at is None
    assert task.duration_seconds(task.created_at) is None
    assert task.used_default
    assert (task.provider, task.model) == ("scripted", "scripted")


async def test_start_records_a_status_change_once(store: TaskStore) -> None:
    task = await store.create_task(TaskDraft(name="n", prompt="p"))
    assert await store.start_task(task.id) is not None
    assert await store.start_task(task.id) is None
    assert await kinds(store, task.id) == [EventKind.STATUS_CHANGE]


async def test_completion_stores_summary_and_injection(store: TaskStore,
                                                       clock: FakeClock) -> None:
    task = await make_task(store, clock, name='Say "hi" <now>', run_seconds=90,
                           tokens=(1000, 500))
    done = await store.finish_task(task.id, "STATUS: completed\nSUMMARY:\nAll good")
    assert done.status is TaskStatus.COMPLETED
    assert done.result_status is ResultStatus.COMPLETED
    assert done.summary == "All good"
    assert done.duration_seconds(clock()) == pytest.approx(90)
    assert await kinds(store, task.id) == [
        EventKind.STATUS_CHANGE, EventKind.TEXT, EventKind.STATUS_CHANGE, EventKind.FINAL,
        EventKind.INJECTION]
    injection = (await store.list_events(task.id, kinds=[EventKind.INJECTION])).events[0]
    block = injection.payload["text"]
    assert block.startswith(f'<task_injection task_id="{task.id}" '
                            'task_name="Say &quot;hi&quot; &lt;now&gt;" status="completed" '
                            'trigger="user" duration_minutes="2" tokens_used="1500">')
    assert block.endswith("\nAll good\n</task_injection>")


async def test_silent_completion_sends_no_injection(store: TaskStore, clock: FakeClock) -> None:
    task = await make_task(store, clock, final="STATUS: silent\nSUMMARY: nothing")
    assert task.status is TaskStatus.COMPLETED
    assert task.result_status is ResultStatus.SILENT
    events = (await store.list_events(task.id)).events
    assert EventKind.INJECTION not in [e.kind for e in events]
    assert events[-2].payload["message"] == "Silent completion — nothing to report"


async def test_failed_final_sets_error(store: TaskStore, clock: FakeClock) -> None:
    task = await make_task(store, clock, final="STATUS: failed\nSUMMARY:\nno creds")
    assert (task.status, task.error, task.summary) == (TaskStatus.FAILED, "no creds", "no creds")


async def test_question_pauses_then_answer_resumes(store: TaskStore, clock: FakeClock) -> None:
    task = await make_task(store, clock, final="STATUS: question\nSUMMARY:\nWhich branch?")
    assert task.status is TaskStatus.PAUSED
    assert task.finished_at is None
    resumed = await store.resume_task(task.id, "main", by="Ann")
    assert resumed.status is TaskStatus.RUNNING
    events = (await store.list_events(task.id)).events
    assert events[-1].kind is EventKind.ANSWER
    assert events[-1].payload == {"text": "main", "by": "Ann"}
    with pytest.raises(InvalidTransition):
        await store.resume_task(task.id, "again", by="Ann")


async def test_kill_rules_and_texts(store: TaskStore, clock: FakeClock) -> None:
    task = await make_task(store, clock)
    killed = await store.kill_task(task.id, by="Ann")
    assert killed.status is TaskStatus.FAILED
    assert killed.summary == killed.error == "Killed by Ann from Telegram"
    assert killed.killed_by == "Ann"
    assert (await kinds(store, task.id))[-3:] == [EventKind.STATUS_CHANGE, EventKind.FINAL,
                                                  EventKind.INJECTION]
    with pytest.raises(InvalidTransition) as refused:
        await store.kill_task(task.id, by="Bob")
    assert str(refused.value) == ("Cannot kill task with status 'failed'. "
                                  "Only running tasks can be killed.")
    paused = await make_task(store, clock, final="STATUS: question\nSUMMARY: ?")
    with pytest.raises(InvalidTransition, match="status 'paused'"):
        await store.kill_task(paused.id, by="Ann")


async def test_no_event_is_written_after_a_kill(store: TaskStore, clock: FakeClock) -> None:
    task = await make_task(store, clock)
    await store.kill_task(task.id, by="Ann")
    assert await store.append_event(task.id, EventKind.TEXT, {"text": "late"}) is None
    with pytest.raises(InvalidTransition):
        await store.finish_task(task.id, "STATUS: completed\nSUMMARY: done")
    assert EventKind.TEXT not in await kinds(store, task.id)


async def test_kill_racing_completion_ends_in_exactly_one_final_state(
        store: TaskStore, clock: FakeClock) -> None:
    tasks = [await make_task(store, clock, name=f"race {i}") for i in range(30)]

    async def kill(task_id: int) -> str:
        try:
            await store.kill_task(task_id, by="Ann")
            return "kill"
        except InvalidTransition:
            return "lost"

    async def complete(task_id: int) -> str:
        try:
            await store.finish_task(task_id, "STATUS: completed\nSUMMARY: done")
            return "complete"
        except InvalidTransition:
            return "lost"

    results = await asyncio.gather(*(f(t.id) for t in tasks for f in (kill, complete)))
    for i, task in enumerate(tasks):
        pair = results[2 * i: 2 * i + 2]
        assert sorted(pair).count("lost") == 1, pair
        final = await store.get_task(task.id)
        events = (await store.list_events(task.id, limit=100)).events
        status_changes = [e for e in events if e.kind is EventKind.STATUS_CHANGE]
        assert len(status_changes) == 2  # started, then exactly one end
        assert status_changes[-1].payload["new"] == final.status.value
        assert [e.kind for e in events].count(EventKind.FINAL) == 1
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        expected = TaskStatus.FAILED if "kill" in pair else TaskStatus.COMPLETED
        assert final.status is expected
    page = await store.list_tasks(page_size=20)
    assert page.total == len(tasks)


async def test_restart_inherits_and_is_always_user(store: TaskStore, clock: FakeClock) -> None:
    original = await make_task(store, clock, name="nightly", prompt="sweep",
                               trigger=Trigger.CRONJOB,
                               provider=ProviderChoice("openai", "gpt-4o"),
                               final="STATUS: failed\nSUMMARY: x")
    new = await store.restart_task(original.id)
    assert (new.name, new.prompt, new.provider, new.model) == ("nightly", "sweep", "openai",
                                                               "gpt-4o")
    assert new.trigger is Trigger.USER
    assert new.restarted_from_id == original.id
    assert not new.used_default
    assert await store.get_task(original.id) == original
    assert await store.restarted_as(original.id) == [new.id]


async def test_restart_with_edits_and_duration_cap(store: TaskStore, clock: FakeClock) -> None:
    original = await make_task(store, clock, final="done")
    new = await store.restart_task(original.id, RestartEdits(
        name="renamed", prompt="other", provider=ProviderChoice.default(),
        max_duration_minutes=100_000))
    assert (new.name, new.prompt, new.used_default) == ("renamed", "other", True)
    assert new.max_duration_minutes == store.settings.tasks.max_duration_cap_minutes


async def test_restart_refused_while_running_or_paused(store: TaskStore,
                                                       clock: FakeClock) -> None:
    running = await make_task(store, clock)
    with pytest.raises(InvalidTransition) as refused:
        await store.restart_task(running.id)
    assert str(refused.value) == ("Cannot restart task with status 'running'. "
                                  "Kill the task first, then restart.")
    paused = await make_task(store, clock, final="STATUS: question\nSUMMARY: ?")
    with pytest.raises(InvalidTransition, match="'paused'"):
        await store.restart_task(paused.id)


async def test_restart_is_idempotent_for_a_key(store: TaskStore, clock: FakeClock) -> None:
    original = await make_task(store, clock, final="done")
    made = await asyncio.gather(*(store.restart_task(original.id, key="press-42")
                                  for _ in range(8)))
    assert len({t.id for t in made}) == 1
    assert await store.restarted_as(original.id) == [made[0].id]
    other = await store.restart_task(original.id, key="press-43")
    assert other.id != made[0].id


async def test_unknown_task(store: TaskStore) -> None:
    with pytest.raises(TaskNotFound, match="#999"):
        await store.get_task(999)
    with pytest.raises(TaskNotFound):
        await store.kill_task(999, by="Ann")


async def test_bad_drafts_are_refused(store: TaskStore) -> None:
    with pytest.raises(StoreError, match="name"):
        await store.create_task(TaskDraft(name=" ", prompt="p"))
    with pytest.raises(StoreError, match="name"):
        await store.create_task(TaskDraft(name="x" * 201, prompt="p"))
    with pytest.raises(StoreError, match="prompt"):
        await store.create_task(TaskDraft(name="n", prompt="  "))
    with pytest.raises(StoreError, match="at least 1 minute"):
        await store.create_task(TaskDraft(name="n", prompt="p", max_duration_minutes=0))


async def test_cost_from_price_table_or_unknown(store: TaskStore, clock: FakeClock) -> None:
    priced = await make_task(store, clock, provider=ProviderChoice("openai", "gpt-4o"),
                             tokens=(1_000_000, 100_000))
    assert priced.cost_usd == pytest.approx(2.50 + 1.0)
    unpriced = await make_task(store, clock, provider=ProviderChoice("local", "llama-x"),
                               tokens=(5000, 5000))
    assert unpriced.cost_usd is None
    reported = await store.create_task(TaskDraft(name="r", prompt="p",
                                                 provider=ProviderChoice("local", "llama-x")))
    await store.start_task(reported.id)
    await store.append_event(reported.id, EventKind.TEXT, {"text": "x"}, prompt_tokens=10,
                             completion_tokens=10, cost_usd=0.25)
    assert (await store.get_task(reported.id)).cost_usd == pytest.approx(0.25)


async def test_tool_calls_are_counted(store: TaskStore, clock: FakeClock) -> None:
    task = await make_task(store, clock)
    for _ in range(3):
        await store.append_event(task.id, EventKind.TOOL_CALL, {"tool": "shell"})
    assert (await store.get_task(task.id)).tool_call_count == 3


async def test_fail_task_is_a_no_op_once_ended(store: TaskStore, clock: FakeClock) -> None:
    task = await make_task(store, clock)
    failed = await store.fail_task(task.id, "Max duration exceeded")
    assert failed is not None
    assert failed.error == "Max duration exceeded"
    assert await store.fail_task(task.id, "again") is None


async def test_nul_characters_are_stored_the_same_on_both_engines(store: TaskStore,
                                                                  clock: FakeClock) -> None:
    task = await make_task(store, clock, name="a\x00b", prompt="p\x00")
    await store.append_event(task.id, EventKind.TEXT, {"text": "x\x00y", "k\x00": ["\x00"]})
    stored = await store.get_task(task.id)
    assert (stored.name, stored.prompt) == ("a\ufffdb", "p\ufffd")
    event = (await store.list_events(task.id, kinds=[EventKind.TEXT])).events[0]
    assert event.payload == {"text": "x\ufffdy", "k\ufffd": ["\ufffd"]}
