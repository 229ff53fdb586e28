"""Alerts: push messages about a task that need a person, as objects with a lifecycle.

A failure, pause (question), stuck or loop message is stored as an alert (``store.push``,
table ``push_alerts``) beside the delivery cursor: sent → acked (🙋 "I'm on it", by whom,
shown to everyone in the chat) → resolved (restarted as #N, killed, answered, completed),
and re-announced once when nobody acked it in a group within
``[notifications] escalate_after_minutes``. The alert message itself is only ever edited to
show that lifecycle ("🔁 restarted by Ann as #5066 → 🟢 completed"); Open, Kill, Restart
and Answer pressed on it open their screen as a new message replying to it.

A recurring task (same cronjob, else same name, whatever started it) that keeps ending the
same way updates one message ("completed ×14 since 10:02") instead of adding one per run:
its completions always, its failures while the failure alert is still open (not acked,
not resolved) — both only while runs keep coming (``RECURRENCE_GAP``).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from taskops.bot import format as fmt
from taskops.bot.callbacks import Action
from taskops.bot.delivery import ChatGone, ChatMoved, Rejected, Telegram
from taskops.bot.flood import INTERACTIVE, SendPolicy
from taskops.bot.push import digest_alerts
from taskops.bot.render import render
from taskops.bot.ui import Rendered, button
from taskops.bot.views import ViewKind
from taskops.storage.domain import ResultStatus, Task, TaskEvent, TaskStatus
from taskops.storage.push_store import Alert, AlertKind
from taskops.storage.store import TaskStore

log = logging.getLogger(__name__)

LOOP_PREFIX = "Loop detected"
#: a recurrence's message takes no more runs once it went this long without one (then a
#: mute is over, say; a job failing every few minutes keeps its one message)
RECURRENCE_GAP = timedelta(minutes=30)
#: how a kill's status-change message starts (storage: "Killed by <who> from <where>")
KILLED_PREFIX = "Killed by "
ANSWERED_PREFIX = "Answered by "


class AlertVerb(StrEnum):
    """The argument of an alert button (``Action.ALERT``)."""

    ACK = "ack"
    OPEN = "open"
    KILL = "kill"
    RESTART = "restart"
    ANSWER = "answer"
    MUTE_HOUR = "m1"
    MUTE_EIGHT = "m8"

    @property
    def mute_hours(self) -> int | None:
        return {AlertVerb.MUTE_HOUR: 1, AlertVerb.MUTE_EIGHT: 8}.get(self)


def group_key(task: Task) -> str:
    """The recurrence a task belongs to: its cronjob, else its name (hashed to fit)."""
    if task.trigger_source_id is not None:
        return f"cron:{task.trigger_source_id}"
    return "name:" + hashlib.sha1(task.name.casefold().encode()).hexdigest()[:32]


def alert_kind(task: Task, status: TaskStatus) -> AlertKind | None:
    if status is TaskStatus.FAILED:
        error = task.error or task.summary or ""
        return AlertKind.LOOP if error.startswith(LOOP_PREFIX) else AlertKind.FAILED
    if status is TaskStatus.PAUSED:
        return AlertKind.PAUSED
    if status is TaskStatus.COMPLETED:
        return AlertKind.COMPLETED
    return None


def coalesces(kind: AlertKind) -> bool:
    """Whether another run ending this way joins the recurrence's message (same cronjob,
    else same name, whatever started it: a task someone reruns by hand that keeps failing
    is as much a recurrence as a cronjob). A question or a stuck run each wait for a
    person on their own."""
    return kind in (AlertKind.COMPLETED, AlertKind.FAILED, AlertKind.LOOP)


def joins(latest: Alert | None, kind: AlertKind, now: datetime) -> bool:
    """The recurrence's newest message takes one more run that ended as ``kind``: while it
    is recent (an edit makes no sound; a message last touched hours ago is far up the
    chat, where nobody would see the count grow) and, for a failure, still open."""
    if latest is None or latest.kind is not kind or latest.message_id is None:
        return False
    if now - latest.updated_at > RECURRENCE_GAP:
        return False
    return kind is AlertKind.COMPLETED or latest.is_open


# --- lifecycle ----------------------------------------------------------------------------


def lifecycle_step(event: TaskEvent, task: Task | None) -> str | None:
    """The lifecycle line part a status change of the followed task adds (None: nothing)."""
    new = event.payload.get("new")
    old = event.payload.get("old")
    message = str(event.payload.get("message") or "")
    if new == TaskStatus.FAILED.value:
        if message.startswith(KILLED_PREFIX):
            who = task.killed_by if task and task.killed_by else \
                message[len(KILLED_PREFIX):].split(" from ")[0]
            return f"🛑 killed by {who}"
        return "🔴 failed"
    if new == TaskStatus.COMPLETED.value:
        silent = task is not None and task.result_status is ResultStatus.SILENT
        return "🟢 completed" + (" (silent)" if silent else "")
    if new == TaskStatus.PAUSED.value:
        return "🟠 paused with a question"
    if new == TaskStatus.RUNNING.value and old == TaskStatus.PAUSED.value:
        if message.startswith(ANSWERED_PREFIX):
            return f"💬 answered by {message[len(ANSWERED_PREFIX):]}"
        return "💬 answered"
    return None


def covers(alert: Alert, event: TaskEvent) -> bool:
    """A change the alert's lifecycle line already tells, so no message of its own: the
    kill of a task someone is looking at, or the completion of one it followed."""
    new = event.payload.get("new")
    message = str(event.payload.get("message") or "")
    return (new == TaskStatus.COMPLETED.value
            or (new == TaskStatus.FAILED.value and message.startswith(KILLED_PREFIX)))


# --- rendering ----------------------------------------------------------------------------


def render_alert(alert: Alert, followed: Task | None, name: str, tz: ZoneInfo,
                 now: datetime) -> Rendered:
    """The alert message as it is now: its first text, the run count of a recurrence, the
    lifecycle line, who is on it; buttons for what can be done to the followed task."""
    text = render("alert", body=Markup(alert.text), count=alert.count,
                  kind=alert.kind.value, name=fmt.truncate(name, 120),
                  since=fmt.clock_time(alert.created_at, tz, now),
                  lifecycle=" → ".join(alert.lifecycle),
                  acked_by=alert.acked_by,
                  acked_at=fmt.clock_time(alert.acked_at, tz, now) if alert.acked_at else None)
    return Rendered(text, alert_keyboard(alert, followed))


def alert_keyboard(alert: Alert, followed: Task | None) -> InlineKeyboardMarkup:
    key = alert.view_key
    rows: list[list[InlineKeyboardButton]] = []
    if alert.kind.needs_person and alert.is_open:
        rows.append([button("🙋 I'm on it", Action.ALERT, key, AlertVerb.ACK.value)])
    row = [button("🔎 Open", Action.ALERT, key, AlertVerb.OPEN.value)]
    status = followed.status if followed is not None else None
    if status is TaskStatus.RUNNING:
        row.append(button("🛑 Kill", Action.ALERT, key, AlertVerb.KILL.value))
    elif status is TaskStatus.PAUSED:
        row.append(button("💬 Answer", Action.ALERT, key, AlertVerb.ANSWER.value))
    elif status in (TaskStatus.FAILED, TaskStatus.COMPLETED) and alert.kind is not \
            AlertKind.COMPLETED:
        row.append(button("🔁 Restart", Action.ALERT, key, AlertVerb.RESTART.value))
    rows.append(row)
    if alert.kind in (AlertKind.FAILED, AlertKind.LOOP, AlertKind.COMPLETED):
        rows.append([button("🔇 1 h", Action.ALERT, key, AlertVerb.MUTE_HOUR.value),
                     button("🔇 8 h", Action.ALERT, key, AlertVerb.MUTE_EIGHT.value)])
    return InlineKeyboardMarkup(rows)


async def redraw(store: TaskStore, telegram: Telegram, alert: Alert,
                 policy: SendPolicy = INTERACTIVE) -> bool:
    """Edit the alert message to show its state; False when it could not be edited. An
    alert a digest carries redraws the digest (bot/push/digest_alerts.py)."""
    if alert.message_id is None:
        return False
    if alert.group_key is None:
        view = await store.console.get(alert.view_key)
        if view is not None and view.kind == ViewKind.DIGEST:
            return await digest_alerts.redraw(store, telegram, view, policy)
    followed = await store.find_task(alert.follow_task_id)
    announced = followed if alert.follow_task_id == alert.task_id else \
        await store.find_task(alert.task_id)
    name = announced.name if announced is not None else f"Task #{alert.task_id}"
    rendered = render_alert(alert, followed, name, store.tz, store.clock())
    try:
        await telegram.edit(alert.chat_id, alert.message_id, rendered.text, rendered.keyboard,
                            policy=policy)
    except (ChatGone, ChatMoved, Rejected) as exc:
        log.info("alert %d in chat %s not edited: %s", alert.id, alert.chat_id, exc)
        return False
    return True


async def restarted(store: TaskStore, telegram: Telegram, old_id: int, new: Task,
                    by: str) -> None:
    """A task was restarted: every alert following it says so and follows the new run."""
    now = store.clock()
    for alert in await store.push.alerts_following([old_id]):
        lifecycle = [*alert.lifecycle, f"🔁 restarted by {by} as #{new.id}"]
        await store.push.update_alert(alert.id, lifecycle=lifecycle, follow_task_id=new.id,
                                      resolved_at=alert.resolved_at or now)
        updated = await store.push.alert(alert.id)
        if updated is not None:
            await redraw(store, telegram, updated)


async def apply_lifecycle(store: TaskStore, telegram: Telegram, chat_id: int,
                          events: list[TaskEvent], tasks: dict[int, Task],
                          policy: SendPolicy) -> list[Alert]:
    """Status changes of followed tasks, added to their alerts in one chat (each once);
    returns the chat's alerts that follow a task of these events (as now)."""
    ids = sorted({e.task_id for e in events})
    alerts = await store.push.alerts_following(ids, chat_id)
    result = []
    #: one redraw per message (a digest carries many alerts), once all are updated
    changed: dict[str, Alert] = {}
    for alert in alerts:
        steps = []
        seen = alert.seen_event_id
        for event in events:
            if event.task_id != alert.follow_task_id or event.id <= seen:
                continue
            seen = max(seen, event.id)
            step = lifecycle_step(event, tasks.get(event.task_id))
            if step is not None:
                steps.append(step)
        if seen == alert.seen_event_id:
            result.append(alert)
            continue
        values: dict[str, object] = {"seen_event_id": seen}
        if steps:
            values["lifecycle"] = [*alert.lifecycle, *steps]
            values["resolved_at"] = alert.resolved_at or store.clock()
        await store.push.update_alert(alert.id, **values)
        updated = await store.push.alert(alert.id)
        if updated is None:
            continue
        result.append(updated)
        if steps:
            changed[updated.view_key] = updated
    for alert in changed.values():
        await redraw(store, telegram, alert, policy)
    return result


def escalation_text(alert: Alert, task: Task | None, now: datetime) -> str:
    name = task.name if task is not None else f"Task #{alert.task_id}"
    return render("escalation", kind=alert.kind.value, task_id=alert.task_id,
                  name=fmt.truncate(name, 120),
                  waiting=fmt.duration((now - alert.created_at).total_seconds()),
                  badge=escape(fmt.STATUS_BADGE[task.status]) if task else "")
