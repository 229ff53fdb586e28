"""Kill: 🛑 from the list or a task, or /kill_task 123, always through a confirmation."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes

from taskops.bot.audit import AuditAction, admin_name, audit
from taskops.bot.callbacks import Action
from taskops.bot.commands import Command, reply_error, task_argument
from taskops.bot.commands import register as register_command
from taskops.bot.context import deps
from taskops.bot.press import load_press, on_press, press_task
from taskops.bot.screens import finish_press, show_new
from taskops.bot.views import ViewState
from taskops.storage.domain import InvalidTransition, StoreError, TaskStatus, kill_refused_message

KILLED = "Task killed successfully."


async def kill_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    task = await task_argument(update, context, "Usage: /kill_task 123")
    if task is None:
        return
    if task.status is not TaskStatus.RUNNING:
        await reply_error(update, kill_refused_message(task.status))
        return
    await show_new(update, context, ViewState().open_task(task.id).ask_kill(task.id))


async def on_kill_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    press = await load_press(update, context)
    if press is None:
        return
    d = deps(context)
    state, cb = press.state, press.callback
    task = await press_task(d, press, cb.int_arg)
    if task is None:
        return
    if cb.action is Action.KILL_ASK:
        if task.status is not TaskStatus.RUNNING:
            await finish_press(context, press, state, toast=kill_refused_message(task.status),
                               alert=True)
            return
        await finish_press(context, press, state.ask_kill(task.id))
        return
    back = state.after_kill()
    if cb.action is Action.KILL_CANCEL:
        await finish_press(context, press, back)
        return
    try:
        await d.store.kill_task(task.id, by=admin_name(press.user))
    except (InvalidTransition, StoreError) as exc:
        outcome, toast = f"refused: {exc}", str(exc)
    else:
        outcome, toast = "killed", KILLED
    await audit(d.store, press.user, AuditAction.KILL, outcome, task_id=task.id,
                chat_id=press.view.chat_id)
    await finish_press(context, press, back, toast=toast, alert=toast != KILLED)


def register(app: Application) -> None:  # type: ignore[type-arg]
    register_command(Command("kill_task", "Kill a running task", "123"))
    app.add_handler(CommandHandler("kill_task", kill_command))
    app.add_handler(on_press(on_kill_press, Action.KILL_ASK, Action.KILL_CONFIRM,
                             Action.KILL_CANCEL))
