"""The platform's rules, written once: what the store writes and what everyone else reads.

Pure functions over domain values — the final-message format, the ``<task_injection>``
block, cost, and the payload of every event a transition writes. The store's transitions
(``storage.transitions``) and the demo seeder both build their rows from these, so seeded
history and live history cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from taskops.storage.domain import (
    EventKind,
    FinalMessage,
    ResultStatus,
    TaskEvent,
    TaskStatus,
    Trigger,
)

NAME_MAX = 200
STARTED_MESSAGE = "Task started"
WAITING_MESSAGE = "Waiting for an answer"
SILENT_STATUS_MESSAGE = "Silent completion — nothing to report"
PAUSED_TIMEOUT_MESSAGE = "timeout — no response received"
MAX_DURATION_MESSAGE = "Max duration exceeded"


def sort_name(name: str) -> str:
    """The name sort's key: case-insensitive, the same on every engine."""
    return name.casefold()[:NAME_MAX]


def clean(value: Any) -> Any:
    """Replace NUL characters, which PostgreSQL text and JSONB refuse and SQLite keeps, so
    agent-written text is stored the same way on both engines."""
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


# --- the final-message format (platform-facts.md) -----------------------------------------

_STATUS_LINE = re.compile(
    r"^[ \t]*\**STATUS\**[ \t]*:\**[ \t]*\**(completed|failed|question|silent)\**[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_SUMMARY_LINE = re.compile(r"^[ \t]*\**SUMMARY\**[ \t]*:\**[ \t]?", re.IGNORECASE | re.MULTILINE)


def parse_final_message(text: str) -> FinalMessage:
    """Parse ``STATUS: ... / SUMMARY: ...`` (platform-facts.md, "final-message format").

    The last STATUS line wins, since agents sometimes quote the format earlier in their
    narration. The summary is everything after the following SUMMARY: marker (same line
    or the lines below). Without a STATUS line the whole text is a completed summary.
    """
    matches = list(_STATUS_LINE.finditer(text))
    if not matches:
        return FinalMessage(ResultStatus.COMPLETED, text.strip(), formatted=False)
    status_match = matches[-1]
    result = ResultStatus(status_match.group(1).lower())
    rest = text[status_match.end() :]
    summary_match = _SUMMARY_LINE.search(rest)
    if summary_match:
        summary = rest[summary_match.end() :].strip()
    else:
        # STATUS without SUMMARY: keep what the agent wrote around it rather than nothing.
        summary = (text[: status_match.start()] + rest).strip()
    return FinalMessage(result, summary, formatted=True)


def runtime_failure(error: str) -> FinalMessage:
    """What a failure made by the runtime or an admin (kill, limits) records as final."""
    return FinalMessage(ResultStatus.FAILED, error, formatted=True)


def status_message(final: FinalMessage) -> str:
    """The message of the status change an agent's final message causes."""
    if final.result is ResultStatus.SILENT:
        return SILENT_STATUS_MESSAGE
    if final.result is ResultStatus.QUESTION:
        return WAITING_MESSAGE
    return f"Task {final.task_status.value}"


# --- event payloads ------------------------------------------------------------------------


def status_change_payload(old: TaskStatus | None, new: TaskStatus,
                          message: str) -> dict[str, Any]:
    return {"old": None if old is None else old.value, "new": new.value, "message": message}


def started_payload() -> dict[str, Any]:
    return status_change_payload(None, TaskStatus.RUNNING, STARTED_MESSAGE)


def final_payload(final: FinalMessage, text: str | None) -> dict[str, Any]:
    """The ``final`` event: the parsed result and the agent's own text (None: not the
    agent's, e.g. a kill)."""
    return {"status": final.result.value, "summary": final.summary, "text": text,
            "formatted": final.formatted}


def _attr(value: object) -> str:
    return (str(value).replace("&", "&amp;").replace('"', "&quot;")
            .replace("<", "&lt;").replace(">", "&gt;"))


def injection_block(*, task_id: int, task_name: str, status: ResultStatus, trigger: Trigger,
                    duration_minutes: float, tokens_used: int, summary: str) -> str:
    """The ``<task_injection>`` block delivered to the parent session (platform-facts.md).

    Attribute values are escaped so a task name cannot break out of the tag; the
    summary body is passed through as the agent wrote it.
    """
    return (
        f'<task_injection task_id="{task_id}" task_name="{_attr(task_name)}" '
        f'status="{status}" trigger="{trigger}" '
        f'duration_minutes="{duration_minutes:.1f}" tokens_used="{tokens_used}">\n'
        f"{summary}\n</task_injection>"
    )


def injection_payload(*, task_id: int, task_name: str, trigger: Trigger,
                      parent_session: str | None, final: FinalMessage,
                      started_at: datetime | None, at: datetime,
                      tokens_used: int) -> dict[str, Any] | None:
    """The ``injection`` event of an ended or paused task; None when silent (nothing is
    delivered to the parent session)."""
    if final.result is ResultStatus.SILENT:
        return None
    minutes = 0.0 if started_at is None else max(0.0, (at - started_at).total_seconds()) / 60
    block = injection_block(task_id=task_id, task_name=task_name, status=final.result,
                            trigger=trigger, duration_minutes=minutes, tokens_used=tokens_used,
                            summary=final.summary)
    return {"parent_session": parent_session, "text": block, "status": final.result.value}


# --- numbers kept on the task row ------------------------------------------------------------


def estimate_cost(price_in: float, price_out: float, prompt_tokens: int,
                  completion_tokens: int) -> float:
    """USD for the given tokens at per-million prices (platform-facts.md, "Cost")."""
    return prompt_tokens / 1e6 * price_in + completion_tokens / 1e6 * price_out


def duration_ms(started_at: datetime | None, finished_at: datetime | None) -> int | None:
    """The stored duration of an ended task (what the duration sort reads)."""
    if started_at is None or finished_at is None:
        return None
    return int((finished_at - started_at).total_seconds() * 1000)


def running_seconds(history: Iterable[TaskEvent], started_at: datetime | None,
                    now: datetime) -> float:
    """Seconds a task has spent running, from its status changes (paused time excluded)."""
    total = 0.0
    since: datetime | None = None
    seen_change = False
    for event in history:
        if event.kind is not EventKind.STATUS_CHANGE:
            continue
        seen_change = True
        if event.payload.get("new") == TaskStatus.RUNNING.value:
            since = since or event.at
        elif since is not None:
            total += (event.at - since).total_seconds()
            since = None
    if not seen_change:
        since = started_at
    if since is not None:
        total += (now - since).total_seconds()
    return max(0.0, total)
