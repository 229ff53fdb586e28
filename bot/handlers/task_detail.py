"""/task 123: one task's view (the full timeline view builds on this)."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes

from bot.commands import Command
from bot.commands import register as register_command
from bot.context import deps
from bot.handlers.kill import parse_task_id
from bot.render import render
from bot.screens import show_new
from bot.views import ListState, Screen


async def task_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None
    task_id = parse_task_id(context.args or [])
    if task_id is None:
        await message.reply_text(render("error_line", message="Usage: /task 123"))
        return
    if await deps(context).store.find_task(task_id) is None:
        await message.reply_text(render("error_line", message=f"Task #{task_id} not found."))
        return
    await show_new(update, context, ListState(screen=Screen.DETAIL, task_id=task_id))


def register(app: Application) -> None:  # type: ignore[type-arg]
    register_command(Command("task", "Show one task", "123"))
    app.add_handler(CommandHandler("task", task_command))
