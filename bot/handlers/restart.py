"""Edit & restart: a form in the task's message; typed fields by reply; one Save, one task."""

from __future__ import annotations

from msgspec.structs import replace
from telegram import Update
from telegram.ext import Application, ContextTypes

from taskops.bot.audit import AuditAction, admin_name, audit
from taskops.bot.callbacks import Action
from taskops.bot.commands import reply_error
from taskops.bot.context import deps
from taskops.bot.handlers.prompts import Reply, ask, register_prompt
from taskops.bot.press import ConsolePress, answer, load_press, on_press
from taskops.bot.push import alerts
from taskops.bot.render import render
from taskops.bot.restart_view import (
    BACK,
    FIELD_ASK,
    Field,
    edits,
    field_now,
    new_draft,
    provider_options,
    with_typed,
)
from taskops.bot.screens import finish_press, show_in
from taskops.bot.views import PromptState, Purpose, RestartDraft, Screen
from taskops.storage.domain import RESTART_DISABLED_REASON, InvalidTransition, StoreError

GONE = "This task is no longer there."
OPTION_GONE = "That option is no longer there."
FORM_CLOSED = "That form is closed — open Edit & restart again."


async def on_restart_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    press = await load_press(update, context)
    if press is None:
        return
    d = deps(context)
    state, cb = press.state, press.callback
    task = await d.store.find_task(state.task_id) if state.task_id is not None else None
    if task is None:
        await answer(press.query, GONE, alert=True)
        return
    if cb.action is Action.RESTART_OPEN:
        reason = RESTART_DISABLED_REASON.get(task.status)
        if reason:
            await answer(press.query, reason, alert=True)
            return
        await finish_press(context, press, state.open_restart(new_draft(task)))
        return
    draft = state.restart
    if state.screen not in (Screen.RESTART, Screen.RESTART_PROVIDER) or draft is None:
        # A stale form button (already saved or cancelled): show what is there now.
        await finish_press(context, press, state)
        return
    if cb.action is Action.RESTART_CANCEL:
        await finish_press(context, press, state.close_restart())
    elif cb.action is Action.RESTART_FIELD and cb.arg == Field.PROVIDER:
        await finish_press(context, press, state.with_draft(draft, Screen.RESTART_PROVIDER))
    elif cb.action is Action.RESTART_FIELD:
        if cb.arg not in FIELD_ASK:
            await answer(press.query)
            return
        field = Field(cb.arg)
        cap = d.settings.tasks.max_duration_cap_minutes
        await ask(context, press.view.chat_id,
                  render("field_prompt", ask=FIELD_ASK[field].format(cap=cap), task_id=task.id,
                         current=field_now(draft, field)),
                  field.value, PromptState(purpose=Purpose.RESTART, view=press.key,
                                           field=field.value))
        await answer(press.query)
    elif cb.action is Action.RESTART_PROVIDER:
        if cb.arg != BACK:
            options = provider_options(d.settings)
            index = cb.int_arg
            if not 0 <= index < len(options):
                await answer(press.query, OPTION_GONE, alert=True)
                return
            draft = replace(draft, provider=options[index])
        await finish_press(context, press, state.with_draft(replace(draft, error=None)))
    elif cb.action is Action.RESTART_SAVE:
        await _save(press, context, draft)


async def _save(press: ConsolePress, context: ContextTypes.DEFAULT_TYPE,
                draft: RestartDraft) -> None:
    d = deps(context)
    state = press.state
    task_id = state.task_id
    assert task_id is not None
    try:
        # The key makes a double press (or two admins on one form) create one task.
        new = await d.store.restart_task(task_id, edits(draft), key=f"{press.key}:{draft.nonce}")
    except (InvalidTransition, StoreError) as exc:
        await finish_press(context, press, state.with_draft(replace(draft, error=str(exc)),
                                                            state.screen),
                           toast=str(exc)[:200], alert=True)
        return
    await audit(d.store, press.user, AuditAction.RESTART, f"restarted as #{new.id}",
                task_id=task_id, chat_id=press.view.chat_id)
    await finish_press(context, press, state.open_task(new.id), toast=f"Restarted as #{new.id}.")
    # The alerts about the old run say so, and follow the new one.
    await alerts.restarted(d.store, d.telegram, task_id, new, admin_name(press.user))


async def on_field_reply(update: Update, context: ContextTypes.DEFAULT_TYPE, reply: Reply) -> None:
    state = reply.state
    if state.screen is not Screen.RESTART or state.restart is None:
        await reply_error(update, FORM_CLOSED)
        return
    d = deps(context)
    try:
        field = Field(reply.prompt.field or "")
    except ValueError:
        await reply_error(update, FORM_CLOSED)
        return
    draft = with_typed(state.restart, field, reply.text, d.settings.tasks.max_duration_cap_minutes)
    if draft.error is None:
        await d.store.console.delete(reply.prompt_key)
    await show_in(context, reply.view, state.with_draft(draft))


def register(app: Application) -> None:  # type: ignore[type-arg]
    app.add_handler(on_press(on_restart_press, Action.RESTART_OPEN, Action.RESTART_FIELD,
                             Action.RESTART_PROVIDER, Action.RESTART_SAVE,
                             Action.RESTART_CANCEL))
    register_prompt(Purpose.RESTART, on_field_reply)
