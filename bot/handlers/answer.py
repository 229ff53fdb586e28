"""Answering a paused task's question: /answer 123 text, or 💬 Answer on its detail."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes

from taskops.bot import format as fmt
from taskops.bot.audit import AuditAction, admin_name, audit
from taskops.bot.callbacks import Action
from taskops.bot.commands import Command, parse_task_id, reply_error
from taskops.bot.commands import register as register_command
from taskops.bot.context import deps
from taskops.bot.handlers.prompts import Reply, ask, register_prompt
from taskops.bot.press import answer, load_press, on_press
from taskops.bot.render import render
from taskops.bot.screens import show_in
from taskops.bot.views import PromptState, Purpose, ViewKind
from taskops.storage.domain import InvalidTransition, StoreError, TaskStatus


async def _resume(update: Update, context: ContextTypes.DEFAULT_TYPE, task_id: int,
                  text: str) -> bool:
    message = update.effective_message
    user = update.effective_user
    assert message is not None
    assert user is not None
    d = deps(context)
    try:
        task = await d.store.resume_task(task_id, text, by=admin_name(user))
    except (InvalidTransition, StoreError) as exc:
        await reply_error(update, str(exc))
        return False
    # An answer after the task's deadline fails it at once (max duration is wall-clock).
    outcome = "resumed" if task.status is TaskStatus.RUNNING else task.status.value
    await audit(d.store, user, AuditAction.ANSWER, outcome, task_id=task_id,
                chat_id=message.chat_id)
    await message.reply_text(render("answered", task=task, name=fmt.truncate(task.name, 80)))
    return True


async def answer_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None
    args = context.args or []
    task_id = parse_task_id(args[:1])
    text = message.text.split(maxsplit=2)[2] if message.text and len(args) > 1 else ""
    if task_id is None or not text.strip():
        await reply_error(update, "Usage: /answer 123 your answer")
        return
    await _resume(update, context, task_id, text.strip())


async def on_answer_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    press = await load_press(update, context)
    if press is None:
        return
    d = deps(context)
    task = await d.store.find_task(press.callback.int_arg)
    if task is None or task.status is not TaskStatus.PAUSED:
        await answer(press.query, "This task is not waiting for an answer.", alert=True)
        return
    await ask(context, press.view.chat_id,
              render("answer_prompt", task=task, name=fmt.truncate(task.name, 80),
                     question=fmt.truncate(task.summary or "", 1500)),
              "Your answer", PromptState(purpose=Purpose.ANSWER, view=press.key, task_id=task.id))
    await answer(press.query)


async def on_answer_reply(update: Update, context: ContextTypes.DEFAULT_TYPE, reply: Reply) -> None:
    task_id = reply.prompt.task_id
    if task_id is None or not await _resume(update, context, task_id, reply.text):
        return
    await deps(context).store.console.delete(reply.prompt_key)
    if reply.view.kind != ViewKind.DIGEST:
        # A digest stays what it is for the chat; the answer's own reply says it was taken.
        await show_in(context, reply.view, reply.state)


def register(app: Application) -> None:  # type: ignore[type-arg]
    register_command(Command("answer", "Answer a paused task's question", "123 text"))
    app.add_handler(CommandHandler("answer", answer_command))
    app.add_handler(on_press(on_answer_press, Action.ANSWER))
    register_prompt(Purpose.ANSWER, on_answer_reply)
