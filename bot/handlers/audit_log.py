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
    #: the admin as typed (a Telegram user id, a name as the log records it, or the start
    #: of one of its words)
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


def match_actors(typed: str, actors: dict[str, int]) -> dict[str, int]:
    """The admins ``admin:`` names: the whole name as the log records it, else every name
    with a word that starts with it ("ann" finds "Ann Lee"; a name's blanks cannot be
    typed in one argument)."""
    want = typed.casefold()
    if want in actors:
        return {want: actors[want]}
    return {name: actor for name, actor in actors.items()
            if any(word.startswith(want) for word in name.split())}


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
    if actor_label is not None and USER_ID.fullmatch(actor_label):
        actor = int(actor_label)
    elif actor_label is not None:
        found = match_actors(actor_label, await d.store.console.audit_actors())
        if len(set(found.values())) > 1:
            await reply_error(update, f"admin:{actor_label} matches several admins "
                                      f"({', '.join(sorted(found))}): type more of the name, "
                                      "or the Telegram id.")
            return
        actor = next(iter(found.values()), -1)  # -1: nobody matches
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
