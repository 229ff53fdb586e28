"""Database rows to the plain data objects the rest of taskops sees."""

from __future__ import annotations

from typing import Any

from taskops.storage.domain import EventKind, ResultStatus, Task, TaskEvent, TaskStatus, Trigger
from taskops.storage.models import TaskRow

#: The columns ``row_to_task`` reads, as table columns: a list page selects these rather
#: than the mapped class, which made every read set up the ORM's compile state and carry
#: the columns a task object does not show (claims, leases, sort keys).
TASK_COLUMNS = tuple(TaskRow.__table__.c[name] for name in (
    "id", "name", "prompt", "status", "trigger", "trigger_source_id", "provider", "model",
    "used_default", "max_duration_minutes", "parent_session", "restarted_from_id",
    "created_at", "started_at", "finished_at", "prompt_tokens", "completion_tokens",
    "cost_usd", "tool_call_count", "result_status", "summary", "error", "killed_by",
    "last_event_at", "event_count"))
#: ... and a list page's sort keys, which its anchors are made of
PAGE_COLUMNS = (*TASK_COLUMNS, *(TaskRow.__table__.c[name] for name in (
    "sort_name", "total_tokens", "duration_ms")))


def row_to_task(row: Any) -> Task:
    return Task(
        id=row.id, name=row.name, prompt=row.prompt, status=TaskStatus(row.status),
        trigger=Trigger(row.trigger), trigger_source_id=row.trigger_source_id,
        provider=row.provider, model=row.model, used_default=bool(row.used_default),
        max_duration_minutes=row.max_duration_minutes, parent_session=row.parent_session,
        restarted_from_id=row.restarted_from_id, created_at=row.created_at,
        started_at=row.started_at, finished_at=row.finished_at,
        prompt_tokens=row.prompt_tokens, completion_tokens=row.completion_tokens,
        cost_usd=row.cost_usd, tool_call_count=row.tool_call_count,
        result_status=ResultStatus(row.result_status) if row.result_status else None,
        summary=row.summary, error=row.error, killed_by=row.killed_by,
        last_event_at=row.last_event_at, event_count=row.event_count,
    )


def row_to_event(row: Any) -> TaskEvent:
    return TaskEvent(id=row.id, task_id=row.task_id, seq=row.seq, at=row.at,
                     kind=EventKind(row.kind), payload=dict(row.payload))
