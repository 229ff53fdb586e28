"""Saved views: a list's filters and sort under a name, per chat, one tap from /tasks and
/views; and the built-in views an on-call admin wants first.

A view's argument in a button is ``b<i>`` for built-in ``i`` or ``s<id>`` for a saved one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from taskops.bot import format as fmt
from taskops.bot.callbacks import Action
from taskops.bot.render import render
from taskops.bot.ui import Rendered, button
from taskops.bot.views import ListPart
from taskops.storage.console import SavedView
from taskops.storage.domain import ListFilters, Sort, SortField, TaskStatus

NAME_MAX = 40
#: view buttons on the list's views row (with 📌 in front)
ROW_VIEWS = 3
#: a saved view's button label at most
LABEL_WIDTH = 16


@dataclass(frozen=True)
class BuiltIn:
    name: str
    #: short, for the list's views row
    label: str
    part: Callable[[datetime, ZoneInfo], ListPart]


def _failed_last_hour(now: datetime, tz: ZoneInfo) -> ListPart:
    return ListPart(filters=ListFilters(status=TaskStatus.FAILED, within_minutes=60))


BUILT_INS = (
    BuiltIn("Failed · last hour", "🔴 Failed 1h", _failed_last_hour),
    BuiltIn("Waiting for an answer", "🟠 Waiting",
            lambda now, tz: ListPart(filters=ListFilters(status=TaskStatus.PAUSED))),
    BuiltIn("Running longest", "⚪ Longest",
            lambda now, tz: ListPart(filters=ListFilters(status=TaskStatus.RUNNING),
                                     sort=Sort(SortField.DURATION, True))),
)


def body_of(part: ListPart) -> dict[str, Any]:
    """What is saved: the filters and the sort (a view opens at page 1)."""
    body = msgspec.to_builtins(ListPart(filters=part.filters, sort=part.sort))
    assert isinstance(body, dict)
    return body


def part_of(body: dict[str, Any]) -> ListPart | None:
    """A saved body as a list part; None if this version cannot read it."""
    try:
        return msgspec.convert(body, ListPart)
    except (msgspec.ValidationError, TypeError, ValueError):
        return None


def resolve(arg: str, saved: list[SavedView], now: datetime, tz: ZoneInfo) -> ListPart | None:
    """The list a view button opens; None if the view is gone."""
    kind, number = arg[:1], arg[1:]
    if not number.isascii() or not number.isdigit():
        return None
    if kind == "b" and int(number) < len(BUILT_INS):
        return BUILT_INS[int(number)].part(now, tz)
    view = next((v for v in saved if kind == "s" and v.id == int(number)), None)
    return part_of(view.body) if view else None


def views_row(saved: list[SavedView], view: str) -> list[InlineKeyboardButton]:
    """📌 (save this list) and the chat's views, saved ones first; ⋯ when there are more."""
    entries = [(fmt.truncate(v.name, LABEL_WIDTH), f"s{v.id}") for v in saved]
    entries += [(b.label, f"b{i}") for i, b in enumerate(BUILT_INS)]
    row = [button("📌", Action.VIEW_SAVE, view)]
    if len(entries) > ROW_VIEWS:
        entries = [*entries[:ROW_VIEWS - 1]]
        row += [button(label, Action.VIEW_OPEN, view, arg) for label, arg in entries]
        row.append(button("⋯ Views", Action.VIEWS, view))
        return row
    return row + [button(label, Action.VIEW_OPEN, view, arg) for label, arg in entries]


def render_views(saved: list[SavedView], view: str, now: datetime, tz: ZoneInfo,
                 header: Callable[[ListPart], str]) -> Rendered:
    """The views screen: every view with what it shows; open, rename, delete."""
    rows: list[list[InlineKeyboardButton]] = []
    built = [{"name": b.name, "what": header(b.part(now, tz))} for b in BUILT_INS]
    rows += [[button(b.name, Action.VIEW_OPEN, view, f"b{i}")] for i, b in enumerate(BUILT_INS)]
    mine = []
    for v in saved:
        part = part_of(v.body)
        mine.append({"name": v.name, "what": header(part) if part else "(unreadable)"})
        rows.append([button(fmt.truncate(v.name, 24), Action.VIEW_OPEN, view, f"s{v.id}"),
                     button("✏️", Action.VIEW_RENAME, view, v.id),
                     button("🗑", Action.VIEW_DELETE, view, v.id)])
    rows.append([button("📌 Save this list", Action.VIEW_SAVE, view),
                 button("« Back", Action.BACK, view)])
    return Rendered(render("views", built=built, saved=mine), InlineKeyboardMarkup(rows))


def check_name(text: str) -> str:
    """A view name as typed, or ValueError with the line to show."""
    name = " ".join(text.split())
    if not 1 <= len(name) <= NAME_MAX:
        raise ValueError(f"A view name must be 1–{NAME_MAX} characters.")
    return name
