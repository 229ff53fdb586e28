"""What the tasks of a stretch of time came to: the shift summary and ``/usage``.

Tasks count by their creation time (as the list's From/To filters do), so a day's figures
do not move once it is over, except for the tasks of it still running. Each question is
one statement over ``ix_tasks_created``'s range: a day of tasks is a short read, 30 days a
longer one, asked once a day or on demand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from taskops.storage.domain import TaskStatus
from taskops.storage.models import TaskRow

#: task names a summary lists failures of, at most (the rest are counted)
FAILURE_NAMES = 10


@dataclass(frozen=True)
class ProviderUsage:
    #: the provider's name ("" for tasks that never got one: killed before they started)
    provider: str
    tasks: int
    prompt_tokens: int
    completion_tokens: int
    #: the cost of the tasks with a known price
    cost_usd: float
    #: tasks that used tokens at no known price (their cost is not in ``cost_usd``)
    unpriced: int


@dataclass(frozen=True)
class UsageSummary:
    since: datetime
    until: datetime
    by_status: dict[TaskStatus, int]
    #: (task name, failures), most first, at most ``FAILURE_NAMES``
    failures: list[tuple[str, int]]
    #: how many names failed in all
    failed_names: int
    #: most cost first
    providers: list[ProviderUsage]

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


@dataclass(frozen=True)
class DailyCost:
    #: local days in ``[ui] timezone``, oldest first
    days: list[date]
    #: per provider, the cost of each of ``days`` (the tasks created that day)
    series: dict[str, list[float]]


def _created_in(since: datetime, until: datetime) -> list[ColumnElement[bool]]:
    return [TaskRow.created_at >= since, TaskRow.created_at < until]


async def summary(conn: AsyncConnection, since: datetime, until: datetime) -> UsageSummary:
    window = _created_in(since, until)
    by_status = {TaskStatus(status): int(n) for status, n in await conn.execute(
        select(TaskRow.status, func.count()).where(*window).group_by(TaskRow.status))}
    failed = [*window, TaskRow.status == TaskStatus.FAILED.value]
    failures = [(str(name), int(n)) for name, n in await conn.execute(
        select(TaskRow.name, func.count().label("n")).where(*failed).group_by(TaskRow.name)
        .order_by(func.count().desc(), TaskRow.name).limit(FAILURE_NAMES))]
    failed_names = int((await conn.execute(
        select(func.count(func.distinct(TaskRow.name))).where(*failed))).scalar_one())
    used = TaskRow.prompt_tokens + TaskRow.completion_tokens
    unpriced = func.sum(case((and_(TaskRow.cost_usd.is_(None), used > 0), 1), else_=0))
    rows = await conn.execute(
        select(TaskRow.provider, func.count(),
               func.sum(TaskRow.prompt_tokens), func.sum(TaskRow.completion_tokens),
               func.sum(TaskRow.cost_usd), unpriced)
        .where(*window).group_by(TaskRow.provider))
    providers = sorted(
        (ProviderUsage(p or "", int(n), int(pt or 0), int(ct or 0), float(cost or 0.0),
                       int(u or 0)) for p, n, pt, ct, cost, u in rows),
        key=lambda u: (-u.cost_usd, -u.tasks, u.provider))
    return UsageSummary(since, until, by_status, failures, failed_names, providers)


def day_bounds(last_day: date, days: int, tz: ZoneInfo) -> list[tuple[date, datetime]]:
    """The ``days`` local days ending with ``last_day``, each with its start in UTC, plus
    the start of the day after (DST days are 23 or 25 hours long)."""
    first = last_day - timedelta(days=days - 1)
    return [(first + timedelta(days=i),
             datetime.combine(first + timedelta(days=i), time(), tz))
            for i in range(days + 1)]


async def daily_cost(conn: AsyncConnection, last_day: date, days: int,
                     tz: ZoneInfo) -> DailyCost:
    bounds = day_bounds(last_day, days, tz)
    starts = [start for _, start in bounds]
    # One pass over the range: each task falls in the day whose end it is before.
    bucket = (case(*[(TaskRow.created_at < end, i) for i, end in enumerate(starts[1:-1])],
                   else_=days - 1) if days > 1 else literal(0))
    rows = await conn.execute(
        select(bucket.label("day"), TaskRow.provider, func.sum(TaskRow.cost_usd))
        .where(TaskRow.created_at >= starts[0], TaskRow.created_at < starts[-1],
               TaskRow.cost_usd.is_not(None))
        .group_by("day", TaskRow.provider))
    series: dict[str, list[float]] = {}
    for day, provider, cost in rows:
        series.setdefault(provider or "", [0.0] * days)[int(day)] += float(cost or 0.0)
    return DailyCost([d for d, _ in bounds[:-1]], series)
