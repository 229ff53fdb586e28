"""Typed values: a feature asks with a ForceReply prompt, the admin replies to it.

The prompt's purpose and target view are stored against the prompt message, so a reply
still lands after a restart. Features register what to do with a reply by purpose.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from telegram import ForceReply, Message, Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from taskops.bot.commands import reply_error
from taskops.bot.context import deps
from taskops.bot.press import EXPIRED
from taskops.bot.views import (
    PromptState,
    Purpose,
    ViewExpired,
    ViewKind,
    ViewState,
    decode,
    decode_prompt,
    encode,
)
from taskops.storage.console import ViewRecord


@dataclass(frozen=True)
class Reply:
    """A typed reply to a prompt, with the console view the prompt was asked from."""

    #: the prompt's key, to forget it once the value is taken
    prompt_key: str
    prompt: PromptState
    view: ViewRecord
    #: the view's state, as its message shows it
    state: ViewState
    text: str


ReplyHandler = Callable[[Update, ContextTypes.DEFAULT_TYPE, Reply], Awaitable[None]]
_handlers: dict[Purpose, ReplyHandler] = {}


def register_prompt(purpose: Purpose, handler: ReplyHandler) -> None:
    _handlers[purpose] = handler


async def ask(context: ContextTypes.DEFAULT_TYPE, chat_id: int, text: str, placeholder: str,
              prompt: PromptState) -> Message:
    """Send a prompt that expects a reply."""
    message = await context.bot.send_message(
        chat_id, text, reply_markup=ForceReply(selective=True,
                                               input_field_placeholder=placeholder[:64]))
    await deps(context).store.console.create(ViewKind.PROMPT, chat_id, encode(prompt),
                                             message_id=message.message_id)
    return message


async def on_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is None or message.reply_to_message is None or message.text is None:
        return
    store = deps(context).store
    record = await store.console.find(message.chat.id, message.reply_to_message.message_id,
                                      ViewKind.PROMPT)
    if record is None:
        return
    try:
        prompt = decode_prompt(record.body)
    except ViewExpired:
        return  # not a prompt this version asked: like a reply to any other message
    handler = _handlers.get(prompt.purpose)
    if handler is None:
        return
    view = await store.console.get(prompt.view)
    try:
        if view is None or view.message_id is None:
            raise ViewExpired(f"view {prompt.view} is gone")
        state = decode(view.body).used()
    except ViewExpired:
        await reply_error(update, EXPIRED)
        return
    await handler(update, context, Reply(record.key, prompt, view, state, message.text.strip()))


def register(app: Application) -> None:  # type: ignore[type-arg]
    app.add_handler(MessageHandler(filters.REPLY & filters.TEXT & ~filters.COMMAND, on_reply))
