"""Kill: 🛑 from the list or a task, or /kill_task 123, always through a confirmation."""

from __future__ import annotations

import logging
from dataclasses import replace

from telegram import Update, User
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from taskops.bot.callbacks import Action
from taskops.bot.commands import Command
from taskops.bot.commands import register as register_command
from taskops.bot.context import deps
from taskops.bot.handlers.task_detail import parse_task_id
from taskops.bot.render import render
from taskops.bot.screens import answer, finish_press, load_press, show_new
from taskops.bot.views import ListState, Screen
from taskops.storage.domain import InvalidTransition, StoreError, TaskStatus, kill_refused_message

log = logging.getLogger(__name__)
KILLED = "Task killed successfully."


def admin_name(user: User) -> str:
    return user.full_name or (f"@{user.username}" if user.username else str(user.id))


async def kill_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None
    task_id = parse_task_id(context.args or [])
    if task_id is None:
        await message.reply_text(render("error_line", message="Usage: /kill_task 123"))
        return
    task = await deps(context).store.find_task(task_id)
    if task is None:
        await message.reply_text(render("error_line", message=f"Task #{task_id} not found."))
        return
    if task.status is not TaskStatus.RUNNING:
        await message.reply_text(render("error_line", message=kill_refused_message(task.status)))
        return
    await show_new(update, context, replace(ListState().open_task(task_id), screen=Screen.KILL,
                                            back_to=Screen.DETAIL))


async def on_kill_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    press = await load_press(update, context)
    if press is None:
        return
    d = deps(context)
    state, cb = press.state, press.callback
    task = await d.store.find_task(cb.int_arg)
    if task is None:
        await answer(press.query, f"Task #{cb.int_arg} not found.", alert=True)
        return
    if cb.action is Action.KILL_ASK:
        if task.status is not TaskStatus.RUNNING:
            await finish_press(context, press, state, toast=kill_refused_message(task.status),
                               alert=True)
            return
        return_to = state.screen if state.screen in (Screen.LIST, Screen.DETAIL) else Screen.LIST
        await finish_press(context, press, replace(state, screen=Screen.KILL, task_id=task.id,
                                                   back_to=return_to))
        return
    back = replace(state, screen=state.back_to,
                   task_id=task.id if state.back_to is Screen.DETAIL else state.task_id)
    if cb.action is Action.KILL_CANCEL:
        await finish_press(context, press, back)
        return
    user = press.query.from_user
    try:
        await d.store.kill_task(task.id, by=admin_name(user))
    except (InvalidTransition, StoreError) as exc:
        outcome, toast = f"refused: {exc}", str(exc)
    else:
        outcome, toast = "killed", KILLED
        log.info("task#%d killed by %s (%s)", task.id, admin_name(user), user.id)
    await d.store.console.audit(actor_id=user.id, actor_name=admin_name(user), action="kill",
                                task_id=task.id, outcome=outcome)
    await finish_press(context, press, back, toast=toast, alert=toast != KILLED)


def register(app: Application) -> None:  # type: ignore[type-arg]
    register_command(Command("kill_task", "Kill a running task", "123"))
    app.add_handler(CommandHandler("kill_task", kill_command))
    actions = "".join(a.value for a in (Action.KILL_ASK, Action.KILL_CONFIRM, Action.KILL_CANCEL))
    app.add_handler(CallbackQueryHandler(on_kill_press, pattern=f"^1:[{actions}]:"))
