"""The task store: the only way the rest of taskops reads or changes tasks.

Every status transition is a compare-and-set on the task row and appends a
``status_change`` event in the same transaction, so the event log (whose ids are the
change feed) never disagrees with the task table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, literal_column, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from taskops.config import Settings
from taskops.storage import counts, feed, listing
from taskops.storage.console import ConsoleStore
from taskops.storage.db import Engines, create_engines, migrate
from taskops.storage.domain import (
    ACTIVE_STATUSES,
    EventKind,
    EventPage,
    FinalMessage,
    InvalidTransition,
    ListFilters,
    PageRequest,
    ProviderChoice,
    RestartEdits,
    ResultStatus,
    Sort,
    StoreError,
    Task,
    TaskDraft,
    TaskEvent,
    TaskNotFound,
    TaskPage,
    TaskStatus,
    Trigger,
    estimate_cost,
    injection_block,
    kill_refused_message,
    parse_final_message,
    restart_refused_message,
)
from taskops.storage.feed import FeedBatch
from taskops.storage.models import TaskEventRow, TaskRow
from taskops.storage.rows import row_to_event, row_to_task
from taskops.storage.signals import ChangeBus, TaskChange

NAME_MAX = 200


def sort_name(name: str) -> str:
    """The name sort's key: case-insensitive, the same on every engine."""
    return name.casefold()[:NAME_MAX]


def clean(value: Any) -> Any:
    """Replace NUL characters, which PostgreSQL text and JSONB refuse and SQLite keeps, so
    agent-written text is stored the same way on both engines."""
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class TaskStore:
    def __init__(self, engines: Engines, settings: Settings,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.engines = engines
        self.settings = settings
        self.clock = clock
        self.tz: ZoneInfo = settings.ui.tz
        self.bus = ChangeBus()
        self.console = ConsoleStore(engines, clock)
        # On PostgreSQL every event records its writer's transaction id (see read_changes).
        self._txid: Any = (None if engines.is_sqlite
                           else literal_column("pg_current_xact_id()::text::bigint"))

    @classmethod
    async def open(cls, settings: Settings, *, run_migrations: bool = False,
                   clock: Callable[[], datetime] = utcnow) -> TaskStore:
        if run_migrations:
            await migrate(settings.database.url)
        store = cls(create_engines(settings.database.url, echo=settings.database.echo),
                    settings, clock)
        await store._ensure_counts()
        return store

    async def close(self) -> None:
        await self.engines.dispose()

    # --- transactions -------------------------------------------------------------------

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with self.engines.write.begin() as conn:
            yield conn

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engines.read.connect() as conn:
            yield conn

    # --- creating -----------------------------------------------------------------------

    def _resolve_provider(self, choice: ProviderChoice) -> tuple[str, str, bool]:
        if not choice.is_default:
            return str(choice.provider), str(choice.model), False
        tasks = self.settings.tasks
        if not tasks.default_provider or not tasks.default_model:
            raise StoreError("No task default provider is configured; choose a provider and "
                             "model, or set [tasks] default_provider and default_model.")
        return tasks.default_provider, tasks.default_model, True

    def _max_duration(self, minutes: int | None) -> int:
        tasks = self.settings.tasks
        if minutes is None:
            minutes = tasks.max_duration_minutes
        if minutes < 1:
            raise StoreError(f"Max duration must be at least 1 minute, got {minutes}.")
        return min(minutes, tasks.max_duration_cap_minutes)

    def _task_values(self, draft: TaskDraft, now: datetime) -> dict[str, Any]:
        draft = dataclasses.replace(draft, name=clean(draft.name), prompt=clean(draft.prompt),
                                    parent_session=clean(draft.parent_session))
        name = draft.name.strip()
        if not 1 <= len(name) <= NAME_MAX:
            raise StoreError(f"A task name must be 1–{NAME_MAX} characters.")
        if not draft.prompt.strip():
            raise StoreError("A task prompt must not be empty.")
        provider, model, used_default = self._resolve_provider(draft.provider)
        return dict(
            name=name, sort_name=sort_name(name), prompt=draft.prompt,
            status=TaskStatus.RUNNING.value,
            trigger=draft.trigger.value, trigger_source_id=draft.trigger_source_id,
            provider=provider, model=model, used_default=used_default,
            max_duration_minutes=self._max_duration(draft.max_duration_minutes),
            parent_session=draft.parent_session, created_at=now, prompt_tokens=0,
            completion_tokens=0, total_tokens=0, tool_call_count=0, event_count=0,
            cost_usd=0.0 if self.settings.price_for(model) else None,
        )

    async def create_task(self, draft: TaskDraft) -> Task:
        now = self.clock()
        values = self._task_values(draft, now)
        async with self._write() as conn:
            task = await self._insert_task(conn, values)
        self.bus.publish(TaskChange(task.id, TaskStatus.RUNNING, created=True))
        return task

    async def _insert_task(self, conn: AsyncConnection, values: dict[str, Any]) -> Task:
        row = (await conn.execute(insert(TaskRow).values(**values).returning(TaskRow))).one()
        await self._bump_count(conn, row, row.status, +1)
        return row_to_task(row)

    async def restart_task(self, task_id: int, edits: RestartEdits | None = None, *,
                           key: str | None = None) -> Task:
        """Create a new user-triggered run of a finished task; the original is untouched.

        With a ``key``, a second call with the same key returns the first call's task.
        """
        edits = edits or RestartEdits()
        try:
            async with self._write() as conn:
                if key is not None:
                    existing = await self._task_by_restart_key(conn, key)
                    if existing is not None:
                        return existing
                original = await self._get(conn, task_id)
                if original.status in ACTIVE_STATUSES:
                    raise InvalidTransition(restart_refused_message(original.status))
                if edits.provider is not None:
                    provider = edits.provider
                elif original.used_default or original.provider is None:
                    provider = ProviderChoice.default()
                else:
                    provider = ProviderChoice(original.provider, original.model)
                draft = TaskDraft(
                    name=edits.name if edits.name is not None else original.name,
                    prompt=edits.prompt if edits.prompt is not None else original.prompt,
                    trigger=Trigger.USER, provider=provider,
                    max_duration_minutes=(edits.max_duration_minutes
                                          or original.max_duration_minutes),
                    parent_session=original.parent_session,
                )
                values = self._task_values(draft, self.clock())
                values.update(restarted_from_id=original.id, restart_key=key)
                task = await self._insert_task(conn, values)
        except IntegrityError:
            # Another caller inserted the same key between our check and insert (PostgreSQL).
            if key is None:
                raise
            async with self._read() as conn:
                existing = await self._task_by_restart_key(conn, key)
            if existing is None:
                raise
            return existing
        self.bus.publish(TaskChange(task.id, TaskStatus.RUNNING, created=True))
        return task

    async def _task_by_restart_key(self, conn: AsyncConnection, key: str) -> Task | None:
        row = (await conn.execute(select(TaskRow).where(TaskRow.restart_key == key))).first()
        return row_to_task(row) if row else None

    # --- reading ------------------------------------------------------------------------

    async def _get(self, conn: AsyncConnection, task_id: int) -> Task:
        row = (await conn.execute(select(TaskRow).where(TaskRow.id == task_id))).first()
        if row is None:
            raise TaskNotFound(task_id)
        return row_to_task(row)

    async def get_task(self, task_id: int) -> Task:
        async with self._read() as conn:
            return await self._get(conn, task_id)

    async def find_task(self, task_id: int) -> Task | None:
        try:
            return await self.get_task(task_id)
        except TaskNotFound:
            return None

    async def restarted_as(self, task_id: int) -> list[int]:
        """Ids of the runs restarted from this task, oldest first."""
        async with self._read() as conn:
            rows = await conn.execute(select(TaskRow.id).where(
                TaskRow.restarted_from_id == task_id).order_by(TaskRow.id))
            return [r.id for r in rows]

    async def list_tasks(self, filters: ListFilters | None = None, sort: Sort | None = None,
                         page: int | PageRequest = 1, page_size: int | None = None
                         ) -> TaskPage:
        """One page of the list: a page number (read from the nearer end), or a
        ``PageRequest`` — first, last, or ◀/▶ from a page's anchors."""
        filters = filters or ListFilters()
        sort = sort or Sort()
        size = page_size or self.settings.ui.page_size
        async with self._read() as conn:
            return await listing.list_tasks(conn, filters, sort, page, size,
                                            tz=self.tz, now=self.clock())

    async def provider_options(self) -> list[ProviderChoice]:
        """"Default" plus every provider/model pair some task ran on (from the data)."""
        async with self._read() as conn:
            return await listing.provider_options(conn)

    async def list_events(self, task_id: int, offset: int = 0, limit: int = 50,
                          kinds: Sequence[EventKind] | None = None) -> EventPage:
        async with self._read() as conn:
            await self._get(conn, task_id)
            where = [TaskEventRow.task_id == task_id]
            if kinds is not None:
                where.append(TaskEventRow.kind.in_([k.value for k in kinds]))
            total = (await conn.execute(select(func.count()).where(*where))).scalar_one()
            rows = await conn.execute(select(TaskEventRow).where(*where)
                                      .order_by(TaskEventRow.seq).offset(offset).limit(limit))
            return EventPage([row_to_event(r) for r in rows], total, offset)

    async def running_tasks(self, limit: int = 1000) -> list[Task]:
        """Unfinished tasks (running or paused), oldest first."""
        async with self._read() as conn:
            rows = await conn.execute(
                select(TaskRow).where(TaskRow.finished_at.is_(None),
                                      TaskRow.status.in_([s.value for s in ACTIVE_STATUSES]))
                .order_by(TaskRow.id).limit(limit))
            return [row_to_task(r) for r in rows]

    # --- events and transitions ---------------------------------------------------------

    async def _append(self, conn: AsyncConnection, task_id: int, kind: EventKind,
                      payload: dict[str, Any], *, only_active: bool,
                      task_values: dict[str, Any] | None = None) -> TaskEvent | None:
        """Append one event, numbering it on the task row (which also serialises writers).

        With ``only_active`` the event is refused (None) once the task has ended, so a
        worker that lost a race with a kill writes nothing after the kill.
        """
        now = self.clock()
        stmt = (update(TaskRow).where(TaskRow.id == task_id)
                .values(event_count=TaskRow.event_count + 1, last_event_at=now,
                        **(task_values or {}))
                .returning(TaskRow.event_count))
        if only_active:
            stmt = stmt.where(TaskRow.status.in_([s.value for s in ACTIVE_STATUSES]))
        seq = (await conn.execute(stmt)).scalar_one_or_none()
        if seq is None:
            return None
        row = (await conn.execute(insert(TaskEventRow).values(
            task_id=task_id, seq=seq, at=now, kind=kind.value, payload=clean(payload),
            txid=self._txid).returning(TaskEventRow))).one()
        return row_to_event(row)

    async def append_event(self, task_id: int, kind: EventKind, payload: dict[str, Any], *,
                           prompt_tokens: int = 0, completion_tokens: int = 0,
                           cost_usd: float | None = None) -> TaskEvent | None:
        """Record what a running task did; None if the task has ended meanwhile.

        Token usage and a provider-reported cost ride along in the same transaction.
        """
        task_values: dict[str, Any] = {}
        if kind is EventKind.TOOL_CALL:
            task_values["tool_call_count"] = TaskRow.tool_call_count + 1
        async with self._write() as conn:
            if prompt_tokens or completion_tokens or cost_usd is not None:
                task_values.update(await self._usage_values(
                    conn, task_id, prompt_tokens, completion_tokens, cost_usd))
            event = await self._append(conn, task_id, kind, payload, only_active=True,
                                       task_values=task_values)
        if event is not None:
            self.bus.publish(TaskChange(task_id, None, event_kind=kind))
        return event

    async def _usage_values(self, conn: AsyncConnection, task_id: int, prompt: int,
                            completion: int, cost: float | None) -> dict[str, Any]:
        if prompt < 0 or completion < 0:
            raise StoreError("token counts cannot be negative")
        model = (await conn.execute(select(TaskRow.model).where(TaskRow.id == task_id))
                 ).scalar_one_or_none()
        price = self.settings.price_for(model)
        if cost is None and price is not None:
            cost = estimate_cost(price.input_per_million, price.output_per_million,
                                 prompt, completion)
        values: dict[str, Any] = dict(
            prompt_tokens=TaskRow.prompt_tokens + prompt,
            completion_tokens=TaskRow.completion_tokens + completion,
            total_tokens=TaskRow.total_tokens + prompt + completion,
        )
        if cost is not None:
            values["cost_usd"] = func.coalesce(TaskRow.cost_usd, 0.0) + cost
        return values

    async def start_task(self, task_id: int, worker_id: str | None = None) -> Task | None:
        """Mark a new task as started (it is already ``running``); None if it was not new."""
        now = self.clock()
        async with self._write() as conn:
            row = (await conn.execute(
                update(TaskRow).where(TaskRow.id == task_id, TaskRow.started_at.is_(None),
                                      TaskRow.status == TaskStatus.RUNNING.value)
                .values(started_at=now, claimed_by=worker_id).returning(TaskRow))).first()
            if row is None:
                return None
            await self._append(conn, task_id, EventKind.STATUS_CHANGE,
                               {"old": None, "new": TaskStatus.RUNNING.value,
                                "message": "Task started"}, only_active=True)
        return row_to_task(row)

    async def _transition(self, conn: AsyncConnection, task_id: int,
                          allowed: Sequence[TaskStatus], new: TaskStatus,
                          values: dict[str, Any], message: str,
                          refuse: Callable[[TaskStatus], str]) -> Task:
        """Compare-and-set the status, keep counts in step, log the status change."""
        for _ in range(3):
            current = await self._get(conn, task_id)
            if current.status not in allowed:
                raise InvalidTransition(refuse(current.status))
            now = self.clock()
            set_values = dict(values, status=new.value)
            if new.is_final:
                set_values["finished_at"] = now
                if current.started_at is not None:
                    set_values["duration_ms"] = int(
                        (now - current.started_at).total_seconds() * 1000)
            row = (await conn.execute(
                update(TaskRow).where(TaskRow.id == task_id,
                                      TaskRow.status == current.status.value)
                .values(**set_values).returning(TaskRow))).first()
            if row is None:
                continue  # lost a race (PostgreSQL); look again
            await self._bump_count(conn, row, current.status.value, -1)
            await self._bump_count(conn, row, new.value, +1)
            await self._append(conn, task_id, EventKind.STATUS_CHANGE,
                               {"old": current.status.value, "new": new.value,
                                "message": message}, only_active=False)
            return row_to_task(row)
        raise StoreError(f"Task #{task_id} kept changing; try again.")

    async def _end_events(self, conn: AsyncConnection, task: Task, final: FinalMessage,
                          text: str | None) -> None:
        await self._append(conn, task.id, EventKind.FINAL,
                           {"status": final.result.value, "summary": final.summary,
                            "text": text, "formatted": final.formatted}, only_active=False)
        if final.result is ResultStatus.SILENT:
            return
        now = self.clock()
        minutes = (task.duration_seconds(now) or 0.0) / 60
        block = injection_block(task_id=task.id, task_name=task.name, status=final.result,
                                trigger=task.trigger, duration_minutes=minutes,
                                tokens_used=task.total_tokens, summary=final.summary)
        await self._append(conn, task.id, EventKind.INJECTION,
                           {"parent_session": task.parent_session, "text": block,
                            "status": final.result.value}, only_active=False)

    async def finish_task(self, task_id: int, final_text: str) -> Task:
        """End (or pause) a running task from the agent's final message."""
        final_text = clean(final_text)
        final = parse_final_message(final_text)
        new = final.task_status
        values: dict[str, Any] = {"result_status": final.result.value,
                                  "summary": final.summary}
        if final.result is ResultStatus.FAILED:
            values["error"] = final.summary
        message = {ResultStatus.SILENT: "Silent completion — nothing to report",
                   ResultStatus.QUESTION: "Waiting for an answer"}.get(
                       final.result, f"Task {new.value}")
        async with self._write() as conn:
            task = await self._transition(conn, task_id, [TaskStatus.RUNNING], new, values,
                                          message, lambda s: f"Task #{task_id} is {s}.")
            await self._end_events(conn, task, final, final_text)
            task = await self._get(conn, task_id)
        self.bus.publish(TaskChange(task_id, new))
        return task

    async def fail_task(self, task_id: int, error: str, *, summary: str | None = None,
                        allowed: Sequence[TaskStatus] = ACTIVE_STATUSES) -> Task | None:
        """Fail an unfinished task for a runtime reason (max duration, loop, timeout).

        Returns None when the task had already ended — the normal "too late" case.
        """
        error, summary = clean(error), clean(summary)
        final = FinalMessage(ResultStatus.FAILED, summary or error, formatted=True)
        values = {"result_status": ResultStatus.FAILED.value, "summary": final.summary,
                  "error": error}
        try:
            async with self._write() as conn:
                task = await self._transition(conn, task_id, allowed, TaskStatus.FAILED,
                                              values, error, lambda s: "")
                await self._end_events(conn, task, final, None)
                task = await self._get(conn, task_id)
        except InvalidTransition:
            return None
        self.bus.publish(TaskChange(task_id, TaskStatus.FAILED))
        return task

    async def kill_task(self, task_id: int, by: str, where: str = "Telegram") -> Task:
        """Abort a running task: failed, "Killed by <who> from <where>", injection sent."""
        by = clean(by)
        text = f"Killed by {by} from {where}"
        final = FinalMessage(ResultStatus.FAILED, text, formatted=True)
        values = {"result_status": ResultStatus.FAILED.value, "summary": text,
                  "error": text, "killed_by": by}
        async with self._write() as conn:
            task = await self._transition(conn, task_id, [TaskStatus.RUNNING],
                                          TaskStatus.FAILED, values, text,
                                          kill_refused_message)
            await self._end_events(conn, task, final, None)
            task = await self._get(conn, task_id)
        self.bus.publish(TaskChange(task_id, TaskStatus.FAILED, killed=True))
        return task

    async def resume_task(self, task_id: int, answer: str, by: str) -> Task:
        """Answer a paused task's question; it runs again."""
        if not answer.strip():
            raise StoreError("The answer must not be empty.")
        answer, by = clean(answer), clean(by)
        async with self._write() as conn:
            task = await self._transition(
                conn, task_id, [TaskStatus.PAUSED], TaskStatus.RUNNING,
                {"result_status": None}, f"Answered by {by}",
                lambda s: f"Task #{task_id} is {s}, not paused: there is no question to answer.")
            await self._append(conn, task_id, EventKind.ANSWER, {"text": answer, "by": by},
                               only_active=False)
            task = await self._get(conn, task_id)
        self.bus.publish(TaskChange(task_id, TaskStatus.RUNNING))
        return task

    # --- change feed --------------------------------------------------------------------

    async def read_changes(self, cursor: str = "", limit: int = 500) -> FeedBatch:
        """Events after ``cursor``, in an order that never skips a late-committing writer."""
        async with self._read() as conn:
            return await feed.read_changes(conn, cursor, limit)

    async def feed_head(self) -> str:
        """A cursor at the current end of the feed (what a new reader starts from)."""
        async with self._read() as conn:
            return await feed.head(conn)

    # --- counts per day and facet -------------------------------------------------------

    async def _bump_count(self, conn: AsyncConnection, row: Any, status: str, delta: int) -> None:
        await counts.bump(conn, self.tz, row, status, delta)

    async def _ensure_counts(self) -> None:
        """Rebuild the per-day counts if they were kept for another timezone."""
        async with self._read() as conn:
            current = await counts.kept_for(conn)
        if current != str(self.tz):
            await self.rebuild_counts()

    async def rebuild_counts(self) -> None:
        async with self._write() as conn:
            await counts.rebuild(conn, self.tz)
