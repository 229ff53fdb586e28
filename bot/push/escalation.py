"""Re-announcing group alerts nobody acked: once per alert, after
``[notifications] escalate_after_minutes`` (0: never). Private chats are never re-announced
to — the one person there has seen it or will.

"Once" is ``store.push.mark_escalated``, a compare-and-set on the alert row, so two checks
(or two processes) cannot both send it. The re-announcement replies to the alert and
carries its 🙋 button.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from telegram import InlineKeyboardMarkup

from taskops.bot.callbacks import Action
from taskops.bot.delivery import Telegram
from taskops.bot.outage import periodic
from taskops.bot.push import alerts
from taskops.bot.push.options import PushOptions
from taskops.bot.ui import button
from taskops.config import NotificationSettings
from taskops.storage.store import TaskStore

log = logging.getLogger(__name__)


class Escalation:
    def __init__(self, store: TaskStore, telegram: Telegram, options: PushOptions,
                 notifications: NotificationSettings) -> None:
        self.store, self.telegram, self.options = store, telegram, options
        self.notifications = notifications

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
        for alert in await self.store.push.due_escalations(now - timedelta(minutes=minutes)):
            if alert.message_id is None or not await self.store.push.mark_escalated(alert.id):
                continue
            task = await self.store.find_task(alert.task_id)
            text = alerts.escalation_text(alert, task, now)
            keyboard = InlineKeyboardMarkup([[button(
                "🙋 I'm on it", Action.ALERT, alert.view_key, alerts.AlertVerb.ACK.value)]])
            try:
                await self.telegram.send(alert.chat_id, text, keyboard,
                                         reply_to=alert.message_id)
            except Exception as exc:
                log.warning("re-announcement of alert %d to chat %s not sent: %s", alert.id,
                            alert.chat_id, exc)
                continue
            log.info("alert %d (task#%d) re-announced to chat %s: nobody on it after %d min",
                     alert.id, alert.task_id, alert.chat_id, minutes)
            sent += 1
        return sent

