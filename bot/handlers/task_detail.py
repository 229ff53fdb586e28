"""/task 123 and the detail screen: timeline pages, thinking toggle, full log."""

from __future__ import annotations

from dataclasses import replace

from telegram import InputFile, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from taskops.bot import format as fmt
from taskops.bot.callbacks import Action
from taskops.bot.commands import Command
from taskops.bot.commands import register as register_command
from taskops.bot.context import deps
from taskops.bot.render import render, render_document
from taskops.bot.screens import answer, finish_press, load_press, show_new
from taskops.bot.ui import pretty
from taskops.bot.views import ListState, Screen
from taskops.storage.domain import Task, TaskEvent
from taskops.storage.store import TaskStore

LOG_CHUNK = 500


def parse_task_id(args: list[str]) -> int | None:
    if len(args) != 1:
        return None
    text = args[0].lstrip("#")
    return int(text) if text.isdigit() and 0 < int(text) < 2**62 else None


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
    await show_new(update, context, ListState().open_task(task_id))


async def all_events(store: TaskStore, task_id: int) -> list[TaskEvent]:
    events: list[TaskEvent] = []
    while True:
        page = await store.list_events(task_id, len(events), LOG_CHUNK)
        events.extend(page.events)
        if not page.events or len(events) >= page.total:
            return events


def full_log(task: Task, events: list[TaskEvent], store: TaskStore) -> str:
    now = store.clock()
    rows = [{"at": e.at.astimezone(store.tz).strftime("%Y-%m-%d %H:%M:%S"), "kind": e.kind.value,
             "p": e.payload, "duration": fmt.tool_duration(e.payload.get("duration_ms")),
             "arguments": pretty(e.payload.get("arguments", {})),
             "result": pretty(e.payload.get("result", ""))} for e in events]
    return render_document("task_log", task=task, events=rows,
                           provider=fmt.provider_line(task, 500),
                           duration=fmt.duration(task.duration_seconds(now)),
                           cost=fmt.cost(task.cost_usd),
                           created=task.created_at.astimezone(store.tz).isoformat())


async def on_detail_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    press = await load_press(update, context)
    if press is None:
        return
    d = deps(context)
    state = press.state
    if state.screen is not Screen.DETAIL or state.task_id is None:
        await answer(press.query)
        return
    if press.callback.action is Action.DETAIL_PAGE:
        await finish_press(context, press, replace(state, detail_page=press.callback.int_arg))
    elif press.callback.action is Action.THINKING:
        await finish_press(context, press, replace(state, show_thinking=not state.show_thinking))
    elif press.callback.action is Action.FULL_LOG:
        task = await d.store.find_task(state.task_id)
        if task is None:
            await answer(press.query, f"Task #{state.task_id} not found.", alert=True)
            return
        document = full_log(task, await all_events(d.store, task.id), d.store)
        await answer(press.query)
        assert press.query.message is not None
        await context.bot.send_document(
            press.query.message.chat.id,
            InputFile(document.encode(), filename=f"task-{task.id}.md"),
            caption=render("full_log_caption", task=task, name=fmt.truncate(task.name, 100)))


def register(app: Application) -> None:  # type: ignore[type-arg]
    register_command(Command("task", "Show one task and its timeline", "123"))
    app.add_handler(CommandHandler("task", task_command))
    actions = "".join(a.value for a in (Action.DETAIL_PAGE, Action.THINKING, Action.FULL_LOG))
    app.add_handler(CallbackQueryHandler(on_detail_press, pattern=f"^1:[{actions}]:"))
