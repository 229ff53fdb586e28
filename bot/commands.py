"""The console's commands: one list feeds /help and the admins' command menu; and the one
way a command names a task (``/task 123``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from telegram import Update
from telegram.ext import ContextTypes

from taskops.bot.context import deps
from taskops.bot.render import render
from taskops.storage.domain import Task, TaskNotFound


@dataclass(frozen=True)
class Command:
    name: str
    #: shown in the Telegram command menu (1-256 characters)
    description: str
    #: shown in /help, e.g. "123" for /task 123
    usage: str = ""


# Only commands that exist are listed: the original page told users to run /kill_task
# when no such command existed.
COMMANDS: list[Command] = [
    Command("start", "Start the console"),
    Command("help", "What this bot can do"),
]


def register(command: Command) -> None:
    """Feature modules add their commands when they register their handlers."""
    if all(c.name != command.name for c in COMMANDS):
        COMMANDS.append(command)


#: a task id as typed: ASCII digits only (``str.isdigit`` also takes "²", which ``int``
#: refuses), at most 18 of them (ids are 64-bit)
TASK_ID = re.compile(r"#?([0-9]{1,18})")


def parse_task_id(args: list[str]) -> int | None:
    """``123`` or ``#123`` as the only argument."""
    if len(args) != 1:
        return None
    found = TASK_ID.fullmatch(args[0])
    return int(found.group(1)) if found and 0 < int(found.group(1)) < 2**62 else None


async def reply_error(update: Update, text: str) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(render("error_line", message=text))


async def task_argument(update: Update, context: ContextTypes.DEFAULT_TYPE,
                        usage: str) -> Task | None:
    """The task a command names; replies with the usage or "Task #N not found." if none."""
    task_id = parse_task_id(context.args or [])
    if task_id is None:
        await reply_error(update, usage)
        return None
    task = await deps(context).store.find_task(task_id)
    if task is None:
        await reply_error(update, str(TaskNotFound(task_id)))
    return task
