"""Cronjobs, heartbeat and consolidation: fire times, once-only firing, leadership."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from taskops.config import CronjobSettings
from taskops.runtime.triggers import CronSchedule, EverySchedule, ScheduleTrigger, Triggers, firings
from taskops.storage.domain import ProviderChoice, TaskStatus, Trigger
from taskops.storage.leader import FileLock
from taskops.storage.store import TaskStore
from tests.runtime.conftest import MakeStore, running_worker, wait_ended

BERLIN = "Europe/Berlin"
FRIDAY_NOON = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)  # 12:00 in Berlin


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
        second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- schedules ---------------------------------------------------------------------------


@pytest.mark.parametrize("weekday", ["0", "7", "sun"])
def test_a_sunday_schedule_fires_on_sunday(weekday: str) -> None:
    schedule = CronSchedule(f"0 9 * * {weekday}", BERLIN)
    first = schedule.next_after(FRIDAY_NOON)
    assert first == utc(2026, 11, 22, 8, 0)  # Sunday 09:00 in Berlin (CET)
    assert first.astimezone(ZoneInfo(BERLIN)).weekday() == 6
    assert schedule.next_after(first) == utc(2026, 11, 29, 8, 0)
    assert schedule.latest(first) == first
    assert schedule.latest(first - timedelta(seconds=1)) == utc(2026, 11, 15, 8, 0)


def test_apschedulers_own_crontab_would_fire_on_monday() -> None:
    # The pitfall ScheduleTrigger avoids: APScheduler 3 reads day-of-week 0 as Monday.
    theirs = CronTrigger.from_crontab("0 9 * * 0", timezone=BERLIN)
    ours = ScheduleTrigger(CronSchedule("0 9 * * 0", BERLIN))
    assert theirs.get_next_fire_time(None, FRIDAY_NOON).weekday() == 0
    assert ours.get_next_fire_time(None, FRIDAY_NOON).weekday() == 6


def test_day_of_month_or_day_of_week_matches_like_cron() -> None:
    schedule = CronSchedule("0 0 13 * 5", "UTC")  # the 13th, and every Friday
    first = schedule.next_after(utc(2026, 11, 1))
    assert first == utc(2026, 11, 6)  # a Friday before the 13th
    assert schedule.next_after(utc(2026, 11, 12)) == utc(2026, 11, 13)


def test_schedules_follow_daylight_saving_time() -> None:
    schedule = CronSchedule("30 2 * * *", BERLIN)
    assert schedule.next_after(utc(2026, 7, 1)) == utc(2026, 7, 1, 0, 30)  # CEST
    assert schedule.next_after(utc(2026, 12, 1)) == utc(2026, 12, 1, 1, 30)  # CET


def test_the_heartbeat_fires_at_multiples_of_its_interval() -> None:
    every = EverySchedule(30)
    assert every.next_after(utc(2026, 11, 20, 12, 10)) == utc(2026, 11, 20, 12, 30)
    assert every.next_after(utc(2026, 11, 20, 12, 30)) == utc(2026, 11, 20, 13, 0)
    assert every.latest(utc(2026, 11, 20, 12, 59, 59)) == utc(2026, 11, 20, 12, 30)


# --- firing ------------------------------------------------------------------------------


def with_jobs(store: TaskStore, *jobs: CronjobSettings) -> None:
    store.settings = dataclasses.replace(store.settings, cronjobs=jobs)


AUDIT = CronjobSettings(name="Nightly audit", schedule="30 2 * * *", timezone=BERLIN,
                        prompt="!say auditing\n!end completed all clean",
                        max_duration_minutes=15)


async def test_a_cronjob_firing_creates_its_task_once(make_store: MakeStore) -> None:
    store = await make_store()
    with_jobs(store, AUDIT, dataclasses.replace(AUDIT, name="Off", enabled=False))
    ids = await store.cronjobs.sync()
    [firing] = firings(store.settings, ids)
    task = await Triggers(store, store.settings).fire(firing, utc(2026, 11, 20, 1, 30, 20))
    assert task is not None
    assert (task.trigger, task.trigger_source_id, task.name) == (
        Trigger.CRONJOB, ids["Nightly audit"], "Nightly audit")
    assert task.max_duration_minutes == 15
    assert task.used_default
    # A restarted process (a new Triggers) in the same minute does not fire again.
    again = Triggers(store, store.settings)
    assert await again.fire(firing, utc(2026, 11, 20, 1, 30, 50)) is None
    tomorrow = await again.fire(firing, utc(2026, 11, 21, 1, 30, 1))
    assert tomorrow is not None
    assert tomorrow.id != task.id
    [info, off] = await store.cronjobs.list(now=utc(2026, 11, 21, 2))
    assert (info.name, info.enabled, info.last_run_task_id) == ("Nightly audit", True, tomorrow.id)
    assert info.last_run_at == utc(2026, 11, 21, 1, 30)
    assert info.next_run == utc(2026, 11, 22, 1, 30)
    assert info.last_run_status is TaskStatus.RUNNING
    assert (off.enabled, off.next_run, off.last_run_at) == (False, None, None)


async def test_sync_follows_the_config_by_name(make_store: MakeStore) -> None:
    store = await make_store()
    with_jobs(store, AUDIT, dataclasses.replace(AUDIT, name="Weekly"))
    first = await store.cronjobs.sync()
    with_jobs(store, dataclasses.replace(AUDIT, schedule="0 4 * * *"))
    second = await store.cronjobs.sync()
    assert second == first  # same rows, same ids
    from sqlalchemy import select

    from taskops.storage.models import CronjobRow

    async with store.engines.read.connect() as conn:
        rows = {r.name: r for r in await conn.execute(select(CronjobRow))}
    assert (rows["Nightly audit"].schedule, rows["Nightly audit"].enabled) == ("0 4 * * *", True)
    assert rows["Weekly"].enabled is False  # left the config: kept, disabled
    assert [i.name for i in await store.cronjobs.list()] == ["Nightly audit"]


async def test_a_cronjob_with_a_provider_runs_on_it(make_store: MakeStore) -> None:
    store = await make_store()
    with_jobs(store, dataclasses.replace(AUDIT, provider="scripted", model="scripted"))
    [firing] = firings(store.settings, await store.cronjobs.sync())
    task = await Triggers(store, store.settings).fire(firing, FRIDAY_NOON)
    assert task is not None
    assert (task.provider, task.model, task.used_default) == ("scripted", "scripted", False)
    assert firing.draft.provider == ProviderChoice("scripted", "scripted")


async def test_the_last_run_status_follows_the_task(make_store: MakeStore) -> None:
    store = await make_store()
    with_jobs(store, AUDIT)
    [firing] = firings(store.settings, await store.cronjobs.sync())
    task = await Triggers(store, store.settings).fire(firing, FRIDAY_NOON)
    assert task is not None
    async with running_worker(store):
        await wait_ended(store, task.id)
        for _ in range(500):
            if (await stored_status(store)) == "completed":
                break
            await asyncio.sleep(0.01)
    assert await stored_status(store) == "completed"
    [info] = await store.cronjobs.list()
    assert info.last_run_status is TaskStatus.COMPLETED


async def stored_status(store: TaskStore) -> str | None:
    from sqlalchemy import select

    from taskops.storage.models import CronjobRow

    async with store.engines.read.connect() as conn:
        return (await conn.execute(select(CronjobRow.last_run_status))).scalar()


async def test_heartbeat_and_consolidation_fire_once_per_slot(make_store: MakeStore) -> None:
    store = await make_store({"runtime": {"heartbeat_minutes": 30,
                                          "consolidation_cron": "0 3 * * *"}})
    beat, consolidate = firings(store.settings, {})
    triggers = Triggers(store, store.settings)
    first = await triggers.fire(beat, utc(2026, 11, 20, 12, 0, 5))
    assert first is not None
    assert (first.trigger, first.name) == (Trigger.HEARTBEAT, "Heartbeat")
    assert await triggers.fire(beat, utc(2026, 11, 20, 12, 29)) is None
    assert await triggers.fire(beat, utc(2026, 11, 20, 12, 30)) is not None
    night = await triggers.fire(consolidate, utc(2026, 11, 21, 3, 0, 2))
    assert night is not None
    assert night.trigger is Trigger.CONSOLIDATION
    assert await triggers.fire(consolidate, utc(2026, 11, 21, 3, 0, 40)) is None


# --- leading: APScheduler, misfires, fail-over ------------------------------------------


@asynccontextmanager
async def leading(triggers: Triggers) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    job = asyncio.create_task(triggers.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(job, 10)


async def test_missed_runs_are_skipped_not_stacked(make_store: MakeStore) -> None:
    store = await make_store()
    with_jobs(store, dataclasses.replace(AUDIT, schedule="* * * * *"))
    ids = await store.cronjobs.sync()
    # The last run was a week ago: nothing fires for the missed minutes on start.
    firing = firings(store.settings, ids)[0]
    await Triggers(store, store.settings).fire(firing, datetime.now(UTC) - timedelta(days=7))
    before = (await store.list_tasks()).total
    triggers = Triggers(store, store.settings, standby_seconds=0.05)
    async with leading(triggers):
        await asyncio.wait_for(triggers.leading.wait(), 10)
        assert triggers.scheduler is not None
        [job] = triggers.scheduler.get_jobs()
        assert job.next_run_time > datetime.now(UTC)
        assert (job.coalesce, job.misfire_grace_time) == (True, 30)
        await asyncio.sleep(0.2)
    assert (await store.list_tasks()).total == before


async def test_the_scheduler_fires_the_job(make_store: MakeStore) -> None:
    store = await make_store()
    with_jobs(store, AUDIT)
    triggers = Triggers(store, store.settings, standby_seconds=0.05)
    async with leading(triggers):
        await asyncio.wait_for(triggers.leading.wait(), 10)
        assert triggers.scheduler is not None
        triggers.scheduler.modify_job("cronjob:Nightly audit", next_run_time=datetime.now(UTC))
        for _ in range(500):
            if (await store.list_tasks()).total:
                break
            await asyncio.sleep(0.01)
    [task] = (await store.list_tasks()).tasks
    assert task.trigger is Trigger.CRONJOB


async def test_only_one_process_leads_and_another_takes_over(make_store: MakeStore) -> None:
    first = await make_store({"runtime": {"heartbeat_minutes": 60}})
    second = await make_store({"runtime": {"heartbeat_minutes": 60}})
    one = Triggers(first, first.settings, standby_seconds=0.05)
    two = Triggers(second, second.settings, standby_seconds=0.05)
    async with leading(one) as stop_one:
        await asyncio.wait_for(one.leading.wait(), 10)
        async with leading(two):
            await asyncio.sleep(0.3)
            assert not two.leading.is_set()
            stop_one.set()  # the leader goes away
            await asyncio.wait_for(two.leading.wait(), 10)


async def test_a_file_lock_elects_one_holder(tmp_path: Path) -> None:
    one, two = FileLock(tmp_path / "x.lock"), FileLock(tmp_path / "x.lock")
    assert await one.acquire()
    assert not await two.acquire()
    await one.release()
    assert await two.acquire()
    await two.release()
