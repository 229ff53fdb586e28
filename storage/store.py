"""The task store: the one public API through which the bot, the runtime, push and the
seeder read and change tasks.

:class:`TaskStore` answers questions about tasks in domain words and performs the
transitions (through ``storage.transitions``, where the rules of a transition live). What
belongs to one part of taskops hangs off it as a sub-API over the same database:

* ``store.console`` — console views, prompts, state rows and the audit log (the bot);
* ``store.push`` — subscriptions and their delivery cursors (the bot's push side);
* ``store.work`` — claims, leases and recovery (the worker);
* ``store.cronjobs`` — schedules and their firings (the triggers, ``/cronjobs``);
* ``store.cluster`` — the processes sharing the store: who is connected, the fenced
  leader election, ``taskops status``;
* ``store.retention`` — pruning old tasks and events.

Nothing outside ``storage`` sees a connection, a row or SQL.

It is a little over 400 lines because it is the whole public surface in one place; the
work itself is in the modules it calls (transitions, list_query, facets, feed, journal).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from taskops import metrics, redaction
from taskops.config import Settings
from taskops.storage import counts, facets, feed, listing, notify, rules, transitions, usage
from taskops.storage.cluster import ClusterStore
from taskops.storage.console import ConsoleStore
from taskops.storage.cronjobs import CronStore
from taskops.storage.db import (
    SQLITE_BUSY_TIMEOUT_MS,
    Database,
    Engines,
    create_engines,
    migrate,
    utcnow,
)
from taskops.storage.domain import (
    ACTIVE_STATUSES,
    NO_USAGE,
    EventKind,
    EventPage,
    Fence,
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
    Usage,
    kill_refused_message,
    restart_refused_message,
)
from taskops.storage.feed import FeedBatch
from taskops.storage.health import StoreHealth
from taskops.storage.journal import Journal
from taskops.storage.leader import (
    DeferringLock,
    LeaderLock,
    leader_lock,
)
from taskops.storage.models import TaskEventRow, TaskRow
from taskops.storage.push_store import PushStore
from taskops.storage.retention import RetentionStore
from taskops.storage.rows import row_to_event, row_to_task
from taskops.storage.signals import ChangeBus, TaskChange
from taskops.storage.usage import DailyCost, UsageSummary
from taskops.storage.work import WorkStore


class TaskStore:
    def __init__(self, engines: Engines, settings: Settings,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db = Database(engines, settings, clock)
        self._announcer = notify.KillAnnouncer(self.db)
        self.console = ConsoleStore(self.db)
        self.push = PushStore(self.db, self.console.cache)
        self.work = WorkStore(self.db)
        self.cronjobs = CronStore(self.db)
        #: the writer of running tasks' events (group commit; storage.journal)
        self.journal = Journal(self.db)
        #: the processes sharing the database: members, leadership, status
        self.cluster = ClusterStore(self.db)
        #: pruning old tasks and events (the leader's job)
        self.retention = RetentionStore(self.db)

    @classmethod
    async def open(cls, settings: Settings, *, run_migrations: bool = False,
                   clock: Callable[[], datetime] = utcnow,
                   sqlite_busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> TaskStore:
        # Text is redacted as it is stored (rules.clean_text): the config's secrets first.
        redaction.install(settings.secret_values())
        if run_migrations:
            await migrate(settings.database.url)
        store = cls(create_engines(settings.database.url, echo=settings.database.echo,
                                   sqlite_busy_timeout_ms=sqlite_busy_timeout_ms),
                    settings, clock)
        await store._ensure_counts()
        return store

    async def close(self) -> None:
        await self.journal.close()
        await self._announcer.close()
        await self.db.engines.dispose()

    # --- what every caller may read -------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self.db.settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        """Replaced as a whole (tests, and a reload of the config file)."""
        self.db.settings = settings

    @property
    def clock(self) -> Callable[[], datetime]:
        """The store's clock (aware UTC); tests replace it to control time."""
        return self.db.clock

    @property
    def tz(self) -> ZoneInfo:
        """``[ui] timezone``: days of the date filters and of the counts."""
        return self.db.tz

    @property
    def bus(self) -> ChangeBus:
        """In-process wake-ups on every change (a missed one costs latency only)."""
        return self.db.bus

    @property
    def engines(self) -> Engines:
        return self.db.engines

    @property
    def health(self) -> StoreHealth:
        """Whether the database answers, and when it last did (storage.health)."""
        return self.db.health

    def leader(self, name: str, *, defer_to: str | None = None) -> LeaderLock:
        """The lock that makes one process among those sharing the store lead ``name``;
        with ``defer_to``, only while no process leads that election (``DeferringLock``)."""
        lock = leader_lock(self.db, name)
        return DeferringLock(self.db, lock, defer_to) if defer_to else lock

    # --- creating -------------------------------------------------------------------------

    async def create_task(self, draft: TaskDraft) -> Task:
        values = transitions.task_values(self.db, draft, self.clock())
        async with self.db.write() as conn:
            task = await transitions.insert_task(self.db, conn, values)
        self.bus.publish(TaskChange(task.id, TaskStatus.RUNNING, created=True))
        return task

    async def restart_task(self, task_id: int, edits: RestartEdits | None = None, *,
                           key: str | None = None) -> Task:
        """Create a new user-triggered run of a finished task; the original is untouched.

        With a ``key``, a second call with the same key returns the first call's task.
        """
        edits = edits or RestartEdits()
        try:
            async with self.db.write() as conn:
                if key is not None:
                    existing = await self._task_by_restart_key(conn, key)
                    if existing is not None:
                        return existing
                original = await transitions.get(conn, task_id)
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
                values = transitions.task_values(self.db, draft, self.clock())
                values.update(restarted_from_id=original.id, restart_key=key)
                task = await transitions.insert_task(self.db, conn, values)
        except IntegrityError:
            # Another caller inserted the same key between our check and insert (PostgreSQL).
            if key is None:
                raise
            async with self.db.read() as conn:
                existing = await self._task_by_restart_key(conn, key)
            if existing is None:
                raise
            return existing
        self.bus.publish(TaskChange(task.id, TaskStatus.RUNNING, created=True))
        return task

    async def _task_by_restart_key(self, conn: AsyncConnection, key: str) -> Task | None:
        row = (await conn.execute(select(TaskRow).where(TaskRow.restart_key == key))).first()
        return row_to_task(row) if row else None

    # --- reading --------------------------------------------------------------------------

    async def get_task(self, task_id: int) -> Task:
        async with self.db.read() as conn:
            return await transitions.get(conn, task_id)

    # --- health and metrics (taskops.monitoring) --------------------------------------------

    async def ping(self) -> None:
        """One cheap read of a table (SQLite answers ``SELECT 1`` without its file): raises
        when the database does not answer."""
        async with self.db.read() as conn:
            await conn.execute(select(literal(1)).select_from(TaskRow).limit(1))

    async def status_counts(self) -> dict[TaskStatus, int]:
        """Tasks per status, exact, from the counts the list keeps (no scan)."""
        async with self.db.read() as conn:
            found = await counts.by_status(conn)
        return {status: found.get(status.value, 0) for status in TaskStatus}

    async def usage(self, since: datetime, until: datetime) -> UsageSummary:
        """The tasks created in [since, until): by status, failures by name, tokens and
        cost by provider (the shift summary, ``/usage``)."""
        async with self.db.read() as conn:
            return await usage.summary(conn, since, until)

    async def daily_cost(self, last_day: date, days: int) -> DailyCost:
        """Cost per provider per local day (``[ui] timezone``), ``days`` days to
        ``last_day``."""
        async with self.db.read() as conn:
            return await usage.daily_cost(conn, last_day, days, self.tz)

    async def feed_held_back_since(self) -> datetime | None:
        async with self.db.read() as conn:
            return await feed.held_back_since(conn)

    async def first_change_after(self, cursor: str) -> datetime | None:
        async with self.db.read() as conn:
            return await feed.first_after(conn, cursor)

    async def find_task(self, task_id: int) -> Task | None:
        try:
            return await self.get_task(task_id)
        except TaskNotFound:
            return None

    async def tasks_by_ids(self, ids: Iterable[int]) -> dict[int, Task]:
        wanted = sorted(set(ids))
        found: dict[int, Task] = {}
        async with self.db.read() as conn:
            for i in range(0, len(wanted), 500):
                rows = await conn.execute(select(TaskRow).where(TaskRow.id.in_(wanted[i:i + 500])))
                found.update((r.id, row_to_task(r)) for r in rows)
        return found

    async def restarted_as(self, task_id: int) -> list[int]:
        """Ids of the runs restarted from this task, oldest first."""
        async with self.db.read() as conn:
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
        now = self.clock()
        return await self.db.run_read(lambda conn: listing.list_tasks(
            conn, filters, sort, page, size, tz=self.tz, now=now))

    async def provider_options(self, filters: ListFilters | None = None
                               ) -> list[ProviderChoice]:
        """The provider menu: "Default" and the provider/model pairs that occur among the
        tasks matching the other filters (status, trigger, dates); all of them without."""
        async with self.db.read() as conn:
            return await facets.provider_options(conn, filters)

    async def list_events(self, task_id: int, offset: int = 0, limit: int = 50,
                          kinds: Sequence[EventKind] | None = None) -> EventPage:
        """A page of the task's timeline, in order. Journal-only records (a tool call's
        start, whose ``tool_call`` follows) are left out unless ``kinds`` asks for them."""
        async with self.db.read() as conn:
            await transitions.get(conn, task_id)
            where = [TaskEventRow.task_id == task_id]
            if kinds is not None:
                where.append(TaskEventRow.kind.in_([k.value for k in kinds]))
            else:
                where.append(TaskEventRow.kind != EventKind.TOOL_START.value)
            total = (await conn.execute(select(func.count()).where(*where))).scalar_one()
            rows = await conn.execute(select(TaskEventRow).where(*where)
                                      .order_by(TaskEventRow.seq).offset(offset).limit(limit))
            return EventPage([row_to_event(r) for r in rows], total, offset)

    async def task_journal(self, task_id: int) -> tuple[TaskEvent, ...]:
        """Every event of the task in order, journal-only records included: what a run
        taken up again continues from."""
        async with self.db.read() as conn:
            rows = await conn.execute(select(TaskEventRow).where(TaskEventRow.task_id == task_id)
                                      .order_by(TaskEventRow.seq))
            return tuple(row_to_event(r) for r in rows)

    async def running_tasks(self, limit: int = 1000) -> list[Task]:
        """Unfinished tasks (running or paused), oldest first."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(TaskRow).where(TaskRow.finished_at.is_(None),
                                      TaskRow.status.in_([s.value for s in ACTIVE_STATUSES]))
                .order_by(TaskRow.id).limit(limit))
            return [row_to_task(r) for r in rows]

    # --- events and transitions -----------------------------------------------------------

    async def append_event(self, task_id: int, kind: EventKind, payload: dict[str, Any], *,
                           prompt_tokens: int = 0, completion_tokens: int = 0,
                           cost_usd: float | None = None,
                           fence: Fence | None = None) -> TaskEvent | None:
        """Record what a running task did; None if the task has ended meanwhile.

        Returns once the event is committed (it survives a crash from then on). Token
        usage and a provider-reported cost ride along in the same transaction, which
        other tasks' events share (storage.journal). Transient store errors are retried
        until the store is back; cancelling the call drops an event not yet written.
        A run passes its ``fence``: :class:`ClaimLost` (nothing written) once another
        worker holds the task.
        """
        event = await self.journal.append(task_id, kind, payload, prompt_tokens=prompt_tokens,
                                          completion_tokens=completion_tokens,
                                          cost_usd=cost_usd, fence=fence)
        if event is not None:
            self.bus.publish(TaskChange(task_id, None, event_kind=kind))
        return event

    async def start_task(self, task_id: int, worker_id: str | None = None) -> Task | None:
        """Mark a new task as started (it is already ``running``); None if it was not new."""
        async with self.db.write() as conn:
            started = await transitions.start(self.db, conn, [task_id], worker_id=worker_id,
                                              lease_seconds=None)
        return row_to_task(started[0]) if started else None

    async def finish_task(self, task_id: int, final_text: str,
                          usage: Usage = NO_USAGE, *, fence: Fence | None = None,
                          patience: float | None = None) -> Task:
        """End (or pause) a running task from the agent's final message.

        ``usage`` — the tokens of the turn that produced it — is counted in the same
        transaction, so a crash can neither lose them nor count them twice. With the run's
        ``fence``, :class:`ClaimLost` if another worker holds the task now.

        Written by the journal, in the transaction of its next batch (other tasks' events
        and endings share the commit and the day counters' update); a store outage is
        waited out for ``patience`` seconds (default ``[runtime] store_patience_seconds``;
        0: not at all), then :class:`StoreUnavailable` (nothing written).
        """
        final_text = rules.clean(final_text)
        final = rules.parse_final_message(final_text)
        new = final.task_status
        values: dict[str, Any] = {"result_status": final.result.value,
                                  "summary": final.summary}
        if final.result is ResultStatus.FAILED:
            values["error"] = final.summary

        async def end(conn: AsyncConnection, moves: list[counts.Move]) -> Task:
            return await transitions.transition(
                self.db, conn, task_id, [TaskStatus.RUNNING], new, values,
                rules.status_message(final), lambda s: f"Task #{task_id} is {s}.",
                ending=(final, final_text), usage=usage, fence=fence, moves=moves)

        task = await self.journal.end(task_id, end, patience=self._patience(patience))
        self.bus.publish(TaskChange(task_id, new))
        return task

    def _patience(self, given: float | None) -> float:
        return self.settings.runtime.store_patience_seconds if given is None else given

    async def fail_task(self, task_id: int, error: str, *, summary: str | None = None,
                        allowed: Sequence[TaskStatus] = ACTIVE_STATUSES,
                        usage: Usage = NO_USAGE, fence: Fence | None = None,
                        patience: float | None = None) -> Task | None:
        """Fail an unfinished task for a runtime reason (max duration, loop, timeout).

        Returns None when the task had already ended — the normal "too late" case. With a
        run's ``fence``, :class:`ClaimLost` if another worker holds the task now. Written
        by the journal, as :meth:`finish_task`.
        """
        async def end(conn: AsyncConnection, moves: list[counts.Move]) -> Task:
            return await self._fail_in(conn, task_id, error, summary, allowed, usage, fence,
                                       moves)

        try:
            task = await self.journal.end(task_id, end, patience=self._patience(patience))
        except InvalidTransition:
            return None
        self.bus.publish(TaskChange(task_id, TaskStatus.FAILED))
        return task

    async def _fail_in(self, conn: AsyncConnection, task_id: int, error: str,
                       summary: str | None, allowed: Sequence[TaskStatus],
                       usage: Usage = NO_USAGE, fence: Fence | None = None,
                       moves: list[counts.Move] | None = None) -> Task:
        error, summary = rules.clean(error), rules.clean(summary)
        final = rules.runtime_failure(summary or error)
        values = {"result_status": ResultStatus.FAILED.value, "summary": final.summary,
                  "error": error}
        return await transitions.transition(self.db, conn, task_id, allowed, TaskStatus.FAILED,
                                            values, error, lambda s: "", ending=(final, None),
                                            usage=usage, fence=fence, moves=moves)

    async def kill_task(self, task_id: int, by: str, where: str = "Telegram") -> Task:
        """Abort a running task: failed, "Killed by <who> from <where>", injection sent."""
        by = rules.clean(by)
        text = f"Killed by {by} from {where}"
        values = {"result_status": ResultStatus.FAILED.value, "summary": text,
                  "error": text, "killed_by": by}
        with metrics.kill_timer():
            # The owner stops its run on this, not on the commit below (storage.notify).
            self._announcer.announce_soon(task_id)
            async with self.db.write() as conn:
                task = await transitions.transition(
                    self.db, conn, task_id, [TaskStatus.RUNNING], TaskStatus.FAILED, values,
                    text, kill_refused_message, ending=(rules.runtime_failure(text), None))
                # Other processes' workers hear of it at commit (LISTEN/NOTIFY, PostgreSQL).
                await notify.notify_kill(self.db, conn, task_id)
        self.bus.publish(TaskChange(task_id, TaskStatus.FAILED, killed=True))
        return task

    async def resume_task(self, task_id: int, answer: str, by: str) -> Task:
        """Answer a paused task's question; it runs again.

        Max duration is wall-clock from the start (platform-facts.md): an answer that comes
        after the task's deadline fails it at once ("Max duration exceeded") — the returned
        task is then ``failed``.
        """
        if not answer.strip():
            raise StoreError("The answer must not be empty.")
        answer, by = rules.clean(answer), rules.clean(by)
        async with self.db.write() as conn:
            task = await transitions.get(conn, task_id)
            late = task.status is TaskStatus.PAUSED and rules.past_deadline(
                task.started_at, task.max_duration_minutes, self.clock())
            if late:
                task = await self._fail_in(conn, task_id, rules.MAX_DURATION_MESSAGE, None,
                                           [TaskStatus.PAUSED])
            else:
                task = await transitions.transition(
                    self.db, conn, task_id, [TaskStatus.PAUSED], TaskStatus.RUNNING,
                    {"result_status": None}, f"Answered by {by}",
                    lambda s: f"Task #{task_id} is {s}, not paused: there is no question to "
                              "answer.",
                    then=[(EventKind.ANSWER, {"text": answer, "by": by})])
        self.bus.publish(TaskChange(task_id, task.status))
        return task

    # --- change feed ----------------------------------------------------------------------

    async def read_changes(self, cursor: str = "", limit: int = 500) -> FeedBatch:
        """Events after ``cursor``, in an order that never skips a late-committing writer."""
        async with self.db.read() as conn:
            return await feed.read_changes(conn, cursor, limit)

    async def feed_head(self) -> str:
        """A cursor at the current end of the feed (what a new reader starts from)."""
        async with self.db.read() as conn:
            return await feed.head(conn)

    # --- counts per day and facet ---------------------------------------------------------

    async def _ensure_counts(self) -> None:
        """Rebuild the per-day counts if they were kept for another timezone."""
        async with self.db.read() as conn:
            current = await counts.kept_for(conn)
        if current != str(self.tz):
            await self.rebuild_counts()

    async def rebuild_counts(self) -> None:
        async with self.db.write() as conn:
            await counts.rebuild(conn, self.tz)
