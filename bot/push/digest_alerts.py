"""A digest as the alert of each task in it that needs a person.

A burst goes out as one digest message (bot/push/notifier.py), but its failures, loops
and questions are alerts all the same: the digest carries one ``push_alerts`` row per such
task (same view key and message as the digest, no recurrence group), so

- its 🙋 "I'm on it" acks every alert it carries, and the digest shows who is on it;
- each task's lifecycle (restarted as #N, killed, answered, completed) shows under the
  task's line, as the chat worker or a restart adds it to the task's alert;
- in a group, the alerts nobody acked are re-announced once, together: one message
  replying to the digest, listing them, with its own 🙋.

The digest is redrawn only while it shows the digest (as sent, or paged by someone). In a
group a task or the list opened from it replies to it (bot/handlers/tasks_list.py), so it
stays for everyone; in a private chat it opens in place, and the message is then left
alone.
"""

from __future__ import annotations

import logging
from datetime import datetime

from markupsafe import escape
from telegram import InlineKeyboardMarkup

from taskops.bot import digest_view
from taskops.bot import format as fmt
from taskops.bot.callbacks import Action
from taskops.bot.delivery import ChatGone, ChatMoved, Rejected, Telegram
from taskops.bot.digest_view import DigestAlerts
from taskops.bot.flood import INTERACTIVE, SendPolicy
from taskops.bot.render import render
from taskops.bot.ui import Rendered, button
from taskops.bot.views import PUSH_MARK, Screen, ViewKind, decode_or_none
from taskops.storage.console import ViewRecord
from taskops.storage.push_store import Alert, AlertKind, NewAlert
from taskops.storage.store import TaskStore

log = logging.getLogger(__name__)

#: tasks an escalation of a digest names (the digest itself lists them all)
ESCALATION_LISTED = 8
BADGE = {AlertKind.FAILED: "🔴", AlertKind.LOOP: "🔁", AlertKind.PAUSED: "🟠",
         AlertKind.STUCK: "⏳", AlertKind.COMPLETED: "🟢"}


def carried(key: str, message_id: int | None,
            changes: list[tuple[int, AlertKind, str, int]]) -> list[NewAlert]:
    """The alert rows of a digest's alert-worthy changes: (task id, kind, task name, feed
    event id) each."""
    return [NewAlert(task_id, kind, key, message_id, None, str(escape(name)), event_id)
            for task_id, kind, name, event_id in changes]


async def shown(store: TaskStore, key: str, adding: int = 0) -> DigestAlerts:
    """What a digest's alerts show on it now, with ``adding`` more about to join (open)."""
    summary = DigestAlerts.of(await store.push.alerts_of_view(key), store.tz, store.clock())
    if not adding:
        return summary
    return DigestAlerts(summary.lifecycle, summary.open + adding, summary.acked_by,
                        summary.acked_at)


def page_shown(view: ViewRecord) -> int | None:
    """The page of its tasks a digest message shows (None: it shows something else now)."""
    if view.kind != ViewKind.DIGEST:
        return None
    if view.body.get(PUSH_MARK) == ViewKind.DIGEST:
        return 1
    state = decode_or_none(view.body)
    if state is not None and state.screen is Screen.DIGEST and state.digest is not None:
        return state.digest.page
    return None


async def render_shown(store: TaskStore, view: ViewRecord) -> Rendered | None:
    page = page_shown(view)
    if page is None:
        return None
    found = await store.push.digest_page(view.key, page, digest_view.PAGE_SIZE)
    return digest_view.render_digest_page(found, view.key, page,
                                          await shown(store, view.key))


async def redraw(store: TaskStore, telegram: Telegram, view: ViewRecord,
                 policy: SendPolicy = INTERACTIVE) -> bool:
    """Edit a digest message to show its alerts as they are; False when not edited."""
    if view.message_id is None:
        return False
    rendered = await render_shown(store, view)
    if rendered is None:
        return False
    try:
        await telegram.edit(view.chat_id, view.message_id, rendered.text, rendered.keyboard,
                            policy=policy)
    except (ChatGone, ChatMoved, Rejected) as exc:
        log.info("digest %s in chat %s not edited: %s", view.key, view.chat_id, exc)
        return False
    return True


def escalation(view: ViewRecord, due: list[Alert], names: dict[int, str],
               now: datetime) -> Rendered:
    """One re-announcement of a digest's alerts nobody acked, with its 🙋."""
    oldest = min(a.created_at for a in due)
    items = [{"badge": BADGE[a.kind], "id": a.task_id,
              "name": fmt.truncate(names.get(a.task_id, f"Task #{a.task_id}"),
                                   digest_view.NAME_WIDTH)}
             for a in due[:ESCALATION_LISTED]]
    text = render("digest_escalation", count=len(due), items=items,
                  more=max(0, len(due) - ESCALATION_LISTED),
                  waiting=fmt.duration((now - oldest).total_seconds()))
    keyboard = InlineKeyboardMarkup([[button("🙋 I'm on it", Action.ALERT, view.key,
                                             digest_view.ACK)]])
    return Rendered(text, keyboard)
