"""A run taken up again continues from its journal: recorded calls are not run again,
a call cut off is recorded as interrupted (or repeated, if its tool says it is safe)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from taskops.runtime.tools import ToolRegistry
from taskops.storage.domain import EventKind, ProviderChoice, TaskEvent, TaskStatus
from taskops.storage.rules import INTERRUPTED_RESULT
from taskops.storage.store import TaskStore
from tests.runtime.conftest import (
    MakeStore,
    eventually,
    running_worker,
    submit,
    wait_ended,
)
from tests.runtime.fake_openai import FakeOpenAI, FakeReply, sse_text, sse_tool_calls


def slow_tools(*, safe: bool) -> tuple[ToolRegistry, list[dict[str, Any]]]:
    """A ``deploy`` tool that hangs on its first call (so a stop cuts it off)."""
    registry = ToolRegistry()
    calls: list[dict[str, Any]] = []

    @registry.register("deploy", safe_to_repeat=safe)
    async def deploy(arguments: dict[str, Any]) -> str:
        calls.append(arguments)
        if len(calls) == 1:
            await asyncio.sleep(60)
        return f"deployed to {arguments.get('env')}"

    return registry, calls


async def journal_has(store: TaskStore, task_id: int, kind: EventKind) -> TaskEvent:
    found: list[TaskEvent] = []

    async def written() -> bool:
        found[:] = [e for e in await store.task_journal(task_id) if e.kind is kind]
        return bool(found)

    await eventually(written)
    return found[0]


async def cut_off_during_the_tool(store: TaskStore, prompt: str, registry: ToolRegistry,
                                  calls: list[dict[str, Any]]) -> int:
    """Run the task until its tool is running, then stop that worker (the task is given
    back mid-call); returns the task id."""
    task = await submit(store, prompt)
    async with running_worker(store, worker_id="w1", tools=registry):
        await journal_has(store, task.id, EventKind.TOOL_START)
        await eventually(lambda: asyncio.sleep(0, bool(calls)))
    held = await store.work.holdings([task.id])
    assert (held[task.id].status, held[task.id].claimed_by) == (TaskStatus.RUNNING, None)
    return task.id


PROMPT = '!say going\n!tool deploy {"env": "prod"}\n!say after the deploy\n!end completed ok'


async def test_a_call_cut_off_is_interrupted_not_run_again(make_store: MakeStore) -> None:
    store = await make_store()
    registry, calls = slow_tools(safe=False)
    task_id = await cut_off_during_the_tool(store, PROMPT, registry, calls)
    async with running_worker(store, worker_id="w2", tools=registry):
        done = await wait_ended(store, task_id)
    assert done.status is TaskStatus.COMPLETED
    assert calls == [{"env": "prod"}]  # once, never again
    journal = await store.task_journal(task_id)
    kinds = [e.kind for e in journal]
    assert kinds[:6] == [EventKind.STATUS_CHANGE, EventKind.TEXT, EventKind.TOOL_START,
                         EventKind.RESUMED, EventKind.TOOL_CALL, EventKind.TEXT]
    resumed, call = journal[3], journal[4]
    assert (resumed.payload["interrupted"], resumed.payload["repeated"]) == (["deploy"], [])
    assert resumed.payload["text"] == "Resumed after a restart"
    assert (call.payload["result"], call.payload["is_error"], call.payload["call"]) == (
        INTERRUPTED_RESULT, True, journal[2].seq)
    assert [e.payload["text"] for e in journal if e.kind is EventKind.TEXT] == [
        "going", "after the deploy"]
    assert done.tool_call_count == 1
    assert [e.seq for e in journal] == list(range(1, len(journal) + 1))
    # The timeline shows the call once, with its error; its start stays in the journal.
    timeline = (await store.list_events(task_id)).events
    assert EventKind.TOOL_START not in [e.kind for e in timeline]


async def test_a_call_safe_to_repeat_runs_again(make_store: MakeStore) -> None:
    store = await make_store()
    registry, calls = slow_tools(safe=True)
    task_id = await cut_off_during_the_tool(store, PROMPT, registry, calls)
    async with running_worker(store, worker_id="w2", tools=registry):
        done = await wait_ended(store, task_id)
    assert done.status is TaskStatus.COMPLETED
    assert calls == [{"env": "prod"}, {"env": "prod"}]
    journal = await store.task_journal(task_id)
    resumed = next(e for e in journal if e.kind is EventKind.RESUMED)
    call = next(e for e in journal if e.kind is EventKind.TOOL_CALL)
    assert (resumed.payload["interrupted"], resumed.payload["repeated"]) == ([], ["deploy"])
    assert (call.payload["result"], call.payload["is_error"], call.payload["repeated"]) == (
        "deployed to prod", False, True)


async def test_loop_detection_counts_the_calls_before_the_restart(
        make_store: MakeStore) -> None:
    store = await make_store({"tasks": {"loop_threshold": 3}})
    registry, _ = slow_tools(safe=False)
    # The cut-off call in between is not the agent's failure: it neither counts nor resets.
    task = await submit(store, "!tool f {} !! boom\n!tool f {} !! boom\n!tool deploy {}\n"
                               "!tool f {} !! boom\n!end completed never")
    async with running_worker(store, worker_id="w1", tools=registry):
        await journal_has(store, task.id, EventKind.TOOL_START)
    async with running_worker(store, worker_id="w2", tools=registry):
        done = await wait_ended(store, task.id)
    assert done.status is TaskStatus.FAILED
    assert done.error is not None
    assert done.error.startswith("Loop detected (systematic): tool 'f' failed 3 times")


# --- the openai provider: the conversation rebuilt from the journal ---------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


async def test_the_model_is_told_about_the_interrupted_call(make_store: MakeStore,
                                                            fake: FakeOpenAI) -> None:
    store = await make_store({
        "providers.fake": {"kind": "openai", "base_url": fake.base_url,
                           "models": ["gpt-4o-mini"], "timeout_seconds": 5}})
    registry, calls = slow_tools(safe=False)
    fake.replies.append(FakeReply(chunks=sse_tool_calls(
        [("c1", "deploy", '{"env": "prod"}')], text="Deploying now.", usage=(100, 10))))
    fake.replies.append(FakeReply(chunks=sse_text(
        "STATUS: failed\nSUMMARY:\nThe deploy may not have happened.", usage=(200, 20))))
    task = await submit(store, "deploy prod", provider=ProviderChoice("fake", "gpt-4o-mini"))
    async with running_worker(store, worker_id="w1", tools=registry):
        await journal_has(store, task.id, EventKind.TOOL_START)
    async with running_worker(store, worker_id="w2", tools=registry):
        done = await wait_ended(store, task.id)
    assert calls == [{"env": "prod"}]
    assert (done.status, done.summary) == (TaskStatus.FAILED,
                                           "The deploy may not have happened.")
    assert (done.prompt_tokens, done.completion_tokens) == (300, 30)
    messages = fake.requests[1]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "assistant", "tool"]
    assert messages[2]["content"] == "Deploying now."
    assert json.loads(messages[3]["tool_calls"][0]["function"]["arguments"]) == {"env": "prod"}
    assert messages[4]["content"].startswith("Error: interrupted by a restart.")
    assert "it was not run again" in messages[4]["content"]
