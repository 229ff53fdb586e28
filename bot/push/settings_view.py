"""The /notifications message: a subscription's settings, edited with buttons."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from taskops.bot import format as fmt
from taskops.bot.callbacks import Action
from taskops.bot.push.subscription import (
    MUTED_FOREVER,
    STATUS_ORDER,
    STUCK,
    Mute,
    is_muted,
    settings_of,
)
from taskops.bot.render import render
from taskops.bot.ui import Rendered, button
from taskops.config import NotificationSettings
from taskops.storage.domain import Trigger
from taskops.storage.push_store import Subscription

ON, OFF = "✅", "▫️"


def _toggle(label: str, on: bool, value: str, key: str) -> InlineKeyboardButton:
    return button(f"{ON if on else OFF} {label}", Action.NOTIFY_TOGGLE, key, value)


def render_settings(sub: Subscription, key: str, notifications: NotificationSettings,
                    tz: ZoneInfo, now: datetime,
                    state: SubscriptionNote | None = None) -> Rendered:
    wants = settings_of(sub)
    muted = is_muted(sub, now)
    text = render(
        "subscription_settings", state=state.value if state else None,
        statuses=[fmt.STATUS_LABEL[s] for s in STATUS_ORDER if s in wants.statuses],
        triggers=[fmt.TRIGGER_LABEL[t] for t in Trigger if t in wants.triggers],
        stuck=wants.stuck,
        muted_until=(fmt.short_time(sub.muted_until, tz, now)
                     if muted and sub.muted_until else None),
        forever=muted and sub.muted_until == MUTED_FOREVER,
        threshold=notifications.digest_threshold,
        window=f"{notifications.digest_window_seconds:g}")
    statuses = [_toggle(f"{fmt.STATUS_BADGE[s]} {fmt.STATUS_LABEL[s]}", s in wants.statuses,
                        s.value, key) for s in STATUS_ORDER]
    triggers = [_toggle(fmt.TRIGGER_LABEL[t], t in wants.triggers, t.value, key)
                for t in Trigger]
    rows = [statuses[:2], statuses[2:], triggers[:3], triggers[3:],
            [_toggle("⏳ Stuck tasks", wants.stuck, STUCK, key)]]
    if muted:
        rows.append([button("🔔 Unmute", Action.NOTIFY_MUTE, key, Mute.OFF.value)])
    else:
        rows.append([button("🔕 1 h", Action.NOTIFY_MUTE, key, Mute.HOUR.value),
                     button("🔕 8 h", Action.NOTIFY_MUTE, key, Mute.EIGHT_HOURS.value),
                     button("🔕 Until unmuted", Action.NOTIFY_MUTE, key, Mute.FOREVER.value)])
    rows.append([button("🗑 Unsubscribe", Action.NOTIFY_STOP, key)])
    return Rendered(text, InlineKeyboardMarkup(rows))


class SubscriptionNote(StrEnum):
    """The one line a subscription command or button answers with."""

    SUBSCRIBED = "subscribed"
    ALREADY = "already"
    UNSUBSCRIBED = "unsubscribed"
    #: the chat is not subscribed
    NONE = "none"


def render_status(state: SubscriptionNote) -> str:
    return render("subscription_status", state=state.value)
