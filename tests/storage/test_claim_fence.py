"""Journal writes fenced by the claim (issue 14): once a worker's lease has run out and
another worker took the task up, nothing the old run sends is written — not an event, not
its tokens, not its ending — on both engines, and the new run's writes go on unharmed."""

from __future__ import annotations

import asyncio

import pytest

from taskops.storage.domain import (
    ClaimLost,
    EventKind,
    Fence,
    TaskDraft,
    TaskStatus,
    Usage,
)
from taskops.storage.store import TaskStore
from tests.factories import FakeClock

LEASE = 30.0


async def _claimed_by(store: TaskStore, worker: str) -> Fence:
    await store.create_task(TaskDraft(name="fenced", prompt="do it"))
    [held] = await store.work.claim_new(worker, 1, lease_seconds=LEASE)
    return held.fence


async def _taken_over(store: TaskStore, clock: FakeClock, worker: str) -> Fence:
    """The old worker hung past its lease; ``worker`` takes its task up."""
    clock.advance(LEASE + 1)
    expired = [c for c in await store.work.claims() if store.work.expired(c, LEASE)]
    [held] = await store.work.take_over(worker, expired, lease_seconds=LEASE)
    return held.fence


async def test_a_run_that_lost_its_lease_writes_nothing_more(store: TaskStore,
                                                             clock: FakeClock) -> None:
    old = await _claimed_by(store, "w1")
    assert await store.append_event(1, EventKind.TEXT, {"text": "before"}, fence=old)
    new = await _taken_over(store, clock, "w2")
    assert (new.worker_id, new.token) == ("w2", old.token + 1)
    before = await store.get_task(1)

    with pytest.raises(ClaimLost):
        await store.append_event(1, EventKind.TOOL_CALL, {"tool": "late"}, prompt_tokens=7,
                                 completion_tokens=3, cost_usd=0.5, fence=old)
    with pytest.raises(ClaimLost):
        await store.finish_task(1, "STATUS: completed\nSUMMARY: late", Usage(5, 5), fence=old)
    with pytest.raises(ClaimLost):
        await store.fail_task(1, "late failure", fence=old)

    after = await store.get_task(1)
    assert after.status is TaskStatus.RUNNING
    assert (after.event_count, after.tool_call_count, after.total_tokens, after.cost_usd) == (
        before.event_count, before.tool_call_count, before.total_tokens, before.cost_usd)
    assert [e.payload.get("text") for e in await store.task_journal(1)][1:] == ["before"]

    # The run that holds the task now writes and ends it as usual.
    assert await store.append_event(1, EventKind.TEXT, {"text": "resumed"}, fence=new)
    done = await store.finish_task(1, "STATUS: completed\nSUMMARY: ok", fence=new)
    assert (done.status, done.summary) == (TaskStatus.COMPLETED, "ok")
    journal = await store.task_journal(1)
    assert [e.seq for e in journal] == list(range(1, len(journal) + 1))


async def test_stale_and_current_runs_in_one_batch(store: TaskStore, clock: FakeClock) -> None:
    # Both runs' events reach the same group commit: the stale run's are refused one by
    # one, the current run's are numbered without a gap, and only theirs are counted.
    old = await _claimed_by(store, "w1")
    new = await _taken_over(store, clock, "w2")
    outcomes = await asyncio.gather(*(
        store.append_event(1, EventKind.TOOL_CALL, {"n": n, "by": fence.worker_id},
                           prompt_tokens=1, fence=fence)
        for n in range(10) for fence in (old, new)), return_exceptions=True)
    assert [type(o) for o in outcomes[0::2]] == [ClaimLost] * 10
    written = [o for o in outcomes[1::2] if not isinstance(o, BaseException)]
    assert [e.payload["n"] for e in written if e is not None] == list(range(10))
    journal = await store.task_journal(1)
    assert [e.seq for e in journal] == list(range(1, 12))
    assert {e.payload.get("by") for e in journal[1:]} == {"w2"}
    task = await store.get_task(1)
    assert (task.tool_call_count, task.prompt_tokens, task.event_count) == (10, 10, 11)


async def test_claimed_again_by_the_same_worker_fences_out_its_old_run(
        store: TaskStore, clock: FakeClock) -> None:
    # A worker lost its task (given back) and claimed it again: the run from before is
    # stale all the same — the token, not only the worker, decides.
    old = await _claimed_by(store, "w1")
    await store.work.release("w1", [1])
    [again] = await store.work.claim_unowned("w1", 1, lease_seconds=LEASE)
    assert again.fence == Fence("w1", old.token + 1)
    with pytest.raises(ClaimLost):
        await store.append_event(1, EventKind.TEXT, {"text": "stale"}, fence=old)
    assert await store.append_event(1, EventKind.TEXT, {"text": "fresh"}, fence=again.fence)


async def test_a_given_back_task_refuses_its_old_run(store: TaskStore,
                                                     clock: FakeClock) -> None:
    old = await _claimed_by(store, "w1")
    await store.work.release("w1", [1])
    with pytest.raises(ClaimLost):
        await store.append_event(1, EventKind.TEXT, {"text": "after release"}, fence=old)


async def test_an_ended_task_refuses_before_the_claim_is_asked(store: TaskStore,
                                                               clock: FakeClock) -> None:
    # A kill is not a lost claim: the run sees "ended" (None), as without a fence.
    old = await _claimed_by(store, "w1")
    await store.kill_task(1, by="Ann")
    assert await store.append_event(1, EventKind.TEXT, {"text": "late"}, fence=old) is None
