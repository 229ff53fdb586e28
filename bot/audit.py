"""The audit log of admin actions: who did what, to which task or chat, with what outcome.

One call writes the stored row and the operator's log line.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from telegram import User

from taskops.storage.store import TaskStore

log = logging.getLogger(__name__)


class AuditAction(StrEnum):
    #: a kill confirmed (or refused by the store)
    KILL = "kill"
    #: Save & restart of the Edit & restart form
    RESTART = "restart"
    #: a paused task's question answered
    ANSWER = "answer"
    #: a chat subscribed to notifications
    SUBSCRIBE = "subscribe"
    #: a chat unsubscribed (by command or button)
    UNSUBSCRIBE = "unsubscribe"
    #: a chat's notifications muted or unmuted (or one recurrence, from an alert)
    MUTE = "mute"
    #: "I'm on it" pressed on an alert
    ACK = "ack"


def admin_name(user: User) -> str:
    """How an admin is named in the audit log and in "killed by"/"answered by"."""
    return user.full_name or (f"@{user.username}" if user.username else str(user.id))


async def audit(store: TaskStore, user: User, action: AuditAction, outcome: str, *,
                task_id: int | None = None, chat_id: int | None = None) -> None:
    """Record an admin action: who, what, which task, from which chat, with what outcome."""
    name = admin_name(user)
    await store.console.audit(actor_id=user.id, actor_name=name, action=action.value,
                              task_id=task_id, outcome=outcome, chat_id=chat_id)
    subject = f"task#{task_id} " if task_id is not None else ""
    log.info("  %s%s by %s (%s) in chat %s: %s", subject, action.value, name, user.id,
             chat_id, outcome)
