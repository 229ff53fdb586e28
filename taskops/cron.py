"""Cron maths for ``[[cronjobs]]`` and memory consolidation: 5-field expressions, cron's
own semantics.

croniter follows cron itself (day-of-week 0 and 7 are Sunday; when day-of-month and
day-of-week are both restricted, either matches) — APScheduler's CronTrigger does
neither, so it is only used as a clock (``runtime.triggers.ScheduleTrigger``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter


def cron_next(schedule: str, timezone: str, after: datetime) -> datetime:
    """The first firing strictly after ``after``, in UTC."""
    start = after.astimezone(ZoneInfo(timezone))
    return croniter(schedule, start).get_next(datetime).astimezone(UTC)


def cron_latest(schedule: str, timezone: str, at: datetime) -> datetime:
    """The latest firing at or before ``at``, in UTC."""
    start = (at + timedelta(microseconds=1)).astimezone(ZoneInfo(timezone))
    return croniter(schedule, start).get_prev(datetime).astimezone(UTC)
