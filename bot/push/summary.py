"""The shift summary: at ``[notifications] summary_at`` (local time, ``[ui] timezone``) each
subscribed chat gets the last 24 h in figures and the last 7 days' cost chart
(bot/usage_view.py).

It runs with the other push jobs, so only the leader of the cluster sends it, and each
send is fenced by the leadership (bot/delivery.py). A chat's summary of a day is claimed in
the store before it is sent, so a fail-over or a restart around the hour sends it at most
once; one that was due while no process led goes out when one takes over, within
``CATCH_UP`` of the hour (later, the next day's is the one that counts). A muted chat
gets none.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, timedelta

from taskops.bot import usage_view
from taskops.bot.delivery import ChatGone, ChatMoved, Rejected, Telegram, Unconfirmed
from taskops.bot.outage import Streak
from taskops.bot.push.inflight import Deliveries
from taskops.bot.push.options import PushOptions
from taskops.bot.push.subscription import is_muted
from taskops.bot.usage_view import Period, Report
from taskops.bot.views import ViewKind
from taskops.config import NotificationSettings
from taskops.storage.store import TaskStore

log = logging.getLogger(__name__)

CATCH_UP = timedelta(hours=1)


def claim_key(chat_id: int, day: date) -> str:
    return f"sum{chat_id}:{day:%Y%m%d}"


class ShiftSummary:
    def __init__(self, store: TaskStore, telegram: Telegram, options: PushOptions,
                 notifications: NotificationSettings, deliveries: Deliveries) -> None:
        self.store, self.telegram, self.options = store, telegram, options
        self.notifications, self.deliveries = notifications, deliveries

    def due_day(self, now: datetime) -> date | None:
        """The local day whose summary is due now, if one is."""
        at = self.notifications.summary_at
        if at is None:
            return None
        local = now.astimezone(self.store.tz)
        due = datetime.combine(local.date(), at, self.store.tz)
        return local.date() if due <= local < due + CATCH_UP else None

    async def run(self) -> None:
        if self.notifications.summary_at is None:
            return  # off (the default)
        streak = Streak("shift summary")
        while True:
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not await streak.failed(self.store, error):
                    log.exception("shift summary: pass failed; trying again")
            else:
                streak.ok()
            await asyncio.sleep(self.options.summary_check_seconds)

    async def check(self) -> int:
        """Send the summary due now to every chat that has not had it; how many got it."""
        now = self.store.clock()
        day = self.due_day(now)
        if day is None:
            return 0
        report: Report | None = None
        sent = 0
        for sub in await self.store.push.subscriptions():
            if is_muted(sub, now):
                continue
            key = claim_key(sub.chat_id, day)
            if await self.store.console.get(key) is not None:
                continue
            # Drawn once a pass (the same figures for every chat), and only when some chat
            # still needs it.
            report = report or await usage_view.build(self.store, Period.SHIFT)
            # Claimed, then sent: a stop lets the two end together (not claimed and lost).
            sent += await self.deliveries.run(self._send(sub.chat_id, day, key, report),
                                              f"shift summary to chat {sub.chat_id}")
        return sent

    async def _send(self, chat_id: int, day: date, key: str, report: Report) -> int:
        """Claim the day's summary for a chat and send it; 1 if this call sent it."""
        if not await self.store.console.create_once(key, ViewKind.SUMMARY, chat_id,
                                                    {"day": day.isoformat()}):
            return 0  # another process of the cluster took it meanwhile
        try:
            await self.telegram.send(chat_id, report.text, None)
            await self.telegram.send_photo(chat_id, report.png, report.caption)
        except (Rejected, ChatGone, ChatMoved, Unconfirmed) as exc:
            # The notifier handles a chat that is gone or moved when it next sends; an
            # unconfirmed summary may have arrived and is not sent a third time.
            log.warning("shift summary to chat %s not sent: %s", chat_id, exc)
            return 0
        log.info("  → shift summary of %s to chat %s", day, chat_id)
        return 1
