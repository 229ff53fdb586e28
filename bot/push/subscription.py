"""What a subscribed chat wants to hear about, stored as the subscription's settings JSON.

"Running" means a task started running (a worker picked it up) or resumed after its
question was answered: creating a task writes no change-feed event, and a task that never
starts is caught by stuck detection instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from taskops.storage.domain import Task, TaskStatus, Trigger
from taskops.storage.push_store import Subscription

#: the order of the status buttons
STATUS_ORDER = (TaskStatus.FAILED, TaskStatus.PAUSED, TaskStatus.COMPLETED, TaskStatus.RUNNING)
#: quiet by default: what needs a person (failures, questions; stuck is its own switch);
#: completions are opt-in
DEFAULT_STATUSES = frozenset({TaskStatus.FAILED, TaskStatus.PAUSED})
#: "until unmuted" is stored as a date no one will reach
MUTED_FOREVER = datetime(9999, 12, 31, tzinfo=UTC)
#: the argument of the stuck toggle (the status toggles carry a status value)
STUCK = "stuck"


class Mute(StrEnum):
    #: for one hour
    HOUR = "1"
    #: for eight hours
    EIGHT_HOURS = "8"
    #: until someone unmutes the chat
    FOREVER = "inf"
    #: unmute now
    OFF = "off"

    def until(self, now: datetime) -> datetime | None:
        if self is Mute.OFF:
            return None
        if self is Mute.FOREVER:
            return MUTED_FOREVER
        return now + timedelta(hours=int(self.value))


@dataclass(frozen=True)
class NotifySettings:
    statuses: frozenset[TaskStatus] = DEFAULT_STATUSES
    triggers: frozenset[Trigger] = field(default_factory=lambda: frozenset(Trigger))
    #: announce running tasks that look stuck
    stuck: bool = True
    #: recurrences (bot/push/alerts.group_key: a cronjob or a task name) muted until when
    muted_groups: tuple[tuple[str, datetime], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"statuses": sorted(s.value for s in self.statuses),
                "triggers": sorted(t.value for t in self.triggers),
                "stuck": self.stuck,
                "muted_groups": {k: at.isoformat() for k, at in self.muted_groups}}

    def group_muted(self, key: str, now: datetime) -> bool:
        return any(k == key and until > now for k, until in self.muted_groups)

    def with_group_muted(self, key: str, until: datetime, now: datetime) -> NotifySettings:
        kept = tuple((k, at) for k, at in self.muted_groups if k != key and at > now)
        return replace(self, muted_groups=(*kept, (key, until)))

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> NotifySettings:
        statuses = body.get("statuses")
        triggers = body.get("triggers")
        return cls(
            statuses=(frozenset(TaskStatus(s) for s in statuses if s in set(TaskStatus))
                      if isinstance(statuses, list) else DEFAULT_STATUSES),
            triggers=(frozenset(Trigger(t) for t in triggers if t in set(Trigger))
                      if isinstance(triggers, list) else frozenset(Trigger)),
            stuck=bool(body.get("stuck", True)),
            muted_groups=_muted_groups(body.get("muted_groups")),
        )

    def toggled(self, what: str) -> NotifySettings:
        """Flip a status, a trigger or the stuck switch (by its value); unknown: unchanged."""
        if what == STUCK:
            return replace(self, stuck=not self.stuck)
        if what in set(TaskStatus):
            return replace(self, statuses=self.statuses ^ {TaskStatus(what)})
        if what in set(Trigger):
            return replace(self, triggers=self.triggers ^ {Trigger(what)})
        return self

    def wants_status(self, task: Task, status: TaskStatus) -> bool:
        return status in self.statuses and task.trigger in self.triggers

    def wants_stuck(self, task: Task) -> bool:
        return self.stuck and task.trigger in self.triggers


def _muted_groups(value: Any) -> tuple[tuple[str, datetime], ...]:
    if not isinstance(value, dict):
        return ()
    result = []
    for key, at in value.items():
        try:
            until = datetime.fromisoformat(str(at))
        except ValueError:
            continue
        result.append((str(key), until if until.tzinfo else until.replace(tzinfo=UTC)))
    return tuple(result)


def settings_of(subscription: Subscription) -> NotifySettings:
    return NotifySettings.from_json(subscription.settings)


def is_muted(subscription: Subscription, now: datetime) -> bool:
    return subscription.muted_until is not None and subscription.muted_until > now
