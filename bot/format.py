"""Formats of the web page, reused by the templates (platform-facts.md, "formats")."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from taskops.storage.domain import ResultStatus, SortField, Task, TaskStatus, Trigger

STATUS_BADGE = {
    TaskStatus.RUNNING: "⚪",
    TaskStatus.COMPLETED: "🟢",
    TaskStatus.FAILED: "🔴",
    TaskStatus.PAUSED: "🟠",
}
STATUS_LABEL = {s: s.value.capitalize() for s in TaskStatus}
TRIGGER_LABEL = {t: t.value.capitalize() for t in Trigger}
RESULT_BADGE = {
    ResultStatus.COMPLETED: "✅",
    ResultStatus.FAILED: "❌",
    ResultStatus.QUESTION: "❓",
    ResultStatus.SILENT: "🔕",
}
SORT_LABEL = {
    SortField.CREATED: "Created",
    SortField.NAME: "Name",
    SortField.DURATION: "Duration",
    SortField.TOKENS: "Tokens",
    SortField.COST: "Est. cost",
}
ELLIPSIS = "…"


def duration(seconds: float | None) -> str:
    """"Ns", "Nm Ns", "Nh Nm"; "—" when never started."""
    if seconds is None:
        return "—"
    total = int(seconds)
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m {total % 60}s"
    return f"{total // 3600}h {total % 3600 // 60}m"


_KILL_HINT = re.compile(r"^\s*Hint: Use /kill_task \d+\b.*$\n?", re.MULTILINE)


def without_kill_hint(text: str) -> str:
    """A failed task's error without the loop detector's "Use /kill_task N" hint: the task
    is no longer running, and /kill_task refuses anything else."""
    return _KILL_HINT.sub("", text).strip()


def tool_duration(ms: int | float | None) -> str:
    """"Nms" below a second, else "N.Ns"."""
    if ms is None:
        return ""
    return f"{int(ms)}ms" if ms < 1000 else f"{ms / 1000:.1f}s"


def cost(value: float | None) -> str:
    """USD with 2–4 decimals; "n/a" when no price is known (never a fake $0)."""
    if value is None:
        return "n/a"
    if value == 0:
        return "$0.00"
    if value >= 1:
        return f"${value:,.2f}"
    if value >= 0.01:
        text = f"{value:.3f}".rstrip("0")
        return "$" + (text if len(text.split(".")[1]) >= 2 else f"{value:.2f}")
    if value >= 0.0001:
        return f"${value:.4f}"
    return "<$0.0001"


def compact_number(value: int) -> str:
    """A count in at most 5 characters: 950, 19.2k, 1.2M."""
    if value < 1000:
        return str(value)
    if value < 999_950:
        return f"{value / 1000:.1f}k".replace(".0k", "k")
    return f"{value / 1_000_000:.1f}M".replace(".0M", "M")


def row_time(at: datetime, tz: ZoneInfo, now: datetime) -> str:
    """Created, as short as a list row needs: the time today, the day this year, else the
    month (the detail shows it in full)."""
    local, today = at.astimezone(tz), now.astimezone(tz)
    if local.date() == today.date():
        return local.strftime("%H:%M")
    if local.year == today.year:
        return local.strftime("%d %b").lstrip("0")
    return local.strftime("%b %Y")


def clock_time(at: datetime, tz: ZoneInfo, now: datetime) -> str:
    """When something happened, for a line about it: the time today, else day and time."""
    local = at.astimezone(tz)
    return local.strftime("%H:%M") if local.date() == now.astimezone(tz).date() \
        else local.strftime("%d %b, %H:%M")


def number(value: int) -> str:
    return f"{value:,}"


def tokens(task: Task) -> str:
    return (f"{task.total_tokens:,} tok ({task.prompt_tokens:,} in · "
            f"{task.completion_tokens:,} out)")


def truncate(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(1, width - 1)].rstrip() + ELLIPSIS


def provider_line(task: Task, width: int = 80) -> str:
    """"provider – model", or "Default (provider – model)" for the task default."""
    pair = f"{task.provider or '?'} – {task.model or '?'}"
    return truncate(f"Default ({pair})" if task.used_default else pair, width)


def short_time(at: datetime | None, tz: ZoneInfo, now: datetime) -> str:
    if at is None:
        return "—"
    local = at.astimezone(tz)
    if local.year != now.astimezone(tz).year:
        return local.strftime("%d %b %Y, %H:%M")
    return local.strftime("%d %b, %H:%M")


def short_date(day: object) -> str:
    strftime = getattr(day, "strftime", None)
    if strftime is None:
        return str(day)
    return str(strftime("%d %b %Y")).lstrip("0")
