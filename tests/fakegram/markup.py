"""Validation of reply markups, bot commands and command scopes, with Telegram's errors."""

from __future__ import annotations

import json
import re
from typing import Any

from .entities import check_link
from .models import bad_request

MAX_BUTTONS = 100
MAX_ROW = 8
# the action fields of InlineKeyboardButton, in the order the Bot API looks for them
_ACTIONS = (
    "url",
    "login_url",
    "callback_data",
    "web_app",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_BUTTON_ERR = "can't parse InlineKeyboardButton: "


def decode_json(raw: Any, what: str) -> Any:
    """Form parameters carry objects as JSON strings; JSON bodies carry them as objects."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            raise bad_request(f"can't parse {what} JSON object") from None
    return raw


def parse_reply_markup(
    raw: Any, *, inline_only: bool, strict: bool
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Return (inline markup normalized as Telegram echoes it, other markup) — either may be None.

    An inline keyboard without buttons is no keyboard at all, as in Telegram.
    """
    if raw is None or raw == "":
        return None, None
    markup = decode_json(raw, "reply keyboard markup")
    if not isinstance(markup, dict):
        raise bad_request("Object expected as reply markup")
    if "inline_keyboard" not in markup:
        if not markup.keys() & {"keyboard", "remove_keyboard", "hide_keyboard", "force_reply"}:
            return None, None  # the Bot API ignores an object it does not recognise, like {}
        if inline_only:
            raise bad_request("inline keyboard expected")
        return None, _other_markup(markup)
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list):
        raise bad_request('Field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
    out_rows: list[list[dict[str, Any]]] = []
    total = 0
    for row in rows:
        if not isinstance(row, list):
            raise bad_request(
                'Field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
            )
        if len(row) > MAX_ROW:
            raise bad_request("reply markup is too long")
        total += len(row)
        if row:
            out_rows.append([_button(b, strict) for b in row])
    if total > MAX_BUTTONS:
        raise bad_request("reply markup is too long")
    if not out_rows:
        return None, None
    return {"inline_keyboard": out_rows}, None


def _button(raw: Any, strict: bool) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise bad_request(_BUTTON_ERR + "InlineKeyboardButton must be an Object")
    if "text" not in raw:
        raise bad_request(_BUTTON_ERR + 'Can\'t find field "text"')
    text = raw["text"]
    if not isinstance(text, str):
        raise bad_request(_BUTTON_ERR + 'Field "text" must be of type String')
    if not text.strip():
        raise bad_request(_BUTTON_ERR + "button text must be non-empty")
    present = [k for k in _ACTIONS if raw.get(k) not in (None, "")]
    if not present:
        raise bad_request(_BUTTON_ERR + "Text buttons are not allowed in the inline keyboard")
    if strict and len(present) > 1:
        raise bad_request(
            _BUTTON_ERR + f"exactly one of the optional fields must be used, found {present} "
            "(Telegram uses the first; refused by the fake's strict mode)"
        )
    action = present[0]
    value = raw[action]
    out: dict[str, Any] = {"text": text}
    if action == "callback_data":
        if not isinstance(value, str):
            raise bad_request(_BUTTON_ERR + 'Field "callback_data" must be of type String')
        if len(value.encode("utf-8")) > 64:
            raise bad_request("BUTTON_DATA_INVALID")
    elif action == "url":
        if not isinstance(value, str) or check_link(value) is None:
            raise bad_request(f"inline keyboard button URL '{value}' is invalid: Wrong HTTP URL")
        value = check_link(value)
    out[action] = value
    return out


def _other_markup(markup: dict[str, Any]) -> dict[str, Any]:
    if "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad_request(
                'Field "keyboard" of the ReplyKeyboardMarkup must be an Array of Arrays'
            )
        for row in rows:
            for b in row:
                text = b if isinstance(b, str) else b.get("text") if isinstance(b, dict) else None
                if not isinstance(text, str):
                    raise bad_request(
                        'can\'t parse keyboard button: Field "text" must be of type String'
                    )
        return markup
    return markup


# --- bot commands ---------------------------------------------------------------------------

ScopeKey = tuple[Any, ...]
SCOPE_TYPES = (
    "default",
    "all_private_chats",
    "all_group_chats",
    "all_chat_administrators",
    "chat",
    "chat_administrators",
    "chat_member",
)
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")


def parse_commands(raw: Any) -> list[dict[str, str]]:
    commands = decode_json(raw, "commands")
    if not isinstance(commands, list):
        raise bad_request('Field "commands" must be an Array')
    if len(commands) > 100:
        raise bad_request("too many commands specified")
    out = []
    for c in commands:
        if not isinstance(c, dict) or not isinstance(c.get("command"), str):
            raise bad_request('can\'t parse BotCommand: Field "command" must be of type String')
        name = c["command"].lstrip("/")
        desc = c.get("description")
        if not _COMMAND_RE.fullmatch(name):
            raise bad_request("BOT_COMMAND_INVALID")
        if not isinstance(desc, str) or not 1 <= len(desc.strip()) <= 256:
            raise bad_request("command description must be non-empty")
        out.append({"command": name, "description": desc})
    return out


def scope_key(raw: Any, resolve_chat: Any) -> ScopeKey:
    """Normalize a BotCommandScope (dict, JSON string, PTB object or type name) to a key.

    ``resolve_chat(chat_id)`` must return the chat id or raise "chat not found".
    """
    if raw is None or raw == "":
        return ("default",)
    if hasattr(raw, "to_dict"):
        raw = raw.to_dict()
    scope = (
        decode_json(raw, "BotCommandScope")
        if not (isinstance(raw, str) and raw in SCOPE_TYPES)
        else {"type": raw}
    )
    if not isinstance(scope, dict) or scope.get("type") not in SCOPE_TYPES:
        raise bad_request("can't parse BotCommandScope: unsupported scope type")
    kind = scope["type"]
    if kind in ("chat", "chat_administrators", "chat_member"):
        if "chat_id" not in scope:
            raise bad_request("can't parse BotCommandScope: Can't find field \"chat_id\"")
        chat_id = resolve_chat(scope["chat_id"])
        if kind == "chat_member":
            user_id = scope.get("user_id")
            if not isinstance(user_id, int):
                raise bad_request("can't parse BotCommandScope: Can't find field \"user_id\"")
            return (kind, chat_id, user_id)
        return (kind, chat_id)
    return (kind,)


def check_language_code(raw: Any) -> str:
    code = "" if raw is None else str(raw)
    if code and not re.fullmatch(r"[a-z]{2}", code):
        raise bad_request("invalid language code specified")
    return code
