"""Retention: pruning old tasks and events in small batches, counts kept exact.

* Tasks created before the tasks cutoff that have ended (completed or failed) are
  removed with their events. Running and paused tasks are never removed, whatever
  their age. A newer task restarted from a removed one keeps running; its link to the
  removed original is cleared; push alerts following a removed task go too. Each
  task's counter in ``task_counts`` is decremented in
  the same transaction (rows that reach zero go), so the list's totals stay exact.
* Events of tasks created before the events cutoff that have ended are removed (the
  task keeps its row: name, status, summary, tokens, cost); whole timelines at once, so
  a task has all its events or none. A watermark (``meta.retention_events_upto``, the
  last task id done) keeps each pass from reading the same old tasks again; a task that
  ends only after the watermark has passed it keeps its events until the tasks cutoff
  removes it.

Age is the task's ``created_at`` (indexed; ``finished_at`` is not). Each batch is one
short transaction on its own; rows are locked with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, and the delete re-checks that the task has ended (compare-and-set), so a
task a worker is writing to is never touched.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from taskops.storage import counts
from taskops.storage.db import Database
from taskops.storage.domain import ACTIVE_STATUSES
from taskops.storage.models import (
    AlertRow,
    MetaRow,
    TaskCountRow,
    TaskEventRow,
    TaskRow,
    TaskTotalRow,
)

EVENTS_WATERMARK = "retention_events_upto"
_ENDED = [TaskRow.finished_at.is_not(None),
          TaskRow.status.not_in([s.value for s in ACTIVE_STATUSES])]


@dataclass
class Pruned:
    tasks: int = 0
    events: int = 0
    batches: int = 0
    #: the batches were cut short because ``keep_going`` said no (leadership lost)
    stopped: bool = False

    def __bool__(self) -> bool:
        return bool(self.tasks or self.events)


async def prune_tasks_batch(db: Database, before: datetime, limit: int) -> tuple[int, int]:
    """Remove up to ``limit`` ended tasks created before ``before``; (tasks, events)."""
    async with db.write() as conn:
        query = (select(TaskRow.id, TaskRow.created_at, TaskRow.status, TaskRow.trigger,
                        TaskRow.provider, TaskRow.model, TaskRow.used_default)
                 .where(TaskRow.created_at < before, *_ENDED)
                 .order_by(TaskRow.created_at, TaskRow.id).limit(limit))
        if not db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        rows = list(await conn.execute(query))
        if not rows:
            return 0, 0
        ids = [r.id for r in rows]
        await conn.execute(update(TaskRow).where(TaskRow.restarted_from_id.in_(ids))
                           .values(restarted_from_id=None))
        events = (await conn.execute(delete(TaskEventRow)
                                     .where(TaskEventRow.task_id.in_(ids)))).rowcount or 0
        # Push alerts whose task (or the run they follow now) is gone go with it.
        await conn.execute(delete(AlertRow).where(AlertRow.follow_task_id.in_(ids)))
        gone = {r.id for r in await conn.execute(
            delete(TaskRow).where(TaskRow.id.in_(ids), *_ENDED).returning(TaskRow.id))}
        tally: collections.Counter[tuple[Any, ...]] = collections.Counter()
        for r in rows:
            if r.id in gone:
                tally[(counts.local_day(r.created_at, db.tz), r.status, r.trigger,
                       r.provider or "", r.model or "", bool(r.used_default))] += 1
        if tally:
            await counts.add(conn, collections.Counter({k: -n for k, n in tally.items()}))
            await conn.execute(delete(TaskCountRow).where(TaskCountRow.n == 0))
            await conn.execute(delete(TaskTotalRow).where(TaskTotalRow.n == 0))
        return len(gone), events


async def prune_events_batch(db: Database, before: datetime, limit: int) -> tuple[int, bool]:
    """Remove the events of up to ``limit`` ended tasks created before ``before``, after
    the watermark; (events removed, whether there may be more)."""
    async with db.write() as conn:
        upto = int((await conn.execute(select(MetaRow.value).where(
            MetaRow.key == EVENTS_WATERMARK))).scalar_one_or_none() or 0)
        rows = list(await conn.execute(
            select(TaskRow.id, TaskRow.finished_at, TaskRow.status)
            .where(TaskRow.id > upto, TaskRow.created_at < before)
            .order_by(TaskRow.id).limit(limit)))
        if not rows:
            return 0, False
        ended = [r.id for r in rows if r.finished_at is not None
                 and r.status not in {s.value for s in ACTIVE_STATUSES}]
        events = 0
        if ended:
            events = (await conn.execute(delete(TaskEventRow).where(
                TaskEventRow.task_id.in_(
                    select(TaskRow.id).where(TaskRow.id.in_(ended), *_ENDED)
                    .scalar_subquery())))).rowcount or 0
        await conn.execute(delete(MetaRow).where(MetaRow.key == EVENTS_WATERMARK))
        await conn.execute(insert(MetaRow).values(key=EVENTS_WATERMARK,
                                                  value=str(rows[-1].id)))
        return events, len(rows) == limit


async def prune(db: Database, *, tasks_before: datetime | None,
                events_before: datetime | None, batch: int,
                keep_going: Callable[[], bool] = lambda: True,
                pause: Callable[[], Any] | None = None) -> Pruned:
    """Prune until nothing is left, one batch per transaction; ``keep_going`` is checked
    before every batch (the leader's fence), ``pause`` awaited between batches."""
    out = Pruned()
    while tasks_before is not None:
        if not keep_going():
            out.stopped = True
            return out
        tasks, events = await prune_tasks_batch(db, tasks_before, batch)
        out.tasks, out.events, out.batches = out.tasks + tasks, out.events + events, \
            out.batches + 1
        if tasks < batch:
            break
        if pause is not None:
            await pause()
    more = events_before is not None
    while more and events_before is not None:
        if not keep_going():
            out.stopped = True
            return out
        events, more = await prune_events_batch(db, events_before, batch)
        out.events, out.batches = out.events + events, out.batches + 1
        if more and pause is not None:
            await pause()
    return out


async def total_counted(db: Database) -> int:
    """The sum of the per-day counters (equal to the number of tasks when exact)."""
    async with db.read() as conn:
        return int((await conn.execute(select(func.coalesce(func.sum(TaskCountRow.n), 0))))
                   .scalar_one())


class RetentionStore:
    """``store.retention``: what the leader prunes."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def prune(self, *, tasks_before: datetime | None, events_before: datetime | None,
                    batch: int, keep_going: Callable[[], bool] = lambda: True,
                    pause: Callable[[], Any] | None = None) -> Pruned:
        """Remove ended tasks created before ``tasks_before`` and the events of ended tasks
        created before ``events_before``, a batch per transaction (see the module)."""
        return await prune(self.db, tasks_before=tasks_before, events_before=events_before,
                           batch=batch, keep_going=keep_going, pause=pause)

    async def counted_tasks(self) -> int:
        """The sum of the per-day counters: the number of tasks while they are exact."""
        return await total_counted(self.db)
