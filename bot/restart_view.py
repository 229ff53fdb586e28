"""The Edit & restart form and its provider menu: the draft, its fields, and rendering."""

from __future__ import annotations

import re
from enum import StrEnum

from msgspec.structs import replace
from telegram import CopyTextButton, InlineKeyboardButton, InlineKeyboardMarkup

from taskops.bot import format as fmt
from taskops.bot.callbacks import Action
from taskops.bot.render import render
from taskops.bot.ui import MAX_TEXT, Rendered, button, cut, visible_length
from taskops.bot.views import RestartDraft
from taskops.config import Settings
from taskops.storage.console import new_key
from taskops.storage.domain import ProviderChoice, RestartEdits, Task, Trigger

USE_DEFAULT = "Use task default"
SCHEDULED_TRIGGERS = (Trigger.CRONJOB, Trigger.HEARTBEAT, Trigger.CONSOLIDATION)
PROVIDER_MENU_SIZE = 12
PROMPT_MAX = 32_000
#: the prompt shown in full in the form's copyable block up to this many characters (a
#: message holds 4,096; the rest of the form needs a few hundred)
PROMPT_SHOWN = 3_000
#: Telegram's limit for a copy button's text
COPY_MAX = 256
#: the provider menu's "« Back" (its other buttons carry an option index)
BACK = "back"


class Field(StrEnum):
    """A form field an admin edits (the argument of its ✏️ button)."""

    NAME = "name"
    PROMPT = "prompt"
    DURATION = "duration"
    #: picked from a menu, not typed
    PROVIDER = "provider"


FIELD_ASK = {
    Field.NAME: "Send the new name (1–200 characters)",
    Field.PROMPT: "Send the new prompt (up to 32,000 characters)",
    Field.DURATION: "Send the max duration in whole minutes (1–{cap})",
}


def new_draft(task: Task) -> RestartDraft:
    """The form pre-filled from the original."""
    provider = ("default" if task.used_default or task.provider is None
                else ProviderChoice(task.provider, task.model).key())
    return RestartDraft(name=task.name, prompt=task.prompt, provider=provider,
                        max_duration=task.max_duration_minutes, nonce=new_key())


def with_typed(draft: RestartDraft, field: Field, text: str, cap: int) -> RestartDraft:
    """The draft with a typed value, or with the line saying what is wrong with it."""
    try:
        value = _validate(field, text, cap)
    except ValueError as exc:
        return replace(draft, error=str(exc))
    if field is Field.DURATION:
        return replace(draft, max_duration=value, error=None)
    return replace(draft, **{field.value: value}, error=None)


def _validate(field: Field, text: str, cap: int) -> str | int:
    if field is Field.NAME:
        name = " ".join(text.split())
        if not 1 <= len(name) <= 200:
            raise ValueError("A name must be 1–200 characters.")
        return name
    if field is Field.PROMPT:
        if not text.strip():
            raise ValueError("The prompt must not be empty.")
        if len(text) > PROMPT_MAX:
            raise ValueError(f"The prompt is {len(text):,} characters; at most "
                             f"{PROMPT_MAX:,} are allowed.")
        return text
    # ASCII digits only: "²" is a digit to str.isdigit, not to int().
    if not re.fullmatch(r"[0-9]{1,5}", text) or not 1 <= int(text) <= cap:
        raise ValueError(f"Max duration must be a whole number of minutes from 1 to {cap}.")
    return int(text)


def field_now(draft: RestartDraft, field: Field) -> str | None:
    """A typed field's value now, shown copyable in the prompt asking for the new one (so a
    change is copy, change, send); None when too long to fit the prompt message."""
    value = {Field.NAME: draft.name, Field.PROMPT: draft.prompt,
             Field.DURATION: str(draft.max_duration)}.get(field)
    fits = value is not None and len(value.encode("utf-16-le")) // 2 <= PROMPT_SHOWN
    return value if fits else None


def edits(draft: RestartDraft) -> RestartEdits:
    return RestartEdits(name=draft.name, prompt=draft.prompt,
                        provider=ProviderChoice.parse(draft.provider),
                        max_duration_minutes=draft.max_duration)


def provider_label(key: str) -> str:
    return USE_DEFAULT if key == "default" else key.replace("/", " – ", 1)


def provider_options(settings: Settings) -> list[str]:
    return ["default"] + [f"{p}/{m}" for p, m in settings.provider_models()]


def render_form(task: Task, draft: RestartDraft, key: str) -> Rendered:
    text = ""
    # The whole prompt when it fits (emoji count twice towards the 4,096), else cut saying so.
    for shown in (PROMPT_SHOWN, PROMPT_SHOWN // 2, PROMPT_SHOWN // 4):
        text = render(
            "restart_form", task=task, badge=fmt.STATUS_BADGE[task.status],
            original_name=fmt.truncate(task.name, 80), error=draft.error,
            name=fmt.truncate(draft.name, 200), prompt=cut(draft.prompt, shown),
            provider=provider_label(draft.provider), max_duration=draft.max_duration,
            notice=task.trigger.value if task.trigger in SCHEDULED_TRIGGERS else None)
        if visible_length(text) <= MAX_TEXT:
            break
    copy = ([[InlineKeyboardButton("📋 Copy prompt", copy_text=CopyTextButton(draft.prompt))]]
            if len(draft.prompt) <= COPY_MAX else [])
    keyboard = InlineKeyboardMarkup([
        *copy,
        [button("✏️ Name", Action.RESTART_FIELD, key, Field.NAME),
         button("✏️ Prompt", Action.RESTART_FIELD, key, Field.PROMPT)],
        [button("✏️ Provider / Model", Action.RESTART_FIELD, key, Field.PROVIDER),
         button("✏️ Max duration", Action.RESTART_FIELD, key, Field.DURATION)],
        [button("Save & restart", Action.RESTART_SAVE, key, task.id),
         button("Cancel", Action.RESTART_CANCEL, key, task.id)],
    ])
    return Rendered(text, keyboard)


def render_provider_menu(task: Task, draft: RestartDraft, key: str,
                         settings: Settings) -> Rendered:
    options = provider_options(settings)[:PROVIDER_MENU_SIZE * 2]
    rows = [[button(fmt.truncate(provider_label(o), 30), Action.RESTART_PROVIDER, key, i)
             for i, o in list(enumerate(options))[j:j + 2]] for j in range(0, len(options), 2)]
    rows.append([button("« Back", Action.RESTART_PROVIDER, key, BACK)])
    text = render("restart_provider", task=task, current=provider_label(draft.provider))
    return Rendered(text, InlineKeyboardMarkup(rows))
