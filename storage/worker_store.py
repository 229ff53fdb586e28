"""The worker's and the triggers' queries: claims, leases, recovery, cronjob runs.

These are module-level functions over a :class:`TaskStore` so the runtime asks the store
questions in domain words without growing the store class itself. Every write is a
compare-and-set, so several workers (and a restarted trigger leader) can share one
database without running a task twice or firing a schedule twice.

Claims: a new task is claimed by setting ``started_at`` (and logging "Task started"); an
answered (or otherwise unowned) running task by setting ``claimed_by``. The claim holds
until ``lease_until``; the worker renews it while it runs the task and releases it when
the task pauses, so whoever sees the answer first can continue the run.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter
from sqlalchemy import and_, func, insert, not_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from taskops.storage.domain import EventKind, Task, TaskDraft, TaskStatus
from taskops.storage.models import CronjobRow, MetaRow, TaskEventRow, TaskRow
from taskops.storage.rows import row_to_task
from taskops.storage.signals import TaskChange
from taskops.storage.store import TaskStore

#: the status_change payload of a claim; the same text ``TaskStore.start_task`` writes
_STARTED = {"old": None, "new": TaskStatus.RUNNING.value, "message": "Task started"}
_UNFINISHED = and_(TaskRow.finished_at.is_(None), TaskRow.status == TaskStatus.RUNNING.value)


# --- claims and leases ----------------------------------------------------------------


async def _candidates(store: TaskStore, where: list[Any]) -> bool:
    """Whether any row matches, read without a write lock: SQLite has one writer at a
    time, and an idle worker must not queue behind running tasks every tick."""
    async with store._read() as conn:
        return (await conn.execute(select(TaskRow.id).where(*where).limit(1))).first() is not None


def _new_where() -> list[Any]:
    return [TaskRow.started_at.is_(None), TaskRow.status == TaskStatus.RUNNING.value]


async def claim_new_tasks(store: TaskStore, worker_id: str, limit: int,
                          lease_seconds: float) -> list[Task]:
    """Start up to ``limit`` never-started tasks, oldest first, under this worker's lease."""
    if limit < 1 or not await _candidates(store, _new_where()):
        return []
    now = store.clock()
    async with store._write() as conn:
        ids = list((await conn.execute(
            select(TaskRow.id).where(*_new_where()).order_by(TaskRow.id).limit(limit)
            .with_for_update(skip_locked=True))).scalars())
        if not ids:
            return []
        rows = list(await conn.execute(
            update(TaskRow).where(TaskRow.id.in_(ids), *_new_where())
            .values(started_at=now, claimed_by=worker_id,
                    lease_until=now + timedelta(seconds=lease_seconds))
            .returning(TaskRow)))
        for row in rows:
            await store._append(conn, row.id, EventKind.STATUS_CHANGE, dict(_STARTED),
                                only_active=True)
    for row in rows:
        store.bus.publish(TaskChange(row.id, None, event_kind=EventKind.STATUS_CHANGE))
    return sorted((row_to_task(r) for r in rows), key=lambda t: t.id)


def _unowned_where() -> list[Any]:
    return [_UNFINISHED, TaskRow.started_at.is_not(None), TaskRow.claimed_by.is_(None)]


async def claim_unowned_tasks(store: TaskStore, worker_id: str, limit: int,
                              lease_seconds: float) -> list[Task]:
    """Claim started, running tasks nobody holds: answered questions, mostly."""
    if limit < 1 or not await _candidates(store, _unowned_where()):
        return []
    now = store.clock()
    async with store._write() as conn:
        ids = list((await conn.execute(
            select(TaskRow.id).where(*_unowned_where()).order_by(TaskRow.id).limit(limit)
            .with_for_update(skip_locked=True))).scalars())
        if not ids:
            return []
        rows = list(await conn.execute(
            update(TaskRow).where(TaskRow.id.in_(ids), *_unowned_where())
            .values(claimed_by=worker_id, lease_until=now + timedelta(seconds=lease_seconds))
            .returning(TaskRow)))
    return sorted((row_to_task(r) for r in rows), key=lambda t: t.id)


async def renew_leases(store: TaskStore, worker_id: str, task_ids: Collection[int],
                       lease_seconds: float) -> None:
    if not task_ids:
        return
    until = store.clock() + timedelta(seconds=lease_seconds)
    async with store._write() as conn:
        await conn.execute(update(TaskRow).where(
            TaskRow.id.in_(list(task_ids)), TaskRow.claimed_by == worker_id,
            TaskRow.status == TaskStatus.RUNNING.value).values(lease_until=until))


async def release_tasks(store: TaskStore, worker_id: str, task_ids: Collection[int]) -> None:
    """Give up this worker's claim (paused, or the worker is stopping); history stays."""
    if not task_ids:
        return
    async with store._write() as conn:
        await conn.execute(update(TaskRow).where(
            TaskRow.id.in_(list(task_ids)), TaskRow.claimed_by == worker_id)
            .values(claimed_by=None, lease_until=None))


@dataclass(frozen=True)
class Holding:
    """What the store says about a task a worker believes it is running."""

    status: TaskStatus
    claimed_by: str | None
    killed_by: str | None


async def holdings(store: TaskStore, task_ids: Collection[int]) -> dict[int, Holding]:
    if not task_ids:
        return {}
    async with store._read() as conn:
        rows = await conn.execute(select(TaskRow.id, TaskRow.status, TaskRow.claimed_by,
                                         TaskRow.killed_by)
                                  .where(TaskRow.id.in_(list(task_ids))))
        return {r.id: Holding(TaskStatus(r.status), r.claimed_by, r.killed_by) for r in rows}


async def take_over_expired(store: TaskStore, worker_id: str, own_ids: Collection[int],
                            lease_seconds: float) -> list[int]:
    """Claim running tasks whose worker stopped renewing its lease; returns their ids.

    Taking the claim first (rather than failing straight away) makes a late renewal by
    the old worker miss, so that worker notices it lost the task and stops it.
    A claim without a lease (set by ``start_task`` outside a worker) expires one lease
    length after the start.
    """
    now = store.clock()
    expired = or_(TaskRow.lease_until < now,
                  and_(TaskRow.lease_until.is_(None),
                       TaskRow.started_at < now - timedelta(seconds=lease_seconds)))
    mine = and_(TaskRow.claimed_by == worker_id, TaskRow.id.in_(list(own_ids) or [-1]))
    where = [_UNFINISHED, TaskRow.claimed_by.is_not(None), expired, not_(mine)]
    if not await _candidates(store, where):
        return []
    async with store._write() as conn:
        ids = list((await conn.execute(
            select(TaskRow.id).where(*where)
            .order_by(TaskRow.id).with_for_update(skip_locked=True))).scalars())
        if not ids:
            return []
        ids = list((await conn.execute(
            update(TaskRow).where(TaskRow.id.in_(ids), *where)
            .values(claimed_by=worker_id, lease_until=now + timedelta(seconds=lease_seconds))
            .returning(TaskRow.id))).scalars())
    return ids


async def paused_since(store: TaskStore) -> dict[int, datetime]:
    """Paused tasks and when they paused (their latest ``final`` event)."""
    last_final = (select(func.max(TaskEventRow.at))
                  .where(TaskEventRow.task_id == TaskRow.id,
                         TaskEventRow.kind == EventKind.FINAL.value)
                  .scalar_subquery())
    async with store._read() as conn:
        rows = await conn.execute(
            select(TaskRow.id, last_final.label("paused_at"), TaskRow.last_event_at,
                   TaskRow.created_at)
            .where(TaskRow.finished_at.is_(None), TaskRow.status == TaskStatus.PAUSED.value))
        # The column type is lost in the subquery on SQLite; UTCDateTime applies only
        # to the plain columns, so normalise here.
        out: dict[int, datetime] = {}
        for r in rows:
            at = r.paused_at or r.last_event_at or r.created_at
            if isinstance(at, str):
                at = datetime.fromisoformat(at)
            out[r.id] = at if at.tzinfo else at.replace(tzinfo=UTC)
        return out


async def add_usage(store: TaskStore, task_id: int, prompt_tokens: int,
                    completion_tokens: int, cost_usd: float | None = None) -> bool:
    """Count tokens that came with no event to carry them (a final provider turn).

    False when the task has already ended; the store then keeps its counts as they are.
    """
    if not (prompt_tokens or completion_tokens or cost_usd is not None):
        return True
    async with store._write() as conn:
        values = await store._usage_values(conn, task_id, prompt_tokens, completion_tokens,
                                           cost_usd)
        result = await conn.execute(update(TaskRow).where(
            TaskRow.id == task_id, TaskRow.status == TaskStatus.RUNNING.value).values(**values))
        return bool(result.rowcount)


# --- triggers ---------------------------------------------------------------------------


def cron_next(schedule: str, timezone: str, after: datetime) -> datetime:
    """The first firing strictly after ``after``, in UTC; cron's Sunday is 0 or 7.

    croniter follows cron itself (day-of-week 0 = Sunday; day-of-month and day-of-week
    both restricted means either matches) — APScheduler's CronTrigger does neither.
    """
    start = after.astimezone(ZoneInfo(timezone))
    return croniter(schedule, start).get_next(datetime).astimezone(UTC)


def cron_latest(schedule: str, timezone: str, at: datetime) -> datetime:
    """The latest firing at or before ``at``, in UTC."""
    start = (at + timedelta(microseconds=1)).astimezone(ZoneInfo(timezone))
    return croniter(schedule, start).get_prev(datetime).astimezone(UTC)


async def sync_cronjobs(store: TaskStore) -> dict[str, int]:
    """Mirror ``[[cronjobs]]`` into the table by name; returns their row ids.

    Rows whose job left the config are disabled, not deleted, so their last run and the
    tasks pointing at them stay meaningful.
    """
    jobs = store.settings.cronjobs
    async with store._write() as conn:
        existing = {r.name: r for r in await conn.execute(select(CronjobRow))}
        for job in jobs:
            values = dict(schedule=job.schedule, timezone=job.timezone, prompt=job.prompt,
                          provider=job.provider, model=job.model, enabled=job.enabled)
            row = existing.get(job.name)
            if row is None:
                await conn.execute(insert(CronjobRow).values(name=job.name, **values))
            elif any(getattr(row, k) != v for k, v in values.items()):
                await conn.execute(update(CronjobRow).where(CronjobRow.id == row.id)
                                   .values(**values))
        gone = [name for name in existing if name not in {job.name for job in jobs}]
        if gone:
            await conn.execute(update(CronjobRow).where(CronjobRow.name.in_(gone))
                               .values(enabled=False))
        rows = await conn.execute(select(CronjobRow.name, CronjobRow.id))
        return {r.name: r.id for r in rows}


def _meta_insert(dialect: str, key: str, value: str) -> Any:
    ins: Any = (pg_insert if dialect == "postgresql" else sqlite_insert)(MetaRow)
    return ins.values(key=key, value=value).on_conflict_do_nothing(index_elements=["key"])


def _stamp(at: datetime) -> str:
    # Fixed width UTC, so comparing the strings compares the times.
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def fire_trigger(store: TaskStore, draft: TaskDraft, scheduled: datetime, *,
                       cronjob_id: int | None = None,
                       meta_key: str | None = None) -> Task | None:
    """Create the task of one scheduled firing, once: None if that firing already ran.

    The firing is recorded (cronjob ``last_run_at``, or a ``meta`` row for the heartbeat
    and consolidation) with a compare-and-set in the same transaction as the insert, so
    a restart or a second leader within the same minute cannot fire it again.
    """
    values = store._task_values(draft, store.clock())
    async with store._write() as conn:
        if cronjob_id is not None:
            won = (await conn.execute(update(CronjobRow).where(
                CronjobRow.id == cronjob_id,
                or_(CronjobRow.last_run_at.is_(None), CronjobRow.last_run_at < scheduled))
                .values(last_run_at=scheduled))).rowcount
        else:
            key = f"trigger_last_run:{meta_key}"
            await conn.execute(_meta_insert(conn.dialect.name, key, ""))
            won = (await conn.execute(update(MetaRow).where(
                MetaRow.key == key, MetaRow.value < _stamp(scheduled))
                .values(value=_stamp(scheduled)))).rowcount
        if not won:
            return None
        task = await store._insert_task(conn, values)
        if cronjob_id is not None:
            await conn.execute(update(CronjobRow).where(CronjobRow.id == cronjob_id).values(
                last_run_task_id=task.id, last_run_status=TaskStatus.RUNNING.value))
    store.bus.publish(TaskChange(task.id, TaskStatus.RUNNING, created=True))
    return task


async def record_trigger_outcome(store: TaskStore, task_id: int) -> None:
    """Copy a task's status to the cronjob whose last run it is."""
    async with store._write() as conn:
        status = (await conn.execute(select(TaskRow.status).where(TaskRow.id == task_id))
                  ).scalar_one_or_none()
        if status is not None:
            await conn.execute(update(CronjobRow).where(CronjobRow.last_run_task_id == task_id)
                               .values(last_run_status=status))


@dataclass(frozen=True)
class CronjobInfo:
    """One configured cronjob as ``/cronjobs`` shows it; times are aware UTC."""

    name: str
    schedule: str
    timezone: str
    enabled: bool
    #: None when disabled
    next_run: datetime | None
    last_run_at: datetime | None
    last_run_task_id: int | None
    #: the last run's task status now (running, paused, completed, failed); None if never run
    last_run_status: TaskStatus | None
    prompt: str
    provider: str | None
    model: str | None


async def list_cronjobs(store: TaskStore, now: datetime | None = None) -> list[CronjobInfo]:
    """The configured cronjobs in config order, with next run and last result."""
    now = now or store.clock()
    async with store._read() as conn:
        rows = {r.name: r for r in await conn.execute(
            select(CronjobRow.name, CronjobRow.last_run_at, CronjobRow.last_run_task_id,
                   CronjobRow.last_run_status, TaskRow.status.label("task_status"))
            .outerjoin(TaskRow, TaskRow.id == CronjobRow.last_run_task_id))}
    infos = []
    for job in store.settings.cronjobs:
        row = rows.get(job.name)
        status = (row.task_status or row.last_run_status) if row is not None else None
        infos.append(CronjobInfo(
            name=job.name, schedule=job.schedule, timezone=job.timezone, enabled=job.enabled,
            next_run=cron_next(job.schedule, job.timezone, now) if job.enabled else None,
            last_run_at=row.last_run_at if row is not None else None,
            last_run_task_id=row.last_run_task_id if row is not None else None,
            last_run_status=TaskStatus(status) if status else None,
            prompt=job.prompt, provider=job.provider, model=job.model))
    return infos
