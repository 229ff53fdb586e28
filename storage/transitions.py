"""The one place a task row is created or changes: inserts, events, starts, transitions.

Every function runs inside a write transaction the caller opened, so a caller can combine
them (a trigger firing records its schedule and inserts its task in one transaction; a
claim starts several tasks at once). The rules they follow:

* every status transition is a compare-and-set on the task row, keeps the day counts in
  step and appends a ``status_change`` event in the same transaction, so the event log
  (whose ids are the change feed) never disagrees with the task table;
* events are numbered per task on the task row, which also serialises writers of a task;
  an event for an ended task is refused when the writer asks for ``only_active``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from taskops import metrics
from taskops.storage import counts, rules
from taskops.storage.db import Database
from taskops.storage.domain import (
    ACTIVE_STATUSES,
    NO_USAGE,
    ClaimLost,
    EventKind,
    Fence,
    FinalMessage,
    InvalidTransition,
    ProviderChoice,
    StoreError,
    Task,
    TaskDraft,
    TaskEvent,
    TaskNotFound,
    TaskStatus,
    Usage,
)
from taskops.storage.models import TaskEventRow, TaskRow
from taskops.storage.rows import row_to_event, row_to_task

_ACTIVE = [s.value for s in ACTIVE_STATUSES]


async def get(conn: AsyncConnection, task_id: int) -> Task:
    row = (await conn.execute(select(TaskRow).where(TaskRow.id == task_id))).first()
    if row is None:
        raise TaskNotFound(task_id)
    return row_to_task(row)


# --- creating ----------------------------------------------------------------------------


def _resolve_provider(db: Database, choice: ProviderChoice) -> tuple[str, str, bool]:
    if not choice.is_default:
        return str(choice.provider), str(choice.model), False
    tasks = db.settings.tasks
    if not tasks.default_provider or not tasks.default_model:
        raise StoreError("No task default provider is configured; choose a provider and "
                         "model, or set [tasks] default_provider and default_model.")
    return tasks.default_provider, tasks.default_model, True


def max_duration(db: Database, minutes: int | None) -> int:
    """The max duration a new task gets: the setting's default, capped by the system max."""
    tasks = db.settings.tasks
    if minutes is None:
        minutes = tasks.max_duration_minutes
    if minutes < 1:
        raise StoreError(f"Max duration must be at least 1 minute, got {minutes}.")
    return min(minutes, tasks.max_duration_cap_minutes)


def task_values(db: Database, draft: TaskDraft, now: datetime) -> dict[str, Any]:
    """The row of a new task, validated (names, prompt, provider, max duration)."""
    name = rules.clean(draft.name).strip()
    prompt = rules.clean(draft.prompt)
    if not 1 <= len(name) <= rules.NAME_MAX:
        raise StoreError(f"A task name must be 1–{rules.NAME_MAX} characters.")
    if not prompt.strip():
        raise StoreError("A task prompt must not be empty.")
    provider, model, used_default = _resolve_provider(db, draft.provider)
    return dict(
        name=name, sort_name=rules.sort_name(name), prompt=prompt,
        status=TaskStatus.RUNNING.value,
        trigger=draft.trigger.value, trigger_source_id=draft.trigger_source_id,
        provider=provider, model=model, used_default=used_default,
        max_duration_minutes=max_duration(db, draft.max_duration_minutes),
        parent_session=rules.clean(draft.parent_session), created_at=now, prompt_tokens=0,
        completion_tokens=0, total_tokens=0, tool_call_count=0, event_count=0,
        cost_usd=0.0 if db.settings.price_for(model) else None,
    )


async def insert_task(db: Database, conn: AsyncConnection, values: dict[str, Any]) -> Task:
    row = (await conn.execute(insert(TaskRow).values(**values).returning(TaskRow))).one()
    await counts.bump(conn, db.tz, row, row.status, +1)
    metrics.status_changed(row.status)
    return row_to_task(row)


# --- events ------------------------------------------------------------------------------


async def append_event(db: Database, conn: AsyncConnection, task_id: int, kind: EventKind,
                       payload: dict[str, Any], *, only_active: bool,
                       task_values: dict[str, Any] | None = None) -> TaskEvent | None:
    """Append one event, numbering it on the task row; None when ``only_active`` refused it
    (the task has ended, so a worker that lost a race with a kill writes nothing after it)."""
    now = db.clock()
    stmt = (update(TaskRow).where(TaskRow.id == task_id)
            .values(event_count=TaskRow.event_count + 1, last_event_at=now,
                    **(task_values or {}))
            .returning(TaskRow.event_count))
    if only_active:
        stmt = stmt.where(TaskRow.status.in_(_ACTIVE))
    seq = (await conn.execute(stmt)).scalar_one_or_none()
    if seq is None:
        return None
    row = (await conn.execute(insert(TaskEventRow).values(
        task_id=task_id, seq=seq, at=now, kind=kind.value, payload=payload,
        txid=db.txid).returning(TaskEventRow))).one()
    metrics.events_written(kind.value)
    return row_to_event(row)


# --- transitions -------------------------------------------------------------------------


def holds(row: Any, fence: Fence) -> bool:
    """Whether the task ``row`` is still held under ``fence`` (its run may write)."""
    return bool(row.claimed_by == fence.worker_id and row.claim_token == fence.token)


NEW_TASK = [TaskRow.started_at.is_(None), TaskRow.status == TaskStatus.RUNNING.value]


async def start(db: Database, conn: AsyncConnection, task_ids: Sequence[int], *,
                worker_id: str | None, lease_seconds: float | None) -> list[Any]:
    """Mark never-started tasks as started (they are already ``running``) and log "Task
    started"; returns the started tasks' rows in id order (tasks that were not new any
    more are left out), each under a new claim token.

    Two statements for any number of tasks: the update numbers the event on each row.
    """
    now = db.clock()
    lease = None if lease_seconds is None else now + timedelta(seconds=lease_seconds)
    rows = list(await conn.execute(
        update(TaskRow).where(TaskRow.id.in_(list(task_ids)), *NEW_TASK)
        .values(started_at=now, claimed_by=worker_id, lease_until=lease,
                claim_token=TaskRow.claim_token + 1,
                event_count=TaskRow.event_count + 1, last_event_at=now)
        .returning(TaskRow)))
    if rows:
        await insert_events(db, conn, [(r.id, r.event_count, EventKind.STATUS_CHANGE,
                                        rules.started_payload()) for r in rows], now)
    return sorted(rows, key=lambda r: r.id)


async def insert_events(db: Database, conn: AsyncConnection,
                        events: Sequence[tuple[int, int, EventKind, dict[str, Any]]],
                        at: datetime) -> None:
    """Insert events already numbered on their task rows: (task id, seq, kind, payload).
    The payloads are cleaned by the column type (JSONPayload), once."""
    await conn.execute(insert(TaskEventRow).values(txid=db.txid), [
        dict(task_id=task_id, seq=seq, at=at, kind=kind.value, payload=payload)
        for task_id, seq, kind, payload in events])
    if metrics.enabled():
        for _, _, kind, _ in events:
            metrics.events_written(kind.value)


def _usage_columns(db: Database, model: str | None, usage: Usage) -> dict[str, Any]:
    if usage.prompt_tokens < 0 or usage.completion_tokens < 0:
        raise StoreError("token counts cannot be negative")
    cost = usage.cost_usd
    price = db.settings.price_for(model)
    if cost is None and price is not None:
        cost = rules.estimate_cost(price.input_per_million, price.output_per_million,
                                   usage.prompt_tokens, usage.completion_tokens)
    values: dict[str, Any] = dict(
        prompt_tokens=TaskRow.prompt_tokens + usage.prompt_tokens,
        completion_tokens=TaskRow.completion_tokens + usage.completion_tokens,
        total_tokens=TaskRow.total_tokens + usage.prompt_tokens + usage.completion_tokens,
    )
    if cost is not None:
        values["cost_usd"] = func.coalesce(TaskRow.cost_usd, 0.0) + cost
    return values


async def transition(db: Database, conn: AsyncConnection, task_id: int,
                     allowed: Sequence[TaskStatus], new: TaskStatus, values: dict[str, Any],
                     message: str, refuse: Callable[[TaskStatus], str], *,
                     ending: tuple[FinalMessage, str | None] | None = None,
                     usage: Usage = NO_USAGE,
                     then: Sequence[tuple[EventKind, dict[str, Any]]] = (),
                     fence: Fence | None = None,
                     moves: list[counts.Move] | None = None) -> Task:
    """Compare-and-set the status, keep counts in step, log the status change.

    ``ending`` also writes the ``final`` event of a task that ended or paused and its
    ``injection`` (the agent's final message, or None when it was not the agent's);
    ``usage`` adds tokens in the same update; ``then`` appends more events after these.
    With a ``fence`` (a run ending its own task) the claim is part of the compare-and-set:
    :class:`ClaimLost` if another worker holds the task now. Four statements, however
    many events: read, update (numbering the events on the row), the two day counters,
    the events. With ``moves``, the day counters are left to the caller, who counts the
    change with others (``counts.move_many``; the journal's batch of endings).
    """
    for _ in range(3):
        found = (await conn.execute(select(TaskRow).where(TaskRow.id == task_id))).first()
        if found is None:
            raise TaskNotFound(task_id)
        current = row_to_task(found)
        if current.status not in allowed:
            raise InvalidTransition(refuse(current.status))
        if fence is not None and not holds(found, fence):
            raise ClaimLost(task_id)
        now = db.clock()
        events: list[tuple[EventKind, dict[str, Any]]] = [
            (EventKind.STATUS_CHANGE, rules.status_change_payload(current.status, new, message))]
        if ending is not None:
            final, text = ending
            events.append((EventKind.FINAL, rules.final_payload(final, text)))
            injection = rules.injection_payload(
                task_id=task_id, task_name=current.name, trigger=current.trigger,
                parent_session=current.parent_session, final=final,
                started_at=current.started_at, at=now,
                tokens_used=current.total_tokens + usage.prompt_tokens
                + usage.completion_tokens)
            if injection is not None:
                events.append((EventKind.INJECTION, injection))
        events += then
        set_values = dict(values, status=new.value, last_event_at=now,
                          event_count=TaskRow.event_count + len(events))
        if usage:
            set_values.update(_usage_columns(db, current.model, usage))
        if new.is_final:
            set_values.update(finished_at=now,
                              duration_ms=rules.duration_ms(current.started_at, now))
        where = [TaskRow.id == task_id, TaskRow.status == current.status.value]
        if fence is not None:
            where += [TaskRow.claimed_by == fence.worker_id, TaskRow.claim_token == fence.token]
        row = (await conn.execute(
            update(TaskRow).where(*where).values(**set_values).returning(TaskRow))).first()
        if row is None:
            continue  # lost a race (PostgreSQL); look again
        first = row.event_count - len(events) + 1
        await insert_events(db, conn, [(task_id, first + i, kind, payload)
                                       for i, (kind, payload) in enumerate(events)], now)
        # Last: every task of a day and facets moves the same two counter rows, whose
        # lock (PostgreSQL) is then held only until the commit that follows.
        if moves is None:
            await counts.move(conn, db.tz, row, current.status.value, new.value)
        else:
            moves.append((row, current.status.value, new.value))
        metrics.status_changed(new.value)
        return row_to_task(row)
    raise StoreError(f"Task #{task_id} kept changing; try again.")
