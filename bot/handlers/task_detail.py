"""/task 123 and the detail screen: timeline pages, thinking toggle, full log."""

from __future__ import annotations

from telegram import InputFile, Update
from telegram.ext import Application, CommandHandler, ContextTypes

from taskops.bot import format as fmt
from taskops.bot.callbacks import Action
from taskops.bot.commands import Command, task_argument
from taskops.bot.commands import register as register_command
from taskops.bot.context import deps
from taskops.bot.detail_view import render_full_log
from taskops.bot.press import answer, load_press, on_press, press_task
from taskops.bot.render import render
from taskops.bot.screens import finish_press, show_new
from taskops.bot.views import Screen, ViewState


async def task_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    task = await task_argument(update, context, "Usage: /task 123")
    if task is not None:
        await show_new(update, context, ViewState().open_task(task.id))


async def on_detail_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    press = await load_press(update, context)
    if press is None:
        return
    d = deps(context)
    state = press.state
    if state.screen is not Screen.DETAIL or state.detail is None:
        await answer(press.query)
        return
    if press.callback.action is Action.DETAIL_PAGE:
        await finish_press(context, press, state.with_detail(page=press.callback.int_arg))
    elif press.callback.action is Action.THINKING:
        await finish_press(context, press,
                           state.with_detail(show_thinking=not state.detail.show_thinking))
    elif press.callback.action is Action.FULL_LOG:
        task = await press_task(d, press, state.detail.task_id)
        if task is None:
            return
        document = await render_full_log(d.store, task)
        await answer(press.query)
        await context.bot.send_document(
            press.view.chat_id,
            InputFile(document.encode(), filename=f"task-{task.id}.md"),
            caption=render("full_log_caption", task=task, name=fmt.truncate(task.name, 100)))


def register(app: Application) -> None:  # type: ignore[type-arg]
    register_command(Command("task", "Show one task and its timeline", "123"))
    app.add_handler(CommandHandler("task", task_command))
    app.add_handler(on_press(on_detail_press, Action.DETAIL_PAGE, Action.THINKING,
                             Action.FULL_LOG))
