"""Texts and keyboards of what the push side sends (the words are in ``templates/``)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from telegram import InlineKeyboardMarkup

from taskops.bot import format as fmt
from taskops.bot.callbacks import Action
from taskops.bot.render import render
from taskops.bot.ui import MAX_TEXT, Rendered, button, cut, markdown_html, pretty, visible_length
from taskops.storage.domain import ResultStatus, Task, TaskEvent, TaskStatus, Trigger

#: how much of a summary or error a notification shows
NOTE_LIMIT = 500
#: how much of the failing tool call's error a failure card shows
TOOL_ERROR_LIMIT = 300
INJECTION_LIMIT = 3000
RESULT_LABEL = {ResultStatus.COMPLETED: "completed", ResultStatus.FAILED: "failed",
                ResultStatus.QUESTION: "asks a question", ResultStatus.SILENT: "completed"}
_INJECTION = re.compile(r"\A<task_injection\b([^>]*)>\n?(.*?)\n?</task_injection>\s*\Z",
                        re.DOTALL)
_ATTRIBUTE = re.compile(r'(\w+)="([^"]*)"')


def _task_lines(task: Task, now: datetime) -> dict[str, Any]:
    return dict(task=task, badge=fmt.STATUS_BADGE[task.status], name=fmt.truncate(task.name, 200),
                trigger=fmt.TRIGGER_LABEL[task.trigger], provider=fmt.provider_line(task, 80),
                duration=fmt.duration(task.duration_seconds(now)), tokens=fmt.tokens(task),
                cost=fmt.cost(task.cost_usd))


def task_keyboard(task: Task, key: str) -> InlineKeyboardMarkup:
    """Open, plus Kill while it runs or Answer while it waits (as the task is now)."""
    row = [button("🔎 Open", Action.OPEN_TASK, key, task.id)]
    if task.status is TaskStatus.RUNNING:
        row.append(button("🛑 Kill", Action.KILL_ASK, key, task.id))
    elif task.status is TaskStatus.PAUSED:
        row.append(button("💬 Answer", Action.ANSWER, key, task.id))
    return InlineKeyboardMarkup([row])


def notification(task: Task, status: TaskStatus, payload: dict[str, Any], key: str,
                 now: datetime, failed_call: TaskEvent | None = None) -> Rendered:
    """One status change: the badge of the new status, the task, its summary or error; a
    failure also the failing tool call with its error, so it reads with no tap."""
    note = ""
    if status is TaskStatus.FAILED:
        note = fmt.without_kill_hint(task.error or task.summary
                                     or str(payload.get("message") or ""))
    elif status in (TaskStatus.PAUSED, TaskStatus.COMPLETED):
        note = task.summary or ""
    elif payload.get("old") == TaskStatus.PAUSED.value:
        note = str(payload.get("message") or "")
    context = _task_lines(task, now)
    context.update(badge=fmt.STATUS_BADGE[status], status=status.value,
                   resumed=payload.get("old") == TaskStatus.PAUSED.value,
                   text=markdown_html(note.strip(), NOTE_LIMIT) if note.strip() else "",
                   loop=status is TaskStatus.FAILED
                   and (task.error or "").startswith("Loop detected"),
                   tool=_failed_call(failed_call))
    return Rendered(render("notification", **context), task_keyboard(task, key))


def _failed_call(event: TaskEvent | None) -> dict[str, str] | None:
    if event is None:
        return None
    payload = event.payload
    result = payload.get("result", "")
    error = result if isinstance(result, str) else pretty(result)
    return {"name": fmt.truncate(str(payload.get("tool", "?")), 80),
            "duration": fmt.tool_duration(payload.get("duration_ms")),
            "error": cut(" ".join(error.split()), TOOL_ERROR_LIMIT)}


def stuck(task: Task, reason: str, key: str, now: datetime,
          active_at: datetime | None = None) -> Rendered:
    """A running task that looks stuck; ``reason`` is a StuckReason (bot/push/stuck.py);
    ``active_at`` its last own event."""
    context = _task_lines(task, now)
    idle_since = active_at or task.started_at or task.created_at
    context.update(reason=reason, running=fmt.duration(task.duration_seconds(now)),
                   idle=fmt.duration((now - idle_since).total_seconds()),
                   max_duration=fmt.duration(task.max_duration_minutes * 60))
    return Rendered(render("stuck", **context), task_keyboard(task, key))


@dataclass(frozen=True)
class Injection:
    """A ``<task_injection>`` block taken apart (platform-facts.md)."""

    task_id: int
    attributes: dict[str, str]
    summary: str

    @classmethod
    def parse(cls, task_id: int, block: str) -> Injection:
        match = _INJECTION.match(block.strip())
        if match is None:
            return cls(task_id, {}, block)
        attributes = {k: html.unescape(v) for k, v in _ATTRIBUTE.findall(match.group(1))}
        return cls(task_id, attributes, match.group(2))


def injection(item: Injection, task: Task | None) -> str:
    """The result of a task, readable in its parent chat (not the raw block)."""
    attrs = item.attributes
    status = attrs.get("status", "")
    result = ResultStatus(status) if status in set(ResultStatus) else (
        task.result_status if task and task.result_status else ResultStatus.COMPLETED)
    trigger = attrs.get("trigger", "")
    name = attrs.get("task_name") or (task.name if task else f"Task #{item.task_id}")
    tokens = attrs.get("tokens_used")
    duration = _injection_duration(attrs.get("duration_minutes"), task)
    limit = INJECTION_LIMIT
    while True:
        text = render("injection", badge=fmt.RESULT_BADGE[result], name=fmt.truncate(name, 200),
                      task_id=item.task_id, label=RESULT_LABEL[result],
                      trigger=(fmt.TRIGGER_LABEL[Trigger(trigger)] if trigger in set(Trigger)
                               else "Task"),
                      duration=duration, tokens=(f"{int(tokens):,}" if tokens and tokens.isdigit()
                                               else None),
                      summary=(markdown_html(item.summary.strip(), limit) if item.summary.strip()
                               else ""),
                      question=result is ResultStatus.QUESTION)
        if visible_length(text) <= MAX_TEXT or limit < 200:
            return text
        limit //= 2


def _injection_duration(minutes: str | None, task: Task | None) -> str | None:
    """The one duration format ("Ns", "Nm Ns", "Nh Nm"): the task's own when it is known
    (the block's minutes are rounded), else the block's."""
    if task is not None and task.started_at is not None and task.finished_at is not None:
        return fmt.duration((task.finished_at - task.started_at).total_seconds())
    try:
        return fmt.duration(float(minutes) * 60) if minutes else None
    except ValueError:
        return None


def progress(task_id: int, payload: dict[str, Any], task: Task | None) -> str:
    def number(key: str) -> str:
        value = payload.get(key)
        return f"{int(value):,}" if isinstance(value, int | float) else "?"

    name = str(payload.get("name") or (task.name if task else f"Task #{task_id}"))
    minutes = payload.get("elapsed_minutes")
    elapsed = fmt.duration(minutes * 60) if isinstance(minutes, int | float) else "?"
    return render("progress", task_id=task_id, name=fmt.truncate(name, 200),
                  elapsed=elapsed, tool_calls=number("tool_calls"),
                  tokens=number("tokens"))
