"""Triggers: ``[[cronjobs]]``, the heartbeat and memory consolidation, fired by APScheduler
in exactly one process (the store's leader lock, ``storage.leader``).

Each firing creates one task with its trigger (and, for a cronjob, its row in the
``cronjobs`` table as the trigger source). The rules:

* Fire times come from croniter (cron's own semantics: Sunday is 0 or 7, and a
  restricted day-of-month *or* day-of-week matches); APScheduler's CronTrigger counts
  Monday as 0 and ANDs the day fields, so it is only used as the clock, through
  :class:`ScheduleTrigger`.
* The heartbeat fires at multiples of its interval since the epoch (UTC), so every
  process and every restart agree on the firing times.
* A firing is recorded with a compare-and-set on its scheduled time in the same
  transaction as the task, so a restart (or a second leader) in the same minute does
  not fire again.
* Runs missed while nothing was leading are skipped, not stacked: schedules start from
  now, coalesce, and a firing more than ``misfire_grace_seconds`` late is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger

from taskops import metrics
from taskops.config import Settings
from taskops.cron import cron_latest, cron_next
from taskops.storage.domain import ProviderChoice, StoreError, Task, TaskDraft, Trigger
from taskops.storage.leader import CONSOLE, LeaderLock, Leadership
from taskops.storage.store import TaskStore

log = logging.getLogger("taskops.runtime")


class Schedule(Protocol):
    def next_after(self, at: datetime) -> datetime: ...

    def latest(self, at: datetime) -> datetime:
        """The latest firing at or before ``at``."""
        ...


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    timezone: str = "UTC"

    def next_after(self, at: datetime) -> datetime:
        return cron_next(self.expression, self.timezone, at)

    def latest(self, at: datetime) -> datetime:
        return cron_latest(self.expression, self.timezone, at)


@dataclass(frozen=True)
class EverySchedule:
    minutes: int

    def next_after(self, at: datetime) -> datetime:
        period = self.minutes * 60
        return datetime.fromtimestamp((math.floor(at.timestamp() / period) + 1) * period, UTC)

    def latest(self, at: datetime) -> datetime:
        period = self.minutes * 60
        return datetime.fromtimestamp(math.floor(at.timestamp() / period) * period, UTC)


class ScheduleTrigger(BaseTrigger):
    """An APScheduler trigger that asks a :class:`Schedule` for the next fire time."""

    __slots__ = ("schedule",)

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule

    def get_next_fire_time(self, previous_fire_time: datetime | None,
                           now: datetime) -> datetime:
        return self.schedule.next_after(previous_fire_time or now)

    def __repr__(self) -> str:
        return f"<ScheduleTrigger {self.schedule!r}>"


@dataclass(frozen=True)
class Firing:
    """One schedule and the task each of its firings creates."""

    key: str
    schedule: Schedule
    draft: TaskDraft
    cronjob_id: int | None = None

    @property
    def label(self) -> str:
        return f"{self.draft.trigger.value} '{self.draft.name}'"


def firings(settings: Settings, cronjob_ids: dict[str, int]) -> list[Firing]:
    """What the config asks to fire; ``cronjob_ids`` from :func:`sync_cronjobs`."""
    out = []
    for job in settings.cronjobs:
        if not job.enabled:
            continue
        choice = (ProviderChoice(job.provider, job.model) if job.provider
                  else ProviderChoice.default())
        out.append(Firing(f"cronjob:{job.name}", CronSchedule(job.schedule, job.timezone),
                          TaskDraft(name=job.name, prompt=job.prompt, trigger=Trigger.CRONJOB,
                                    provider=choice,
                                    max_duration_minutes=job.max_duration_minutes,
                                    trigger_source_id=cronjob_ids[job.name]),
                          cronjob_id=cronjob_ids[job.name]))
    runtime = settings.runtime
    if runtime.heartbeat_minutes:
        out.append(Firing("heartbeat", EverySchedule(runtime.heartbeat_minutes),
                          TaskDraft(name="Heartbeat", prompt=runtime.heartbeat_prompt,
                                    trigger=Trigger.HEARTBEAT)))
    if runtime.consolidation_cron:
        out.append(Firing("consolidation", CronSchedule(runtime.consolidation_cron),
                          TaskDraft(name="Memory consolidation",
                                    prompt=runtime.consolidation_prompt,
                                    trigger=Trigger.CONSOLIDATION)))
    return out


def has_schedules(settings: Settings) -> bool:
    runtime = settings.runtime
    return (any(job.enabled for job in settings.cronjobs) or bool(runtime.heartbeat_minutes)
            or bool(runtime.consolidation_cron))


class FencedLock:
    """The triggers' lock inside the leader of the ``taskops run`` processes: the triggers'
    own lock, held only while the leadership's fence holds. ``taskops worker`` processes
    give that lock up as soon as a console leads (``DeferringLock``), so the leader fires;
    the firing's compare-and-set keeps one task per firing even in the hand-over."""

    def __init__(self, leadership: Leadership, inner: LeaderLock) -> None:
        self.leadership, self.inner = leadership, inner

    async def acquire(self) -> bool:
        return self.leadership.valid() and await self.inner.acquire()

    async def held(self) -> bool:
        return self.leadership.valid() and await self.inner.held()

    async def release(self) -> None:
        await self.inner.release()


class Triggers:
    def __init__(self, store: TaskStore, settings: Settings, *,
                 lock: LeaderLock | None = None, standby_seconds: float = 5.0,
                 misfire_grace_seconds: int = 30,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store = store
        self.settings = settings
        # Outside the console's leader, a process fires only while no console leads.
        self.lock = lock or store.leader("triggers", defer_to=CONSOLE)
        self.standby_seconds = standby_seconds
        self.misfire_grace_seconds = misfire_grace_seconds
        self.now = now
        self.leading = asyncio.Event()
        self.scheduler: AsyncIOScheduler | None = None
        self._pending: set[asyncio.Task[Any]] = set()

    async def fire(self, firing: Firing, at: datetime | None = None) -> Task | None:
        """Fire the schedule's latest firing at or before ``at`` (default now), once."""
        scheduled = firing.schedule.latest(at or self.now())
        task = await self.store.cronjobs.fire(
            firing.draft, scheduled, cronjob_id=firing.cronjob_id,
            meta_key=None if firing.cronjob_id is not None else firing.key)
        if task is None:
            log.info("triggers: %s at %s already fired", firing.label, scheduled.isoformat())
        else:
            log.info("triggers: %s fired for %s → task#%d", firing.label,
                     scheduled.isoformat(), task.id)
        return task

    async def _on_time(self, firing: Firing) -> None:
        # APScheduler cancels its job coroutines on shutdown; the firing runs as our own
        # task so a shutdown never cuts its transaction in half.
        at = self.now()
        job = asyncio.create_task(self._fire_logged(firing, at))
        self._pending.add(job)
        job.add_done_callback(self._pending.discard)

    async def _fire_logged(self, firing: Firing, at: datetime) -> None:
        try:
            await self.fire(firing, at)
        except StoreError as exc:
            log.error("triggers: %s could not create its task: %s", firing.label, exc)
        except Exception:
            log.exception("triggers: %s failed", firing.label)

    async def run(self, stop: asyncio.Event) -> None:
        """Lead when this process gets the lock, stand by otherwise, until ``stop``."""
        if not has_schedules(self.settings):
            return  # nothing to fire: no need to lead
        while not stop.is_set():
            try:
                if await self.lock.acquire():
                    metrics.leading("triggers", True)
                    try:
                        await self._lead(stop)
                    finally:
                        metrics.leading("triggers", False)
                        await self.lock.release()
                        self.leading.clear()
            except Exception:
                log.exception("triggers: leading failed; standing by")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.standby_seconds)

    async def _lead(self, stop: asyncio.Event) -> None:
        ids = await self.store.cronjobs.sync()
        scheduler = AsyncIOScheduler(timezone=UTC)
        for firing in firings(self.settings, ids):
            scheduler.add_job(self._on_time, trigger=ScheduleTrigger(firing.schedule),
                              args=[firing], id=firing.key, name=firing.label,
                              coalesce=True, max_instances=1,
                              misfire_grace_time=self.misfire_grace_seconds)
        scheduler.start()
        self.scheduler = scheduler
        self.leading.set()
        log.info("triggers: leading, %d schedule(s)", len(scheduler.get_jobs()))
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.standby_seconds)
                if not stop.is_set() and not await self.lock.held():
                    log.warning("triggers: leadership lost; standing by")
                    break
        finally:
            scheduler.shutdown(wait=False)
            self.scheduler = None
            await asyncio.gather(*self._pending, return_exceptions=True)
