"""Edit & restart: a form in the task's message; typed fields by reply; one Save, one task."""

from __future__ import annotations

import logging
from dataclasses import replace

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, ContextTypes

from taskops.bot.callbacks import Action
from taskops.bot.context import deps
from taskops.bot.handlers.kill import admin_name
from taskops.bot.handlers.prompts import ask, register_prompt
from taskops.bot.render import render
from taskops.bot.restart_view import FIELD_ASK, Field, new_draft, provider_options
from taskops.bot.screens import Press, answer, finish_press, load_press, show_in
from taskops.bot.views import ListState, Screen
from taskops.storage.console import ViewRecord
from taskops.storage.domain import (
    RESTART_DISABLED_REASON,
    InvalidTransition,
    ProviderChoice,
    RestartEdits,
    StoreError,
)

log = logging.getLogger(__name__)
PROMPT_MAX = 32_000


def validate(field: str, text: str, cap: int) -> str | int:
    """The field's new value, or raise ValueError with the line to show."""
    if field == Field.NAME:
        name = " ".join(text.split())
        if not 1 <= len(name) <= 200:
            raise ValueError("A name must be 1–200 characters.")
        return name
    if field == Field.PROMPT:
        if not text.strip():
            raise ValueError("The prompt must not be empty.")
        if len(text) > PROMPT_MAX:
            raise ValueError(f"The prompt is {len(text):,} characters; at most "
                             f"{PROMPT_MAX:,} are allowed.")
        return text
    if not text.isdigit() or not 1 <= int(text) <= cap:
        raise ValueError(f"Max duration must be a whole number of minutes from 1 to {cap}.")
    return int(text)


async def on_restart_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    press = await load_press(update, context)
    if press is None:
        return
    d = deps(context)
    state, cb = press.state, press.callback
    task = await d.store.find_task(state.task_id) if state.task_id is not None else None
    if task is None:
        await answer(press.query, "This task is no longer there.", alert=True)
        return
    if cb.action is Action.RESTART_OPEN:
        reason = RESTART_DISABLED_REASON.get(task.status)
        if reason:
            await answer(press.query, reason, alert=True)
            return
        await finish_press(context, press, replace(state, screen=Screen.RESTART,
                                                   draft=new_draft(task), draft_error=None))
        return
    if state.screen not in (Screen.RESTART, Screen.RESTART_PROVIDER) or state.draft is None:
        # A stale form button (already saved or cancelled): show what is there now.
        await finish_press(context, press, state)
        return
    if cb.action is Action.RESTART_CANCEL:
        await finish_press(context, press, replace(state, screen=Screen.DETAIL, draft=None,
                                                   draft_error=None))
    elif cb.action is Action.RESTART_FIELD and cb.arg == "provider":
        await finish_press(context, press, replace(state, screen=Screen.RESTART_PROVIDER))
    elif cb.action is Action.RESTART_FIELD:
        if cb.arg not in FIELD_ASK:
            await answer(press.query)
            return
        assert press.query.message is not None
        cap = d.settings.tasks.max_duration_cap_minutes
        await ask(context, press.query.message.chat.id,
                  render("field_prompt", ask=FIELD_ASK[cb.arg].format(cap=cap),
                         task_id=task.id),
                  cb.arg, {"purpose": "restart", "view": press.key, "field": cb.arg})
        await answer(press.query)
    elif cb.action is Action.RESTART_PROVIDER:
        options = provider_options(d.settings)
        draft = dict(state.draft)
        if cb.arg != "back":
            index = cb.int_arg
            if not 0 <= index < len(options):
                await answer(press.query, "That option is no longer there.", alert=True)
                return
            draft["provider"] = options[index]
        await finish_press(context, press, replace(state, screen=Screen.RESTART, draft=draft,
                                                   draft_error=None))
    elif cb.action is Action.RESTART_SAVE:
        await _save(press, context, state)


async def _save(press: Press, context: ContextTypes.DEFAULT_TYPE, state: ListState) -> None:
    assert state.draft is not None
    assert state.task_id is not None
    d = deps(context)
    draft = state.draft
    edits = RestartEdits(
        name=str(draft["name"]), prompt=str(draft["prompt"]),
        provider=ProviderChoice.parse(str(draft["provider"])),
        max_duration_minutes=int(draft["max_duration"]))
    user = press.query.from_user
    try:
        # The key makes a double press (or two admins on one form) create one task.
        new = await d.store.restart_task(state.task_id, edits,
                                         key=f"{press.key}:{draft['nonce']}")
    except (InvalidTransition, StoreError) as exc:
        await finish_press(context, press, replace(state, draft_error=str(exc)),
                           toast=str(exc)[:200], alert=True)
        return
    await d.store.console.audit(actor_id=user.id, actor_name=admin_name(user),
                                action="restart", task_id=state.task_id,
                                outcome=f"restarted as #{new.id}")
    log.info("task#%d restarted as task#%d by %s", state.task_id, new.id, user.id)
    await finish_press(context, press, state.open_task(new.id),
                       toast=f"Restarted as #{new.id}.")


async def on_field_reply(update: Update, context: ContextTypes.DEFAULT_TYPE, prompt: ViewRecord,
                         view: ViewRecord, text: str) -> None:
    message = update.effective_message
    assert message is not None
    d = deps(context)
    state = ListState.from_json(view.body)
    if state.screen is not Screen.RESTART or state.draft is None:
        await message.reply_text(render("error_line", message="That form is closed — open "
                                        "Edit & restart again."))
        return
    field = str(prompt.body["field"])
    draft = state.draft
    try:
        value = validate(field, text, d.settings.tasks.max_duration_cap_minutes)
    except ValueError as exc:
        state = replace(state, draft_error=str(exc))
    else:
        key = "max_duration" if field == Field.DURATION else field
        state = replace(state, draft={**draft, key: value}, draft_error=None)
        await d.store.console.delete(prompt.key)
    await show_in(context, view, state)


def register(app: Application) -> None:  # type: ignore[type-arg]
    actions = "".join(a.value for a in (Action.RESTART_OPEN, Action.RESTART_FIELD,
                                        Action.RESTART_PROVIDER, Action.RESTART_SAVE,
                                        Action.RESTART_CANCEL))
    app.add_handler(CallbackQueryHandler(on_restart_press, pattern=f"^1:[{actions}]:"))
    register_prompt("restart", on_field_reply)
