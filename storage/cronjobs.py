"""Schedules in the store: ``[[cronjobs]]`` mirrored into a table, and each firing recorded
once.

A firing is recorded with a compare-and-set on its scheduled time (the cronjob's
``last_run_at``, or a ``meta`` row for the heartbeat and consolidation) in the same
transaction as the task it creates, so a restart or a second leader within the same minute
cannot fire it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from taskops.cron import cron_next
from taskops.storage import transitions
from taskops.storage.db import Database
from taskops.storage.domain import Task, TaskDraft, TaskStatus
from taskops.storage.models import CronjobRow, MetaRow, TaskRow
from taskops.storage.signals import TaskChange


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


def _meta_insert(dialect: str, key: str, value: str) -> Any:
    ins: Any = (pg_insert if dialect == "postgresql" else sqlite_insert)(MetaRow)
    return ins.values(key=key, value=value).on_conflict_do_nothing(index_elements=["key"])


def _stamp(at: datetime) -> str:
    # Fixed width UTC, so comparing the strings compares the times.
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CronStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def sync(self) -> dict[str, int]:
        """Mirror ``[[cronjobs]]`` into the table by name; returns their row ids.

        Rows whose job left the config are disabled, not deleted, so their last run and the
        tasks pointing at them stay meaningful.
        """
        jobs = self.db.settings.cronjobs
        async with self.db.write() as conn:
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

    async def fire(self, draft: TaskDraft, scheduled: datetime, *,
                   cronjob_id: int | None = None, meta_key: str | None = None) -> Task | None:
        """Create the task of one scheduled firing, once: None if that firing already ran."""
        values = transitions.task_values(self.db, draft, self.db.clock())
        async with self.db.write() as conn:
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
            task = await transitions.insert_task(self.db, conn, values)
            if cronjob_id is not None:
                await conn.execute(update(CronjobRow).where(CronjobRow.id == cronjob_id).values(
                    last_run_task_id=task.id, last_run_status=TaskStatus.RUNNING.value))
        self.db.bus.publish(TaskChange(task.id, TaskStatus.RUNNING, created=True))
        return task

    async def record_outcome(self, task_id: int) -> None:
        """Copy a task's status to the cronjob whose last run it is."""
        async with self.db.write() as conn:
            status = (await conn.execute(select(TaskRow.status).where(TaskRow.id == task_id))
                      ).scalar_one_or_none()
            if status is not None:
                await conn.execute(update(CronjobRow).where(
                    CronjobRow.last_run_task_id == task_id).values(last_run_status=status))

    async def list(self, now: datetime | None = None) -> list[CronjobInfo]:
        """The configured cronjobs in config order, with next run and last result."""
        now = now or self.db.clock()
        async with self.db.read() as conn:
            rows = {r.name: r for r in await conn.execute(
                select(CronjobRow.name, CronjobRow.last_run_at, CronjobRow.last_run_task_id,
                       CronjobRow.last_run_status, TaskRow.status.label("task_status"))
                .outerjoin(TaskRow, TaskRow.id == CronjobRow.last_run_task_id))}
        infos = []
        for job in self.db.settings.cronjobs:
            row = rows.get(job.name)
            status = (row.task_status or row.last_run_status) if row is not None else None
            infos.append(CronjobInfo(
                name=job.name, schedule=job.schedule, timezone=job.timezone,
                enabled=job.enabled,
                next_run=cron_next(job.schedule, job.timezone, now) if job.enabled else None,
                last_run_at=row.last_run_at if row is not None else None,
                last_run_task_id=row.last_run_task_id if row is not None else None,
                last_run_status=TaskStatus(status) if status else None,
                prompt=job.prompt, provider=job.provider, model=job.model))
        return infos
