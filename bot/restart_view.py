"""The Edit & restart form and its provider menu."""

from __future__ import annotations

from typing import Any

from telegram import InlineKeyboardMarkup

from taskops.bot import format as fmt
from taskops.bot.callbacks import Action
from taskops.bot.render import render
from taskops.bot.ui import Rendered, button
from taskops.bot.views import ListState
from taskops.config import Settings
from taskops.storage.console import new_key
from taskops.storage.domain import ProviderChoice, Task, Trigger

USE_DEFAULT = "Use task default"
SCHEDULED_TRIGGERS = (Trigger.CRONJOB, Trigger.HEARTBEAT, Trigger.CONSOLIDATION)
PROVIDER_MENU_SIZE = 12


class Field:
    NAME = "name"
    PROMPT = "prompt"
    DURATION = "duration"


FIELD_ASK = {
    Field.NAME: "Send the new name (1–200 characters)",
    Field.PROMPT: "Send the new prompt (up to 32,000 characters)",
    Field.DURATION: "Send the max duration in whole minutes (1–{cap})",
}


def new_draft(task: Task) -> dict[str, Any]:
    """The form pre-filled from the original; ``nonce`` makes one Save one task."""
    provider = ("default" if task.used_default or task.provider is None
                else ProviderChoice(task.provider, task.model).key())
    return {"name": task.name, "prompt": task.prompt, "provider": provider,
            "max_duration": task.max_duration_minutes, "nonce": new_key()}


def provider_label(key: str) -> str:
    return USE_DEFAULT if key == "default" else key.replace("/", " – ", 1)


def provider_options(settings: Settings) -> list[str]:
    return ["default"] + [f"{p}/{m}" for p, m in settings.provider_models()]


def render_form(task: Task, state: ListState, key: str) -> Rendered:
    draft = state.draft or new_draft(task)
    text = render(
        "restart_form", task=task, badge=fmt.STATUS_BADGE[task.status],
        original_name=fmt.truncate(task.name, 80), error=state.draft_error,
        name=fmt.truncate(str(draft["name"]), 200),
        prompt=fmt.truncate(str(draft["prompt"]), 300),
        provider=provider_label(str(draft["provider"])), max_duration=draft["max_duration"],
        notice=task.trigger.value if task.trigger in SCHEDULED_TRIGGERS else None)
    keyboard = InlineKeyboardMarkup([
        [button("✏️ Name", Action.RESTART_FIELD, key, Field.NAME),
         button("✏️ Prompt", Action.RESTART_FIELD, key, Field.PROMPT)],
        [button("✏️ Provider / Model", Action.RESTART_FIELD, key, "provider"),
         button("✏️ Max duration", Action.RESTART_FIELD, key, Field.DURATION)],
        [button("Save & restart", Action.RESTART_SAVE, key, task.id),
         button("Cancel", Action.RESTART_CANCEL, key, task.id)],
    ])
    return Rendered(text, keyboard)


def render_provider_menu(task: Task, state: ListState, key: str,
                         settings: Settings) -> Rendered:
    draft = state.draft or new_draft(task)
    options = provider_options(settings)[:PROVIDER_MENU_SIZE * 2]
    rows = [[button(fmt.truncate(provider_label(o), 30), Action.RESTART_PROVIDER, key, i)
             for i, o in list(enumerate(options))[j:j + 2]] for j in range(0, len(options), 2)]
    rows.append([button("« Back", Action.RESTART_PROVIDER, key, "back")])
    text = render("restart_provider", task=task, current=provider_label(str(draft["provider"])))
    return Rendered(text, InlineKeyboardMarkup(rows))
