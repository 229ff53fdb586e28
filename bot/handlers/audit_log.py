"""/audit [N] [admin:NAME|ID] [action:kill]: recent admin actions — who, what, which task,
when, from which chat (admins only, like every command: bot/gate.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes

from taskops.bot import format as fmt
from taskops.bot.audit import AuditAction
from taskops.bot.commands import Command, reply_error
from taskops.bot.commands import register as register_command
from taskops.bot.context import deps
from taskops.bot.render import render
from taskops.bot.ui import MAX_TEXT, visible_length

DEFAULT_COUNT = 20
MAX_COUNT = 100
USAGE = (f"Usage: /audit [N] [admin:NAME] [action:{'|'.join(a.value for a in AuditAction)}]"
         f" — N from 1 to {MAX_COUNT}.")
COUNT = re.compile(r"[0-9]{1,3}")
USER_ID = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True)
class AuditQuery:
    count: int = DEFAULT_COUNT
    #: the admin as typed (a Telegram user id, or a name as the log records it)
    admin: str | None = None
    action: AuditAction | None = None


def parse_audit_args(args: list[str]) -> AuditQuery:
    """``/audit``'s arguments; ValueError (with the usage line) for anything else."""
    query = AuditQuery()
    for token in args:
        key, sep, value = token.partition(":")
        if not sep and COUNT.fullmatch(token) and 1 <= int(token) <= MAX_COUNT:
            query = replace(query, count=int(token))
        elif sep and key.lower() == "action" and value.lower() in set(AuditAction):
            query = replace(query, action=AuditAction(value.lower()))
        elif sep and key.lower() == "admin" and value.lstrip("@"):
            query = replace(query, admin=value.lstrip("@"))
        else:
            raise ValueError(USAGE)
    return query


async def audit_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None
    d = deps(context)
    try:
        query = parse_audit_args(context.args or [])
    except ValueError as exc:
        await reply_error(update, str(exc))
        return
    count, action, actor_label, actor = query.count, query.action, query.admin, None
    if actor_label is not None:
        # A Telegram user id, else a name as the log records it (-1: nobody matches).
        actor = (int(actor_label) if USER_ID.fullmatch(actor_label) else
                 (await d.store.console.audit_actors()).get(actor_label.casefold(), -1))
    entries = await d.store.console.audit_log(count, actor_id=actor,
                                              action=action.value if action else None)
    tz, now = d.store.tz, d.store.clock()
    rows = [{"at": fmt.short_time(e.at, tz, now), "who": fmt.truncate(e.actor_name, 40),
             "action": e.action, "task": e.task_id, "chat": e.chat_id,
             "outcome": fmt.truncate(e.outcome, 120)} for e in entries]
    filters = " · ".join(x for x in (f"admin {actor_label}" if actor_label else "",
                                     f"action {action.value}" if action else "") if x)
    text = ""
    while True:  # the newest first; older ones dropped until the message fits
        text = render("audit_log", rows=rows, filters=filters, count=len(rows))
        if visible_length(text) <= MAX_TEXT or not rows:
            break
        rows = rows[:-1]
    await message.reply_text(text)


def register(app: Application) -> None:  # type: ignore[type-arg]
    register_command(Command("audit", "Recent admin actions (who, what, task, chat)",
                             "[N] [admin:NAME] [action:kill]"))
    app.add_handler(CommandHandler("audit", audit_command))
