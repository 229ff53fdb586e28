"""A worker that lost its lease stops quietly, writing nothing (issue 14's inconsistent
endings: a starved worker wrote one more journal record after another worker had taken
its task up, and the task counted a tool call three times where the script has two)."""

from __future__ import annotations

import asyncio
from typing import Any

from taskops.runtime.run import RunEnd, TaskRun
from taskops.runtime.tools import ToolRegistry
from taskops.storage.domain import EventKind, TaskStatus
from tests.factories import FakeClock
from tests.runtime.conftest import (
    MakeStore,
    events,
    eventually,
    running_worker,
    submit,
    until_gone,
    until_written,
)

LEASE = 30
PROMPT = "!say one\n!tool deploy {}\n!say two\n!wait 60\n!end completed done"


async def test_a_starved_worker_cannot_write_after_its_task_was_taken_up(
        make_store: MakeStore, clock: FakeClock) -> None:
    # Worker A hangs inside a tool past its lease, and polls too rarely to notice that it
    # lost the task (as a starved process does); worker B — another process, with a store
    # of its own — takes the task up from the journal. When A's tool returns at last, its
    # result is refused and A's run stops as "claim lost": nothing of A's is written after
    # the take-over, and the task's counters are B's alone.
    store_a = await make_store({"runtime": {"poll_interval_seconds": 3600,
                                            "lease_seconds": LEASE}})
    store_b = await make_store({"runtime": {"lease_seconds": LEASE}})
    gate = asyncio.Event()
    calls: list[dict[str, Any]] = []
    registry = ToolRegistry()

    @registry.register("deploy")
    async def deploy(arguments: dict[str, Any]) -> str:
        calls.append(arguments)
        await gate.wait()
        return "deployed"

    task = await submit(store_a, PROMPT)
    ended: list[TaskRun] = []
    async with running_worker(store_a, worker_id="A", tools=registry,
                              on_run_end=ended.append) as worker_a:
        async def in_the_tool() -> bool:
            return len(calls) == 1

        await eventually(in_the_tool)
        clock.advance(LEASE + 1)  # A's lease runs out while it hangs
        async with running_worker(store_b, worker_id="B", tools=registry):
            await until_written(store_b, task.id, EventKind.TEXT, count=2)  # B said "two"
            taken_over = await events(store_b, task.id)
            gate.set()  # A's tool returns; A tries to record its result
            await until_gone(worker_a, task.id)
            assert (await events(store_b, task.id)) == taken_over
            assert (await store_b.get_task(task.id)).status is TaskStatus.RUNNING

    [run] = ended
    assert (run.end, run.stop_reason) == (RunEnd.STOPPED, "claim lost")
    assert len(calls) == 1  # not run again by B: it was in flight, so it is interrupted
    timeline = await events(store_b, task.id)
    tool_calls = [e for e in timeline if e.kind is EventKind.TOOL_CALL]
    assert [e.payload.get("interrupted") for e in tool_calls] == [True]
    resumed = next(i for i, e in enumerate(timeline) if e.kind is EventKind.RESUMED)
    assert [e.payload.get("text") for e in timeline[resumed:]
            if e.kind is EventKind.TEXT] == ["two"]
    assert (await store_b.get_task(task.id)).tool_call_count == 1


async def test_a_run_whose_task_was_given_back_stops_and_the_task_ends_once(
        make_store: MakeStore) -> None:
    # The task is given back under a run that has not noticed (its next write is the
    # first to know): that run stops, the task is claimed again under a new token and
    # taken up from its journal, and it ends once, with each step recorded once.
    store = await make_store()
    task = await submit(store, "!say one\n!wait 0.3\n!say two\n!end completed done")
    ended: list[TaskRun] = []
    async with running_worker(store, worker_id="A", on_run_end=ended.append):
        await until_written(store, task.id, EventKind.TEXT)
        await store.work.release("A", [task.id])

        async def completed() -> bool:
            return (await store.get_task(task.id)).status is TaskStatus.COMPLETED

        await eventually(completed)
    assert [r.stop_reason for r in ended] == ["claim lost", None]
    timeline = await events(store, task.id)
    assert [e.payload.get("text") for e in timeline if e.kind is EventKind.TEXT] == [
        "one", "two"]
    assert [e.kind for e in timeline].count(EventKind.FINAL) == 1
