"""A message's fingerprint (bot/ui.py) tells an edit that changes nothing from one that
does: any change of the text or of any button's text, data, link or copy text counts."""

from __future__ import annotations

import pytest
from telegram import CopyTextButton, InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo

from taskops.bot.ui import Rendered, fingerprint


def rendered(*buttons: InlineKeyboardButton, text: str = "<b>Tasks</b>") -> Rendered:
    return Rendered(text, InlineKeyboardMarkup([list(buttons)]))


BASE = InlineKeyboardButton("▶", callback_data="v1|page|abc|2")


@pytest.mark.parametrize("other", [
    rendered(BASE, text="<b>Tasks</b> "),
    rendered(InlineKeyboardButton("▶ ", callback_data="v1|page|abc|2")),
    rendered(InlineKeyboardButton("▶", callback_data="v1|page|abc|3")),
    rendered(InlineKeyboardButton("▶", url="https://example.com/a")),
    rendered(InlineKeyboardButton("▶", copy_text=CopyTextButton("prompt"))),
    rendered(InlineKeyboardButton("▶", web_app=WebAppInfo("https://example.com/app"))),
    rendered(BASE, BASE),
    Rendered("<b>Tasks</b>", InlineKeyboardMarkup([[BASE], []])),
])
def test_any_change_of_what_the_message_shows_changes_the_fingerprint(other: Rendered) -> None:
    assert fingerprint(other) != fingerprint(rendered(BASE))


def test_the_same_message_built_anew_has_the_same_fingerprint() -> None:
    def build() -> Rendered:
        return rendered(InlineKeyboardButton("▶", callback_data="v1|page|abc|2"),
                        InlineKeyboardButton("copy", copy_text=CopyTextButton("p")),
                        InlineKeyboardButton("app", web_app=WebAppInfo("https://e.x/a")))
    assert fingerprint(build()) == fingerprint(build())
    copies = [InlineKeyboardButton("c", copy_text=CopyTextButton(t)) for t in ("a", "b")]
    assert fingerprint(rendered(copies[0])) != fingerprint(rendered(copies[1]))
