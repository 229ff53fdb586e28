"""Demo data from ``seed_demo``: deterministic, varied, and consistent with the store's own
invariants, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from taskops.bot.push.injections import parent_chat
from taskops.storage.domain import (
    EventKind,
    ListFilters,
    ProviderChoice,
    ResultStatus,
    Task,
    TaskEvent,
    TaskStatus,
    Trigger,
)
from taskops.storage.models import TaskEventRow, TaskRow
from taskops.storage.rows import row_to_event, row_to_task
from taskops.storage.rules import estimate_cost, sort_name
from taskops.storage.seed import SeedReport, seed_demo
from taskops.storage.store import TaskStore
from tests.conftest import reset_database
from tests.factories import FakeClock, make_task

N = 300
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # FakeClock's default


Raw = tuple[int, int | None]  # the columns Task does not carry: total_tokens, duration_ms


async def load(store: TaskStore) -> tuple[list[Task], dict[int, list[TaskEvent]], list[Raw]]:
    """All tasks, their events by task, and the raw columns of each task."""
    async with store.engines.read.connect() as conn:
        rows = (await conn.execute(select(TaskRow).order_by(TaskRow.id))).all()
        events: dict[int, list[TaskEvent]] = defaultdict(list)
        for r in await conn.execute(select(TaskEventRow).order_by(TaskEventRow.id)):
            events[r.task_id].append(row_to_event(r))
    return ([row_to_task(r) for r in rows], events,
            [(r.total_tokens, r.duration_ms) for r in rows])


async def digest(store: TaskStore) -> str:
    hasher = hashlib.sha256()
    async with store.engines.read.connect() as conn:
        for table in (TaskRow, TaskEventRow):
            for row in await conn.execute(select(table).order_by(table.id)):
                hasher.update(repr(tuple(row)).encode())
    return hasher.hexdigest()


@pytest.fixture
async def seeded(store: TaskStore) -> SeedReport:
    done: list[int] = []
    report = await seed_demo(store, N, seed=0, now=NOW, progress=done.append)
    assert done[-1] == N
    return report


async def test_same_seed_and_now_give_the_same_rows(store: TaskStore) -> None:
    first = await seed_demo(store, N, seed=7, now=NOW)
    one = await digest(store)
    await reset_database(store)
    second = await seed_demo(store, N, seed=7, now=NOW)
    assert await digest(store) == one
    assert (first.tasks, first.events) == (second.tasks, second.events) == (N, first.events)
    await reset_database(store)
    await seed_demo(store, N, seed=8, now=NOW)
    assert await digest(store) != one


async def test_the_data_covers_every_status_trigger_and_provider(
        store: TaskStore, seeded: SeedReport) -> None:
    tasks, events, _ = await load(store)
    assert len(tasks) == seeded.tasks == N
    assert sum(len(e) for e in events.values()) == seeded.events
    assert 8 * N <= seeded.events <= 12 * N  # about ten a task
    assert {t.status for t in tasks} == set(TaskStatus)
    assert {t.trigger for t in tasks} == set(Trigger)
    by_status = {s: sum(t.status is s for t in tasks) for s in TaskStatus}
    assert by_status[TaskStatus.COMPLETED] > N // 2
    assert by_status[TaskStatus.COMPLETED] > by_status[TaskStatus.FAILED] > \
        by_status[TaskStatus.PAUSED] > 0
    assert by_status[TaskStatus.RUNNING] <= 20
    assert by_status[TaskStatus.PAUSED] <= 10
    options = await store.provider_options()
    assert options[0] == ProviderChoice.default()
    assert len(options) >= 7
    assert ProviderChoice("local", "llama-3.1-70b") in options
    defaults = [t for t in tasks if t.used_default]
    assert defaults
    assert {(t.provider, t.model) for t in defaults} == {
        (store.settings.tasks.default_provider, store.settings.tasks.default_model)}
    never = [t for t in tasks if t.started_at is None]
    assert any(t.status is TaskStatus.RUNNING for t in never)
    assert any(t.status is TaskStatus.FAILED and t.killed_by for t in never)
    # Never-started running tasks and every running task are among the newest.
    newest = sorted(tasks, key=lambda t: t.created_at)[-30:]
    assert all(t in newest for t in tasks if t.status is TaskStatus.RUNNING)
    assert any(t.restarted_from_id for t in tasks)
    assert sum(t.trigger is Trigger.CRONJOB for t in tasks) > \
        3 * len({t.name for t in tasks if t.trigger is Trigger.CRONJOB})
    assert any(t.cost_usd is None for t in tasks)
    assert any(t.cost_usd for t in tasks)


async def test_no_seeded_result_goes_to_a_telegram_chat(store: TaskStore,
                                                         seeded: SeedReport) -> None:
    # Results of tasks whose parent session is a Telegram chat are posted there; demo data
    # must not make taskops write to chats nobody opened.
    tasks, events, _ = await load(store)
    sessions = {t.parent_session for t in tasks} | {
        e.payload.get("parent_session") for es in events.values() for e in es
        if e.kind is EventKind.INJECTION}
    assert len(sessions - {None}) >= 2
    assert all(parent_chat(session) is None for session in sessions)


async def test_names_and_prompts_are_html_hostile(store: TaskStore, seeded: SeedReport) -> None:
    tasks, events, _ = await load(store)
    names = [t.name for t in tasks]
    for needle in ("<", ">", "&", '"', "'"):
        assert any(needle in n for n in names), needle
    assert any(re.search("[\u0600-\u06ff]", n) for n in names)  # Arabic
    assert any(re.search("[\u0590-\u05ff]", n) for n in names)  # Hebrew
    assert any(re.search("[\U0001f300-\U0001faff]", n) for n in names)  # emoji
    assert any(150 <= len(n) <= 200 for n in names)
    assert all(1 <= len(n) <= 200 and n == n.strip() for n in names)
    assert any(len(t.prompt) >= 2000 for t in tasks)
    texts = [e.payload["text"] for es in events.values() for e in es if e.kind is EventKind.TEXT]
    assert any("**" in t and "`" in t and "](" in t for t in texts)
    calls = [e.payload for es in events.values() for e in es if e.kind is EventKind.TOOL_CALL]
    assert any(c["is_error"] for c in calls)
    assert all(set(c) == {"tool", "arguments", "result", "is_error", "duration_ms"}
               and isinstance(c["arguments"], dict) for c in calls)


def check_task(task: Task, events: list[TaskEvent], raw: Raw, store: TaskStore,
               by_id: dict[int, Task]) -> None:
    where = f"task #{task.id} ({task.status})"
    total_tokens, duration_ms = raw
    assert task.event_count == len(events), where
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), where
    assert all(a.at <= b.at for a, b in itertools.pairwise(events)), where
    assert task.last_event_at == (events[-1].at if events else None), where
    assert task.tool_call_count == sum(e.kind is EventKind.TOOL_CALL for e in events), where
    assert total_tokens == task.prompt_tokens + task.completion_tokens, where
    assert task.name == task.name.strip(), where
    assert 1 <= len(task.name) <= 200, where
    # times: within the last 30 days, in order, durations as the store computes them
    assert NOW - timedelta(days=30) <= task.created_at <= NOW, where
    assert all(e.at <= NOW for e in events), where
    if task.started_at is not None:
        assert task.created_at <= task.started_at, where
        assert events[0].kind is EventKind.STATUS_CHANGE, where
        assert events[0].payload == {"old": None, "new": "running", "message": "Task started"}
        assert events[0].at == task.started_at, where
    if task.started_at is not None and task.finished_at is not None:
        assert task.started_at <= task.finished_at, where
        assert duration_ms == int(
            (task.finished_at - task.started_at).total_seconds() * 1000), where
    else:
        assert duration_ms is None, where
    price = store.settings.price_for(task.model)
    if price is None:
        assert task.cost_usd is None, where
    else:
        assert task.cost_usd == pytest.approx(estimate_cost(
            price.input_per_million, price.output_per_million, task.prompt_tokens,
            task.completion_tokens)), where
    if task.used_default:
        assert (task.provider, task.model) == (store.settings.tasks.default_provider,
                                               store.settings.tasks.default_model), where
    changes = [e for e in events if e.kind is EventKind.STATUS_CHANGE]
    finals = [e for e in events if e.kind is EventKind.FINAL]
    if changes:
        assert changes[-1].payload["new"] == task.status.value, where
    if task.status is TaskStatus.RUNNING:
        assert (task.finished_at, task.result_status) == (None, None), where
        assert (task.summary, task.error, task.killed_by) == (None, None, None), where
        assert not finals, where
        assert not any(e.kind is EventKind.INJECTION for e in events), where
        if task.started_at is None:
            assert (events, task.total_tokens) == ([], 0), where
        return
    assert events[-1].kind in (EventKind.FINAL, EventKind.INJECTION), where
    last_final = finals[-1]
    assert last_final.payload["status"] == task.result_status, where
    assert last_final.payload["summary"] == task.summary, where
    assert set(last_final.payload) == {"status", "summary", "text", "formatted"}, where
    for final in finals:  # each final is followed by its injection unless silent
        after = events[final.seq:final.seq + 1]
        if final.payload["status"] == ResultStatus.SILENT:
            assert not after or after[0].kind is not EventKind.INJECTION, where
            continue
        assert [e.kind for e in after] == [EventKind.INJECTION], where
        injection = after[0].payload
        assert set(injection) == {"parent_session", "text", "status"}, where
        assert injection["status"] == final.payload["status"], where
        assert injection["parent_session"] == task.parent_session, where
        assert injection["text"].startswith(f'<task_injection task_id="{task.id}" '), where
        assert injection["text"].endswith(f"\n{final.payload['summary']}\n</task_injection>")
    if task.status is TaskStatus.PAUSED:
        assert (task.result_status, task.finished_at) == (ResultStatus.QUESTION, None), where
        assert task.error is None, where
        return
    assert task.finished_at is not None, where
    assert task.finished_at <= NOW, where
    if task.status is TaskStatus.COMPLETED:
        assert task.result_status in (ResultStatus.COMPLETED, ResultStatus.SILENT), where
        assert (task.error, task.killed_by) == (None, None), where
    else:
        assert task.result_status is ResultStatus.FAILED, where
        assert task.error, where
        assert task.error == task.summary, where
        assert changes[-1].payload["message"] == (
            task.error if task.killed_by or last_final.payload["text"] is None
            else "Task failed"), where
    if task.killed_by is not None:
        assert task.summary == f"Killed by {task.killed_by} from Telegram", where
    if task.started_at is None:  # killed before it started
        assert task.killed_by is not None, where
        assert len(events) == 3, where
    if task.restarted_from_id is not None:
        original = by_id[task.restarted_from_id]
        assert original.id < task.id, where
        assert original.status is TaskStatus.FAILED, where
        assert task.trigger is Trigger.USER, where


async def test_every_seeded_task_keeps_the_store_invariants(
        store: TaskStore, seeded: SeedReport) -> None:
    tasks, events, raws = await load(store)
    by_id = {t.id: t for t in tasks}
    for task, raw in zip(tasks, raws, strict=True):
        check_task(task, events.get(task.id, []), raw, store, by_id)
    async with store.engines.read.connect() as conn:
        assert [tuple(r) for r in await conn.execute(
            select(TaskRow.name, TaskRow.sort_name).order_by(TaskRow.id))] == [
                (t.name, sort_name(t.name)) for t in tasks]
        txids = set((await conn.execute(select(TaskEventRow.txid))).scalars())
    assert txids == ({None} if store.engines.is_sqlite else {0})


async def test_the_list_counts_every_seeded_task(store: TaskStore, seeded: SeedReport) -> None:
    tasks, _, _ = await load(store)
    first = await store.list_tasks(page_size=20)
    assert first.total == N
    newest = sorted(tasks, key=lambda t: (t.created_at, t.id), reverse=True)[:20]
    assert [t.id for t in first.tasks] == [t.id for t in newest]
    for status in TaskStatus:
        page = await store.list_tasks(ListFilters(status=status))
        assert page.total == sum(t.status is status for t in tasks)
    default = await store.list_tasks(ListFilters(provider=ProviderChoice.default()))
    assert default.total == sum(t.used_default for t in tasks)
    week = (NOW - timedelta(days=6)).astimezone(store.tz).date()
    recent = await store.list_tasks(ListFilters(date_from=week, trigger=Trigger.CRONJOB))
    assert recent.total == sum(t.trigger is Trigger.CRONJOB
                               and t.created_at.astimezone(store.tz).date() >= week
                               for t in tasks)
    assert recent.tasks
    assert all(t.trigger is Trigger.CRONJOB for t in recent.tasks)


async def test_the_store_api_works_on_seeded_tasks(store: TaskStore, clock: FakeClock) -> None:
    existing = await make_task(store, clock, name="made by hand", final="done")
    await seed_demo(store, N, now=NOW)
    tasks, _, _ = await load(store)
    assert tasks[0].id == existing.id
    assert tasks[1].id == existing.id + 1
    running = next(t for t in reversed(tasks)
                   if t.status is TaskStatus.RUNNING and t.started_at is not None)
    fresh = next(t for t in tasks if t.status is TaskStatus.RUNNING and t.started_at is None)
    paused = next(t for t in tasks if t.status is TaskStatus.PAUSED)
    failed = next(t for t in tasks if t.status is TaskStatus.FAILED)
    clock.set(NOW + timedelta(seconds=5))

    event = await store.append_event(running.id, EventKind.TEXT, {"text": "still here"},
                                     prompt_tokens=10, completion_tokens=5)
    assert event is not None
    assert event.seq == running.event_count + 1
    killed = await store.kill_task(running.id, by="tester")
    assert (killed.status, killed.event_count) == (TaskStatus.FAILED, running.event_count + 4)
    assert running.started_at is not None
    assert killed.duration_seconds(NOW) == pytest.approx(
        (NOW + timedelta(seconds=5) - running.started_at).total_seconds())

    assert await store.start_task(fresh.id) is not None
    done = await store.finish_task(fresh.id, "STATUS: completed\nSUMMARY:\nok")
    assert done.status is TaskStatus.COMPLETED
    assert done.event_count == 4

    resumed = await store.resume_task(paused.id, "yes", by="tester")
    assert resumed.status is TaskStatus.RUNNING
    assert resumed.event_count == paused.event_count + 2

    restarted = await store.restart_task(failed.id)
    assert restarted.id == tasks[-1].id + 1  # the id sequence continues after the seed
    assert restarted.restarted_from_id == failed.id

    page = await store.list_tasks()
    assert page.total == N + 2
    for status in TaskStatus:
        counted = (await store.list_tasks(ListFilters(status=status))).total
        async with store.engines.read.connect() as conn:
            actual = (await conn.execute(select(func.count()).where(
                TaskRow.status == status.value))).scalar_one()
        assert counted == actual, status


async def test_seeded_rows_look_like_the_stores_own(store: TaskStore, clock: FakeClock) -> None:
    """Same payload shapes and, on SQLite, the same stored timestamp text."""
    own = await make_task(store, clock, name="own", run_seconds=3,
                          final="STATUS: completed\nSUMMARY:\nok")
    await seed_demo(store, 50, now=NOW)
    tasks, events, _ = await load(store)
    own_events = events[own.id]
    seeded = next(t for t in tasks if t.id != own.id and t.status is TaskStatus.COMPLETED
                  and t.result_status is ResultStatus.COMPLETED)
    for kind in (EventKind.STATUS_CHANGE, EventKind.FINAL, EventKind.INJECTION):
        mine = next(e.payload for e in own_events if e.kind is kind)
        theirs = next(e.payload for e in events[seeded.id] if e.kind is kind)
        assert set(mine) == set(theirs), kind
        both = [k for k in mine if mine[k] is not None and theirs[k] is not None]
        assert [type(mine[k]) for k in both] == [type(theirs[k]) for k in both], kind
    if store.engines.is_sqlite:
        async with store.engines.read.connect() as conn:
            raw = (await conn.exec_driver_sql(
                "SELECT created_at, started_at, finished_at FROM tasks WHERE id IN (?, ?) "
                "ORDER BY id", (own.id, seeded.id))).all()
        shapes = {tuple(re.sub(r"\d", "9", str(v)) for v in r) for r in raw}
        assert len(shapes) == 1, raw
