"""Stuck tasks: running with no activity for ``[notifications] stuck_after_minutes``, or
past their max duration, announced once to the subscribed chats (with Kill).

Activity is the task's own events only — tool calls, text, thinking, status changes,
answers (``store.push.last_activity``). The periodic status updates ("still running") and the
result delivered to the parent chat are messages *about* the task: they never count, so a
task that only produces status updates is stuck all the same.

"Once" is a ``console_state`` row per task (kind "stuck") created with insert-if-absent, so
two checks — or two processes — cannot both announce it. The row lists the chats still to
tell; a crash part-way resumes from that list on the next check. A notice sent is recorded
(its alert, the chat off the list) in one save a stop does not cut (bot/push/inflight.py):
cut, the next process would announce it again.

Max duration is wall-clock from the start, paused time included (``storage.rules.
past_deadline``, the rule the worker enforces), and a grace period lets the worker act first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any

from taskops.bot.delivery import ChatGone, ChatMoved, Rejected, Telegram, Unconfirmed
from taskops.bot.outage import periodic
from taskops.bot.push import alerts, messages
from taskops.bot.push.changes import view_body
from taskops.bot.push.inflight import Deliveries, kept
from taskops.bot.push.options import PushOptions
from taskops.bot.push.subscription import is_muted, settings_of
from taskops.bot.views import ViewKind, ViewState
from taskops.config import NotificationSettings
from taskops.storage.console import ViewUpdate
from taskops.storage.domain import Task, TaskStatus
from taskops.storage.push_store import Alert, AlertKind, NewAlert
from taskops.storage.rules import past_deadline
from taskops.storage.store import TaskStore

log = logging.getLogger(__name__)


class StuckReason(StrEnum):
    #: no event for ``[notifications] stuck_after_minutes``
    IDLE = "idle"
    #: running (pauses not counted) past its max duration and the grace period
    MAX_DURATION = "max_duration"


def stuck_key(task_id: int) -> str:
    return f"stuck{task_id}"


class StuckWatch:
    def __init__(self, store: TaskStore, telegram: Telegram, options: PushOptions,
                 notifications: NotificationSettings, deliveries: Deliveries) -> None:
        self.store, self.telegram, self.options = store, telegram, options
        self.notifications, self.deliveries = notifications, deliveries

    async def run(self) -> None:
        await periodic(self.store, "stuck-task check", self.options.stuck_check_seconds,
                       self.check)

    async def reason(self, task: Task, now: datetime,
                     active_at: datetime | None = None) -> StuckReason | None:
        """``active_at``: the task's last own event (``store.push.last_activity``)."""
        if task.status is not TaskStatus.RUNNING:
            return None
        quiet_since = active_at or task.started_at or task.created_at
        if (now - quiet_since).total_seconds() >= self.notifications.stuck_after_minutes * 60:
            return StuckReason.IDLE
        grace = timedelta(seconds=self.options.max_duration_grace_seconds)
        if past_deadline(task.started_at, task.max_duration_minutes, now - grace):
            return StuckReason.MAX_DURATION
        return None

    async def check(self) -> int:
        """Announce newly stuck tasks; returns how many messages were sent."""
        now = self.store.clock()
        subscriptions = [s for s in await self.store.push.subscriptions()
                         if not is_muted(s, now)]
        if subscriptions:
            running = [t for t in await self.store.running_tasks()
                       if t.status is TaskStatus.RUNNING]
            # Only a task started that long ago can have been quiet that long (its newest
            # event of any kind says nothing: status updates keep coming from a stuck task).
            limit = self.notifications.stuck_after_minutes * 60
            maybe = [t.id for t in running
                     if (now - (t.started_at or t.created_at)).total_seconds() >= limit]
            active = await self.store.push.last_activity(maybe)
            for task in running:
                reason = await self.reason(task, now, active.get(task.id))
                if reason is None:
                    continue
                group = alerts.group_key(task)
                chats = [s.chat_id for s in subscriptions if settings_of(s).wants_stuck(task)
                         and not settings_of(s).group_muted(group, now)]
                if chats and await self.store.console.create_once(
                        stuck_key(task.id), ViewKind.STUCK, 0,
                        {"task_id": task.id, "reason": reason, "pending": chats}):
                    log.info("task#%d looks stuck (%s)", task.id, reason)
        return await self._deliver_pending()

    async def _deliver_pending(self) -> int:
        sent = 0
        for record in await self.store.console.of_kind(ViewKind.STUCK):
            pending = [int(c) for c in record.body.get("pending", [])]
            if not pending:
                continue
            task = await self.store.find_task(int(record.body["task_id"]))
            for chat_id in list(pending):
                pending.remove(chat_id)
                told = partial(self.store.console.put, record.key, ViewKind.STUCK, 0,
                               {**record.body, "pending": list(pending)})
                if task is None or task.status is not TaskStatus.RUNNING:
                    await told()
                    continue
                stored = record.body.get("reason")
                reason = (StuckReason(stored) if stored in set(StuckReason)
                          else StuckReason.IDLE)
                sent += await self.deliveries.run(self._announce(task, reason, chat_id, told),
                                                  f"stuck notice of task#{task.id}")
        return sent

    async def _announce(self, task: Task, reason: StuckReason, chat_id: int,
                        told: Callable[[], Coroutine[Any, Any, Any]]) -> int:
        """Send the notice to one chat; ``told`` takes the chat off the task's list, saved
        with the notice's alert."""
        active_at = (await self.store.push.last_activity([task.id])).get(task.id)
        body = view_body(ViewState().open_task(task.id), ViewKind.NOTICE)
        key = await self.store.console.create(ViewKind.NOTICE, chat_id, body)
        now = self.store.clock()
        base = messages.stuck(task, reason, key, now, active_at)
        draft = Alert(0, chat_id, task.id, task.id, AlertKind.STUCK, key, None, None, 1,
                      base.text, [], 0, now, now, None, None, None, None)
        rendered = alerts.render_alert(draft, task, task.name, self.store.tz, now)
        try:
            message = await self.telegram.send(chat_id, rendered.text, rendered.keyboard)
        except ChatGone as exc:
            await self.store.push.unsubscribe(chat_id)
            log.warning("chat %s unsubscribed: Telegram says %s", chat_id, exc.reason)
            await told()
            return 0
        except (ChatMoved, Rejected) as exc:
            log.warning("stuck notice of task#%d to chat %s not sent: %s", task.id, chat_id,
                        exc)
            await told()
            return 0
        except Unconfirmed as exc:  # may have arrived, even twice: not sent a third time
            log.warning("stuck notice of task#%d to chat %s unconfirmed: %s", task.id,
                        chat_id, exc)
            await kept(told())
            return 1

        async def recorded() -> None:
            await self.store.console.update(ViewUpdate(key, message.message_id, body))
            await self.store.push.add_alert(chat_id, NewAlert(
                task.id, AlertKind.STUCK, key, message.message_id, None, base.text))
            await told()

        await kept(recorded())
        return 1
