"""Re-announcing group alerts nobody acked: once per alert, after
``[notifications] escalate_after_minutes`` (0: never). Private chats are never re-announced
to — the one person there has seen it or will.

"Once" is ``store.push.mark_escalated``, a compare-and-set on the alert row (its
``escalated_at``), so two checks, two processes or a process after a restart cannot send it
again; a stop lets a claimed re-announcement be sent before it cancels the job
(bot/push/inflight.py). The re-announcement replies to the alert and
carries its 🙋 button. The alerts a digest carries that are due are re-announced in one
message replying to the digest (bot/push/digest_alerts.py).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from telegram import InlineKeyboardMarkup

from taskops.bot.callbacks import Action
from taskops.bot.delivery import Telegram
from taskops.bot.outage import periodic
from taskops.bot.push import alerts, digest_alerts
from taskops.bot.push.inflight import Deliveries
from taskops.bot.push.options import PushOptions
from taskops.bot.ui import button
from taskops.bot.views import ViewKind
from taskops.config import NotificationSettings
from taskops.storage.push_store import Alert
from taskops.storage.store import TaskStore

log = logging.getLogger(__name__)


class Escalation:
    def __init__(self, store: TaskStore, telegram: Telegram, options: PushOptions,
                 notifications: NotificationSettings, deliveries: Deliveries) -> None:
        self.store, self.telegram, self.options = store, telegram, options
        self.notifications, self.deliveries = notifications, deliveries

    async def run(self) -> None:
        if self.notifications.escalate_after_minutes <= 0:
            return
        await periodic(self.store, "alert escalation check", self.options.escalate_check_seconds,
                       self.check)

    async def check(self) -> int:
        """Re-announce the due alerts; returns how many were sent."""
        minutes = self.notifications.escalate_after_minutes
        if minutes <= 0:
            return 0
        now = self.store.clock()
        sent = 0
        carried: dict[str, list[Alert]] = {}
        for alert in await self.store.push.due_escalations(now - timedelta(minutes=minutes)):
            if alert.message_id is None:
                continue
            if alert.group_key is None:
                # carried by a digest: re-announced together, below
                carried.setdefault(alert.view_key, []).append(alert)
                continue
            sent += await self.deliveries.run(self._alert(alert, now),
                                              f"re-announcement of alert {alert.id}")
        for key, due in carried.items():
            sent += await self.deliveries.run(self._digest(key, due, now),
                                              f"re-announcement of digest {key}")
        return sent

    async def _alert(self, alert: Alert, now: datetime) -> int:
        """The one re-announcement of an alert of its own, if this call claims it."""
        assert alert.message_id is not None
        if not await self.store.push.mark_escalated(alert.id):
            return 0
        task = await self.store.find_task(alert.task_id)
        text = alerts.escalation_text(alert, task, now)
        keyboard = InlineKeyboardMarkup([[button(
            "🙋 I'm on it", Action.ALERT, alert.view_key, alerts.AlertVerb.ACK.value)]])
        try:
            await self.telegram.send(alert.chat_id, text, keyboard, reply_to=alert.message_id)
        except Exception as exc:
            log.warning("re-announcement of alert %d to chat %s not sent: %s", alert.id,
                        alert.chat_id, exc)
            return 0
        log.info("alert %d (task#%d) re-announced to chat %s: nobody on it after %d min",
                 alert.id, alert.task_id, alert.chat_id,
                 self.notifications.escalate_after_minutes)
        return 1

    async def _digest(self, key: str, due: list[Alert], now: datetime) -> int:
        """One re-announcement of the alerts a digest carries that nobody acked."""
        view = await self.store.console.get(key)
        claimed = [a for a in due if await self.store.push.mark_escalated(a.id)]
        if view is None or view.kind != ViewKind.DIGEST or not claimed:
            return 0
        names = {t.id: t.name for t in (await self.store.tasks_by_ids(
            [a.task_id for a in claimed[:digest_alerts.ESCALATION_LISTED]])).values()}
        rendered = digest_alerts.escalation(view, claimed, names, now)
        try:
            await self.telegram.send(view.chat_id, rendered.text, rendered.keyboard,
                                     reply_to=claimed[0].message_id)
        except Exception as exc:
            log.warning("re-announcement of digest %s to chat %s not sent: %s", key,
                        view.chat_id, exc)
            return 0
        log.info("%d alerts of digest %s re-announced to chat %s: nobody on them",
                 len(claimed), key, view.chat_id)
        return 1

