"""Typed values: a feature asks with a ForceReply prompt, the admin replies to it.

The prompt's purpose and target view are stored against the prompt message, so a reply
still lands after a restart. Features register what to do with a reply by purpose.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from telegram import ForceReply, Message, Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from taskops.bot.context import deps
from taskops.bot.render import render
from taskops.bot.screens import EXPIRED
from taskops.bot.views import ViewKind
from taskops.storage.console import ViewRecord

#: (update, context, the prompt, the console view it was asked from, the typed text)
ReplyHandler = Callable[[Update, ContextTypes.DEFAULT_TYPE, ViewRecord, ViewRecord, str],
                        Awaitable[None]]
_handlers: dict[str, ReplyHandler] = {}


def register_prompt(purpose: str, handler: ReplyHandler) -> None:
    _handlers[purpose] = handler


async def ask(context: ContextTypes.DEFAULT_TYPE, chat_id: int, text: str, placeholder: str,
              body: dict[str, Any]) -> Message:
    """Send a prompt that expects a reply; ``body`` needs a ``purpose``."""
    message = await context.bot.send_message(
        chat_id, text, reply_markup=ForceReply(selective=True,
                                               input_field_placeholder=placeholder[:64]))
    await deps(context).store.console.create(ViewKind.PROMPT, chat_id, body,
                                             message_id=message.message_id)
    return message


async def on_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is None or message.reply_to_message is None or message.text is None:
        return
    prompt = await deps(context).store.console.find(
        message.chat.id, message.reply_to_message.message_id, ViewKind.PROMPT)
    if prompt is None:
        return
    handler = _handlers.get(str(prompt.body.get("purpose")))
    if handler is None:
        return
    view = await deps(context).store.console.get(str(prompt.body.get("view")))
    if view is None or view.message_id is None:
        await message.reply_text(render("error_line", message=EXPIRED))
        return
    await handler(update, context, prompt, view, message.text.strip())


def register(app: Application) -> None:  # type: ignore[type-arg]
    app.add_handler(MessageHandler(filters.REPLY & filters.TEXT & ~filters.COMMAND, on_reply))
