"""Retention (storage.retention, runtime.retention): old ended tasks and timelines go in
small batches; running and paused tasks stay; the list's counts stay exact."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta

import pytest

from taskops.config import RetentionSettings
from taskops.runtime.retention import Retention
from taskops.storage.domain import EventKind, ListFilters, TaskDraft, TaskStatus
from taskops.storage.store import TaskStore
from tests.factories import FakeClock, assert_totals_kept


async def _task(store: TaskStore, name: str, end: str | None, *, restarted_from: int | None
                = None) -> int:
    """A task with a started event, a text and (``end``) its ending: completed, failed,
    paused (a question), killed, or None (still running)."""
    if restarted_from is not None:
        task = await store.restart_task(restarted_from)
    else:
        task = await store.create_task(TaskDraft(name=name, prompt="p"))
    await store.start_task(task.id, "w")
    await store.append_event(task.id, EventKind.TEXT, {"text": f"{name} says"})
    if end == "completed":
        await store.finish_task(task.id, "Done.")
    elif end == "paused":
        await store.finish_task(task.id, "STATUS: question\nSUMMARY: Which one?")
    elif end == "failed":
        await store.fail_task(task.id, "broke")
    elif end == "killed":
        await store.kill_task(task.id, by="Ann")
    return task.id


async def _counts_exact(store: TaskStore) -> None:
    """The kept counters equal counters rebuilt from the rows, facet by facet."""
    await assert_totals_kept(store)
    kept = await store.list_tasks(page_size=1)
    total = kept.total
    before = await store.retention.counted_tasks()
    await store.rebuild_counts()
    assert await store.retention.counted_tasks() == before
    assert (await store.list_tasks(page_size=1)).total == total
    tasks = await store.list_tasks(page_size=20)
    assert tasks.total == len(tasks.tasks)
    for status in TaskStatus:
        page = await store.list_tasks(ListFilters(status=status), page_size=1)
        assert page.total == len([t for t in tasks.tasks if t.status is status])


def _with(store: TaskStore, **retention: int) -> None:
    store.settings = dataclasses.replace(store.settings,
                                         retention=RetentionSettings(**retention))


async def test_old_ended_tasks_go_running_and_paused_stay_counts_exact(
        store: TaskStore, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    old = {end: await _task(store, f"old {end}", end)
           for end in ("completed", "failed", "killed", "paused", None)}
    clock.advance(timedelta(days=20).total_seconds())
    # A recent restart of an old task: it stays, its link to the original goes.
    again = await _task(store, "again", "completed", restarted_from=old["completed"])
    recent = await _task(store, "recent", "completed")
    _with(store, tasks_days=10, batch_size=2)
    with caplog.at_level(logging.INFO, logger="taskops.runtime"):
        pruned = await Retention(store).prune_once()
    assert (pruned.tasks, pruned.batches) == (3, 2)
    left = await store.tasks_by_ids([*old.values(), again, recent])
    assert set(left) == {old["paused"], old[None], again, recent}
    assert left[old["paused"]].status is TaskStatus.PAUSED
    assert left[old[None]].status is TaskStatus.RUNNING
    assert left[again].restarted_from_id is None
    for task_id in (old["completed"], old["failed"], old["killed"]):
        assert await store.task_journal(task_id) == ()
    assert await store.task_journal(old[None])  # its journal, to resume from, stays
    assert any("retention: pruned 3 task(s)" in r.getMessage() for r in caplog.records)
    await _counts_exact(store)
    # Nothing more to do: a second pass removes nothing and says nothing.
    caplog.clear()
    assert not await Retention(store).prune_once()
    assert not [r for r in caplog.records if "retention" in r.getMessage()]


async def test_old_timelines_go_and_the_tasks_stay(store: TaskStore, clock: FakeClock) -> None:
    done = [await _task(store, f"done {i}", "completed") for i in range(5)]
    running = await _task(store, "running", None)
    paused = await _task(store, "paused", "paused")
    clock.advance(timedelta(days=8).total_seconds())
    young = await _task(store, "young", "completed")
    _with(store, events_days=7, batch_size=2)
    pruned = await Retention(store).prune_once()
    assert pruned.tasks == 0
    assert pruned.events > 0
    for task_id in done:
        assert await store.task_journal(task_id) == ()
        task = await store.get_task(task_id)
        assert (task.status, task.summary) == (TaskStatus.COMPLETED, "Done.")
    for task_id in (running, paused, young):
        assert await store.task_journal(task_id)
    await _counts_exact(store)
    # The watermark keeps the next pass from reading the same tasks again.
    assert (await Retention(store).prune_once()).events == 0


async def test_a_prune_stops_when_leadership_is_lost(store: TaskStore, clock: FakeClock) -> None:
    for i in range(6):
        await _task(store, f"t{i}", "completed")
    clock.advance(timedelta(days=3).total_seconds())
    _with(store, tasks_days=1, batch_size=2)
    calls = iter([True, False])
    pruned = await Retention(store, keep_going=lambda: next(calls)).prune_once()
    assert (pruned.tasks, pruned.stopped) == (2, True)
    assert (await store.list_tasks(page_size=1)).total == 4
    await _counts_exact(store)
