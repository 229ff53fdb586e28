"""The worker's store: claims, leases and recovery.

Every write is a compare-and-set, so several workers can share one database without
running a task twice. A new task is claimed by starting it (``transitions.start``: its
``started_at`` and the "Task started" event); an answered (or otherwise unowned) running
task by setting ``claimed_by``. The claim holds until ``lease_until``; the worker renews it
while it runs the task and releases it when the task pauses, so whoever sees the answer
first continues the run.

Every claim also raises the task's ``claim_token`` and hands the run a :class:`Fence`
(worker, token): the run's writes (journal events, its ending) are accepted only while the
task still carries that fence, so a worker that lost its lease — starved, or cut off from
the database — cannot write after another worker took the task up, not even once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select, update

from taskops.storage import notify, transitions
from taskops.storage.db import Database
from taskops.storage.domain import EventKind, Fence, Task, TaskStatus
from taskops.storage.models import TaskEventRow, TaskRow
from taskops.storage.rows import row_to_task
from taskops.storage.signals import TaskChange

_UNFINISHED = and_(TaskRow.finished_at.is_(None), TaskRow.status == TaskStatus.RUNNING.value)
_UNOWNED = [_UNFINISHED, TaskRow.started_at.is_not(None), TaskRow.claimed_by.is_(None)]


@dataclass(frozen=True)
class Holding:
    """What the store says about a task a worker believes it is running."""

    status: TaskStatus
    claimed_by: str | None
    killed_by: str | None


@dataclass(frozen=True)
class Claimed:
    """A task this worker now holds, and the fence its run writes under."""

    task: Task
    fence: Fence

    @property
    def id(self) -> int:
        return self.task.id


def _claimed(rows: Any) -> list[Claimed]:
    out = [Claimed(row_to_task(r), Fence(r.claimed_by, r.claim_token)) for r in rows]
    return sorted(out, key=lambda c: c.id)


@dataclass(frozen=True)
class Claim:
    task_id: int
    worker_id: str
    lease_until: datetime | None
    started_at: datetime | None


@dataclass(frozen=True)
class PausedTask:
    id: int
    #: when it paused (its question was asked)
    since: datetime
    started_at: datetime | None
    max_duration_minutes: int


class WorkStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def _any(self, where: list[Any]) -> bool:
        """Whether any row matches, read without a write lock: SQLite has one writer at a
        time, and an idle worker must not queue behind running tasks every tick."""
        async with self.db.read() as conn:
            return (await conn.execute(select(TaskRow.id).where(*where).limit(1))
                    ).first() is not None

    async def claim_new(self, worker_id: str, limit: int,
                        lease_seconds: float) -> list[Claimed]:
        """Start up to ``limit`` never-started tasks, oldest first, under this worker's lease."""
        if limit < 1 or not await self._any(transitions.NEW_TASK):
            return []
        async with self.db.write() as conn:
            ids = list((await conn.execute(
                select(TaskRow.id).where(*transitions.NEW_TASK).order_by(TaskRow.id)
                .limit(limit).with_for_update(skip_locked=True))).scalars())
            started = (await transitions.start(self.db, conn, ids, worker_id=worker_id,
                                               lease_seconds=lease_seconds)) if ids else []
        for row in started:
            self.db.bus.publish(TaskChange(row.id, None, event_kind=EventKind.STATUS_CHANGE))
        return _claimed(started)

    async def claim_unowned(self, worker_id: str, limit: int,
                            lease_seconds: float) -> list[Claimed]:
        """Claim started, running tasks nobody holds: answered questions, mostly."""
        if limit < 1 or not await self._any(_UNOWNED):
            return []
        now = self.db.clock()
        async with self.db.write() as conn:
            ids = list((await conn.execute(
                select(TaskRow.id).where(*_UNOWNED).order_by(TaskRow.id).limit(limit)
                .with_for_update(skip_locked=True))).scalars())
            if not ids:
                return []
            rows = list(await conn.execute(
                update(TaskRow).where(TaskRow.id.in_(ids), *_UNOWNED)
                .values(claimed_by=worker_id, lease_until=now + timedelta(seconds=lease_seconds),
                        claim_token=TaskRow.claim_token + 1)
                .returning(TaskRow)))
        return _claimed(rows)

    async def listen_kills(self, worker_id: str, on_kill: Callable[[int], None],
                           stop: asyncio.Event, *, ready: asyncio.Event | None = None) -> None:
        """Hear every kill committed by any process at once, until ``stop`` (PostgreSQL
        LISTEN/NOTIFY on a connection of its own; returns at once on SQLite, where
        polling ``holdings`` is the only way)."""
        await notify.listen_kills(self.db, worker_id, on_kill, stop, ready=ready)

    async def renew(self, worker_id: str, task_ids: Collection[int],
                    lease_seconds: float) -> None:
        if not task_ids:
            return
        until = self.db.clock() + timedelta(seconds=lease_seconds)
        async with self.db.write() as conn:
            await conn.execute(update(TaskRow).where(
                TaskRow.id.in_(list(task_ids)), TaskRow.claimed_by == worker_id,
                TaskRow.status == TaskStatus.RUNNING.value).values(lease_until=until))

    async def release(self, worker_id: str, task_ids: Collection[int]) -> None:
        """Give up this worker's claim (paused, or the worker is stopping); history stays."""
        if not task_ids:
            return
        async with self.db.write() as conn:
            await conn.execute(update(TaskRow).where(
                TaskRow.id.in_(list(task_ids)), TaskRow.claimed_by == worker_id)
                .values(claimed_by=None, lease_until=None))

    async def holdings(self, task_ids: Collection[int]) -> dict[int, Holding]:
        if not task_ids:
            return {}
        async with self.db.read() as conn:
            rows = await conn.execute(select(TaskRow.id, TaskRow.status, TaskRow.claimed_by,
                                             TaskRow.killed_by)
                                      .where(TaskRow.id.in_(list(task_ids))))
            return {r.id: Holding(TaskStatus(r.status), r.claimed_by, r.killed_by) for r in rows}

    async def claims(self, exclude: Collection[int] = ()) -> list[Claim]:
        """Started, running tasks held by a worker (other than the tasks ``exclude``d)."""
        where = [_UNFINISHED, TaskRow.started_at.is_not(None), TaskRow.claimed_by.is_not(None)]
        if exclude:
            where.append(TaskRow.id.not_in(list(exclude)))
        async with self.db.read() as conn:
            rows = await conn.execute(select(TaskRow.id, TaskRow.claimed_by, TaskRow.lease_until,
                                             TaskRow.started_at).where(*where)
                                      .order_by(TaskRow.id))
            return [Claim(r.id, r.claimed_by, r.lease_until, r.started_at) for r in rows]

    async def take_over(self, worker_id: str, claims: Collection[Claim],
                        lease_seconds: float) -> list[Claimed]:
        """Take the claims of tasks whose worker is gone, each only if it is still held as
        seen (compare-and-set): a late renewal by the old worker then misses, and so does
        every journal write of its run (the new token fences it out). Returns the tasks
        taken, to be taken up again from their journal."""
        if not claims:
            return []
        until = self.db.clock() + timedelta(seconds=lease_seconds)
        taken = []
        async with self.db.write() as conn:
            for claim in sorted(claims, key=lambda c: c.task_id):
                row = (await conn.execute(
                    update(TaskRow).where(TaskRow.id == claim.task_id, _UNFINISHED,
                                          TaskRow.claimed_by == claim.worker_id)
                    .values(claimed_by=worker_id, lease_until=until,
                            claim_token=TaskRow.claim_token + 1)
                    .returning(TaskRow))).first()
                if row is not None:
                    taken.append(row)
        return _claimed(taken)

    def expired(self, claim: Claim, lease_seconds: float) -> bool:
        """Whether the claim's lease has run out (a claim set without a lease, by
        ``start_task`` outside a worker, lasts one lease length from the start)."""
        now = self.db.clock()
        if claim.lease_until is not None:
            return claim.lease_until < now
        return claim.started_at is not None and \
            claim.started_at < now - timedelta(seconds=lease_seconds)

    async def paused(self) -> list[PausedTask]:
        """Paused tasks: when they paused (their latest ``final`` event) and their deadline."""
        last_final = (select(func.max(TaskEventRow.at))
                      .where(TaskEventRow.task_id == TaskRow.id,
                             TaskEventRow.kind == EventKind.FINAL.value)
                      .scalar_subquery())
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(TaskRow.id, last_final.label("paused_at"), TaskRow.last_event_at,
                       TaskRow.created_at, TaskRow.started_at, TaskRow.max_duration_minutes)
                .where(TaskRow.finished_at.is_(None), TaskRow.status == TaskStatus.PAUSED.value))
            # The column type is lost in the subquery on SQLite; UTCDateTime applies only
            # to the plain columns, so normalise here.
            out: list[PausedTask] = []
            for r in rows:
                at = r.paused_at or r.last_event_at or r.created_at
                if isinstance(at, str):
                    at = datetime.fromisoformat(at)
                out.append(PausedTask(r.id, at if at.tzinfo else at.replace(tzinfo=UTC),
                                      r.started_at, r.max_duration_minutes))
            return out
