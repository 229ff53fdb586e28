"""Callback data: a compact, versioned string parsed into a typed value in one place.

Format ``1:<action>:<view key>:<argument>``, at most 64 bytes (Telegram's limit). The
view key points at state in the store; the argument is short (a task id, a page, an
option index).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

VERSION = "1"
MAX_BYTES = 64


class Action(StrEnum):
    OPEN_TASK = "o"
    KILL_ASK = "k"
    KILL_CONFIRM = "K"
    KILL_CANCEL = "c"
    PAGE = "p"
    REFRESH = "r"
    SORT = "s"
    CLEAR_FILTERS = "x"
    MENU = "m"  # open a filter menu; argument: which filter
    CHOOSE = "f"  # pick an option in the open menu; argument: option index
    MENU_PAGE = "g"  # page through a long menu
    BACK = "b"  # back to the list
    PROMPT_DATE = "d"  # ask for a typed date; argument: which filter
    SEARCH = "q"  # ask for words to search the list for
    NOOP = "n"
    DETAIL_PAGE = "e"  # timeline page; argument: page number
    THINKING = "t"  # toggle thinking blocks on this page
    FULL_LOG = "l"  # send the whole timeline as a file
    RESTART_OPEN = "R"  # open the Edit & restart form (or explain why not)
    RESTART_FIELD = "F"  # edit a field; argument: field name
    RESTART_PROVIDER = "P"  # pick a provider/model; argument: option index
    RESTART_SAVE = "S"
    RESTART_CANCEL = "C"
    ANSWER = "a"  # answer a paused task's question; argument: task id
    NOTIFY_TOGGLE = "N"  # notification settings: flip a status, trigger or "stuck"
    NOTIFY_MUTE = "M"  # mute notifications; argument: 1, 8, inf or off
    NOTIFY_STOP = "U"  # unsubscribe the chat
    FOLLOW = "W"  # keep a task's detail message live; argument: task id
    BULK_ASK = "B"  # preview a bulk action on the filtered list; argument: kill or restart
    BULK_CONFIRM = "Y"  # do the previewed bulk action (on the previewed ids only)
    BULK_CANCEL = "X"  # back to the list
    VIEW_OPEN = "v"  # open a view; argument: b<built-in index> or s<saved id>
    VIEW_SAVE = "V"  # 📌 save the list's filters and sort under a name (asked by reply)
    VIEWS = "h"  # the views screen (all views; rename, delete)
    VIEW_RENAME = "j"  # rename a saved view; argument: its id
    VIEW_DELETE = "z"  # delete a saved view; argument: its id
    ALERT = "A"  # a button of an alert; argument: an AlertVerb (bot/push/alerts.py)
    DIGEST_PAGE = "D"  # a page of a digest's tasks; argument: page number


class BadCallback(ValueError):
    pass


def pattern(*actions: Action) -> re.Pattern[str]:
    """What a CallbackQueryHandler matches for these actions, in this version of the data.

    Data of another version or action matches no handler; the last-resort handler
    (bot/press.py) answers it.
    """
    if not actions:
        raise ValueError("a pattern needs at least one action")
    chars = "".join(re.escape(a.value) for a in actions)
    return re.compile(f"^{re.escape(VERSION)}:[{chars}]:")


@dataclass(frozen=True)
class Callback:
    action: Action
    view: str
    arg: str = ""

    def encode(self) -> str:
        data = f"{VERSION}:{self.action.value}:{self.view}:{self.arg}"
        if len(data.encode()) > MAX_BYTES:
            raise ValueError(f"callback data over {MAX_BYTES} bytes: {data!r}")
        return data

    @property
    def int_arg(self) -> int:
        try:
            return int(self.arg)
        except ValueError:
            raise BadCallback(f"expected a number, got {self.arg!r}") from None

    @classmethod
    def parse(cls, data: str | None) -> Callback:
        if not data:
            raise BadCallback("empty callback data")
        version, _, rest = data.partition(":")
        if version != VERSION:
            raise BadCallback(f"unknown callback version {version!r}")
        action, sep1, rest = rest.partition(":")
        view, sep2, arg = rest.partition(":")
        if not (sep1 and sep2):
            raise BadCallback(f"malformed callback data {data!r}")
        try:
            parsed_action = Action(action)
        except ValueError:
            raise BadCallback(f"unknown action {action!r}") from None
        if not view.isalnum() or not view.isascii():
            raise BadCallback(f"bad view key {view!r}")
        return cls(parsed_action, view, arg)
