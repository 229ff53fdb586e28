"""What every screen and every push message shares: the rendered message, its buttons,
editing in place, and the limits a text must keep.

Feature modules (list, detail, restart form, notifications, settings) build on this and
never on each other, so the console and the push side can use the same pieces without
importing one another.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Awaitable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from markupsafe import Markup, escape
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.error import BadRequest

from taskops.bot.callbacks import Action, Callback
from taskops.bot.markdown import markdown_to_html

#: Telegram's limit for a message's text, in UTF-16 code units after entity parsing
MAX_TEXT = 4096
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class Rendered:
    """A message as it is sent or edited: HTML text and its inline keyboard."""

    text: str
    keyboard: InlineKeyboardMarkup


def button(text: str, action: Action, view: str, arg: object = "") -> InlineKeyboardButton:
    """A button that acts on the view stored under ``view`` (see bot/callbacks.py)."""
    return _button(text, action, view, str(arg))


@lru_cache(maxsize=4096)
def _button(text: str, action: Action, view: str, arg: str) -> InlineKeyboardButton:
    # Buttons are immutable (python-telegram-bot freezes them), and a press redraws mostly
    # the buttons its message had: building ~25 of them was half of a list's render.
    return InlineKeyboardButton(text, callback_data=Callback(action, view, arg).encode())


def visible_length(markup: str) -> int:
    """Length Telegram counts: text after entity parsing, in UTF-16 code units."""
    text = html.unescape(_TAG.sub("", markup))
    return len(text.encode("utf-16-le")) // 2


def fingerprint(rendered: Rendered) -> int:
    """What a message shows, to skip an edit that would change nothing. Read from the
    buttons' fields: the keyboard's ``to_dict`` took ~0.5 ms of every press, before its
    edit."""
    return hash((rendered.text, tuple(tuple(_button_print(b) for b in row)
                                      for row in rendered.keyboard.inline_keyboard)))


def _button_print(b: InlineKeyboardButton) -> object:
    fields = button_fields(b)
    return str(b.to_dict()) if fields is None else fields  # other kinds: all of it


def button_fields(b: InlineKeyboardButton) -> tuple[str | None, ...] | None:
    """What a button of the kinds the console sends shows and carries: its text, data,
    link, inline queries and copy text (None where unset). None for any other kind."""
    if (b.web_app or b.login_url or b.switch_inline_query_chosen_chat or b.callback_game
            or b.pay or not isinstance(b.callback_data, str | None)):
        return None
    return (b.text, b.callback_data, b.url, b.switch_inline_query,
            b.switch_inline_query_current_chat, b.copy_text.text if b.copy_text else None)


def keyboard_print(markup: object) -> int | None:
    """The buttons of a message as sent or as a press brings it back (None: no keyboard)."""
    if not isinstance(markup, InlineKeyboardMarkup):
        return None
    return hash(tuple(tuple((b.text, b.callback_data) for b in row)
                      for row in markup.inline_keyboard))


def is_not_modified(exc: BadRequest) -> bool:
    return "message is not modified" in exc.message.lower()


async def unless_not_modified(request: Awaitable[Any]) -> bool:
    """Make an edit; False (not an error) when the message already showed exactly that."""
    try:
        await request
    except BadRequest as exc:
        if not is_not_modified(exc):
            raise
        return False
    return True


async def edit(message: Message, rendered: Rendered) -> bool:
    """Edit a console message in place; False when nothing changed."""
    return await unless_not_modified(
        message.edit_text(rendered.text, reply_markup=rendered.keyboard))


async def edit_by_id(bot: Bot, chat_id: int, message_id: int, rendered: Rendered) -> bool:
    """Edit a message known only by its ids (not from a press); False when nothing changed."""
    return await unless_not_modified(bot.edit_message_text(
        rendered.text, chat_id=chat_id, message_id=message_id, reply_markup=rendered.keyboard))


def cut(text: str, limit: int) -> str:
    """Cut long values, saying how much was left out (nothing is cut silently)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def pretty(value: Any) -> str:
    """A tool's arguments or result as text: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def markdown_html(text: str, limit: int) -> Markup:
    """Agent-written Markdown, cut to ``limit`` characters, as safe Telegram HTML."""
    shown = cut(text, limit)
    rendered = markdown_to_html(shown)
    if visible_length(rendered) > 2 * limit:
        # Rendering can widen text (aligned table columns); never let it outgrow the message.
        return Markup(escape(shown))
    return Markup(rendered)
