"""Which status changes of a feed batch a subscribed chat gets a message about."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from taskops.bot.push import alerts
from taskops.bot.push.feed import Batch
from taskops.bot.push.subscription import is_muted, settings_of
from taskops.bot.views import ViewKind, ViewState, encode
from taskops.storage.domain import EventKind, ResultStatus, Task, TaskEvent, TaskStatus
from taskops.storage.push_store import Alert, DigestItem, Subscription


@dataclass(frozen=True)
class Change:
    index: int
    event: TaskEvent
    task: Task
    status: TaskStatus

    @property
    def item(self) -> DigestItem:
        return DigestItem(self.task.id, self.status, self.task.name)


def view_body(state: ViewState, kind: ViewKind) -> dict[str, Any]:
    """A push message's view: the screen its buttons act on, marked as not pressed yet."""
    return encode(state.pushed_as(kind))


def matching(batch: Batch, sub: Subscription, now: datetime,
             covered: frozenset[int] = frozenset()) -> list[Change]:
    """The status changes of a batch the chat gets a message about.

    Never a silent completion (the platform's "nothing to report"), nothing of a muted
    recurrence, and nothing an alert's lifecycle line already tells (``covered`` event ids).
    """
    if is_muted(sub, now):
        return []
    wants = settings_of(sub)
    changes = []
    for index, event in enumerate(batch.events):
        if event.kind is not EventKind.STATUS_CHANGE or event.id in covered:
            continue
        new = event.payload.get("new")
        task = batch.tasks.get(event.task_id)
        if task is None or new not in set(TaskStatus):
            continue
        status = TaskStatus(new)
        if status is TaskStatus.COMPLETED and task.result_status is ResultStatus.SILENT:
            continue
        if wants.muted_groups and wants.group_muted(alerts.group_key(task), now):
            continue
        if wants.wants_status(task, status):
            changes.append(Change(index, event, task, status))
    return changes


def covered_by(batch: Batch, following: list[Alert]) -> frozenset[int]:
    """Status changes of the batch that an alert of the chat follows and already tells in
    its lifecycle line (a batch starts after the change that made any alert of the chat)."""
    by_task: dict[int, list[Alert]] = {}
    for alert in following:
        by_task.setdefault(alert.follow_task_id, []).append(alert)
    return frozenset(
        e.id for e in batch.events
        if e.kind is EventKind.STATUS_CHANGE
        and any(alerts.covers(a, e) for a in by_task.get(e.task_id, ())))
