"""Cron maths for ``[[cronjobs]]`` and memory consolidation: 5-field expressions, cron's
own semantics.

croniter follows cron itself (day-of-week 0 and 7 are Sunday; when day-of-month and
day-of-week are both restricted, either matches) — APScheduler's CronTrigger does
neither, so it is only used as a clock (``runtime.triggers.ScheduleTrigger``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter

FIELDS = ("minute", "hour", "day of month", "month", "day of week")
_NAMES: dict[int, dict[str, int]] = {
    3: {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug",
                                    "sep", "oct", "nov", "dec"), start=1)},
    4: {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))},
}
_WRAP_HINT = {0: "the hour", 1: "the day", 2: "the month", 3: "the year", 4: "the week"}
_FIELD_MAX = {0: 59, 1: 23, 2: 31, 3: 12, 4: 7}


class CronError(ValueError):
    """A schedule taskops refuses, with a message that says why."""


def _value(text: str, index: int) -> int | None:
    text = text.strip().lower()
    if text.isdigit():
        return int(text)
    return _NAMES.get(index, {}).get(text[:3])


def check_schedule(expression: str) -> str:
    """Validate a 5-field cron expression; returns it, or raises :class:`CronError`.

    Cron's own grammar, except that a range must run forwards: croniter reads
    ``30-10 * * * *`` as a wrap-around (minutes 30–59 and 0–10), classic cron refuses
    it, and taskops refuses it too rather than guess — write ``30-59,0-10``.
    """
    fields = expression.split()
    if len(fields) != 5:
        raise CronError("must be a 5-field cron expression (minute hour day month weekday), "
                        f"got {expression!r}")
    for index, field in enumerate(fields):
        for part in field.split(","):
            span = part.split("/", 1)[0]
            if span.count("-") != 1:
                continue
            low_text, high_text = span.split("-")
            low, high = _value(low_text, index), _value(high_text, index)
            if low is not None and high is not None and low > high:
                wrap = f"{low_text}-{_FIELD_MAX[index]},{'0' if index in (0, 1, 4) else '1'}-" \
                       f"{high_text}"
                raise CronError(
                    f"{expression!r}: the {FIELDS[index]} field has a reversed range "
                    f"{span!r} (ranges must run from low to high; for one that wraps around "
                    f"{_WRAP_HINT[index]}, write {wrap})")
    try:
        croniter(expression)
    except (CroniterError, ValueError, KeyError):
        raise CronError(f"invalid cron expression {expression!r}") from None
    return expression


def cron_next(schedule: str, timezone: str, after: datetime) -> datetime:
    """The first firing strictly after ``after``, in UTC."""
    start = after.astimezone(ZoneInfo(timezone))
    return croniter(schedule, start).get_next(datetime).astimezone(UTC)


def cron_latest(schedule: str, timezone: str, at: datetime) -> datetime:
    """The latest firing at or before ``at``, in UTC."""
    start = (at + timedelta(microseconds=1)).astimezone(ZoneInfo(timezone))
    return croniter(schedule, start).get_prev(datetime).astimezone(UTC)
