"""The shift summary and ``/usage``: a table of what the tasks of a stretch of time came to,
and a chart of cost per provider per day.

Two messages: the table as text (it can be longer than a photo's 1,024-character caption),
then the chart with a one-line caption. The figures come from the store
(``store.usage``, ``store.daily_cost``), the words from ``templates/usage*.html``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from taskops.bot import chart
from taskops.bot import format as fmt
from taskops.bot.render import render
from taskops.bot.ui import MAX_TEXT, visible_length
from taskops.storage.domain import TaskStatus
from taskops.storage.store import TaskStore
from taskops.storage.usage import UsageSummary

NAME_WIDTH = 60
STATUS_ORDER = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.PAUSED, TaskStatus.RUNNING)
STATUS_WORD = {TaskStatus.COMPLETED: "completed", TaskStatus.FAILED: "failed",
               TaskStatus.PAUSED: "paused", TaskStatus.RUNNING: "running"}


class Period(StrEnum):
    """What a report covers: its table's window, and the days of its chart."""

    #: the shift summary: the last 24 h, with the last 7 days' chart
    SHIFT = "24h"
    WEEK = "7d"
    MONTH = "30d"

    @property
    def window(self) -> timedelta:
        return {Period.SHIFT: timedelta(hours=24), Period.WEEK: timedelta(days=7),
                Period.MONTH: timedelta(days=30)}[self]

    @property
    def chart_days(self) -> int:
        return 30 if self is Period.MONTH else 7

    @property
    def heading(self) -> str:
        return {Period.SHIFT: "Shift summary · last 24 h", Period.WEEK: "Usage · last 7 days",
                Period.MONTH: "Usage · last 30 days"}[self]


@dataclass(frozen=True)
class Report:
    #: the table (HTML, within a message's 4,096 characters)
    text: str
    #: the chart's caption (HTML, one line)
    caption: str
    png: bytes


def table(summary: UsageSummary, title: str, tz: ZoneInfo, now: datetime) -> str:
    def when(at: datetime) -> str:
        return fmt.short_time(at, tz, now)

    statuses = [{"badge": fmt.STATUS_BADGE[s], "count": f"{summary.by_status[s]:,}",
                 "label": STATUS_WORD[s]} for s in STATUS_ORDER if summary.by_status.get(s)]
    failures = [{"count": f"{n:,}", "name": fmt.truncate(name, NAME_WIDTH)}
                for name, n in summary.failures]
    providers = [{"name": p.provider or "no provider", "tasks": f"{p.tasks:,}",
                  "tokens": fmt.compact_number(p.prompt_tokens + p.completion_tokens),
                  "prompt": fmt.compact_number(p.prompt_tokens),
                  "completion": fmt.compact_number(p.completion_tokens),
                  "cost": fmt.cost(p.cost_usd) if p.cost_usd or not p.unpriced else "n/a",
                  "unpriced": f"{p.unpriced:,}" if p.unpriced else ""}
                 for p in summary.providers]
    tokens = sum(p.prompt_tokens + p.completion_tokens for p in summary.providers)
    while True:
        text = render("usage", title=title, since=when(summary.since), until=when(summary.until),
                      total=f"{summary.total:,}", statuses=statuses, failures=failures,
                      more_failed=(f"{summary.failed_names - len(failures):,}"
                                   if summary.failed_names > len(failures) else ""),
                      providers=providers, total_tokens=fmt.compact_number(tokens),
                      total_cost=fmt.cost(sum(p.cost_usd for p in summary.providers)))
        # Provider names come from the data: a store with very many keeps the top ones.
        if visible_length(text) <= MAX_TEXT or len(providers) <= 1:
            return text
        providers = providers[:len(providers) // 2]


async def build(store: TaskStore, period: Period) -> Report:
    """The report of ``period`` up to now."""
    now = store.clock()
    summary = await store.usage(now - period.window, now)
    daily = await store.daily_cost(now.astimezone(store.tz).date(), period.chart_days)
    span = f"last {period.chart_days} days"
    png = await chart.draw_png(daily, f"Cost per provider per day · {span}")
    return Report(table(summary, period.heading, store.tz, now),
                  render("usage_caption", span=span), png)
