"""One console message, many screens: list, filter menu, task detail, kill confirmation.

A press loads the message's state by the key in its button, applies the action, renders
the new screen into the same message and saves the state. Rendering by screen lives here;
what each action does lives in the feature handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace

from telegram import CallbackQuery, Message, Update
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from taskops.bot.callbacks import BadCallback, Callback
from taskops.bot.context import Deps, deps
from taskops.bot.detail_view import render_detail, render_kill_confirmation
from taskops.bot.list_view import menu_options, render_list, render_menu
from taskops.bot.restart_view import render_form, render_provider_menu
from taskops.bot.ui import Rendered, edit, edit_by_id, fingerprint
from taskops.bot.views import FilterName, ListState, Screen, ViewKind
from taskops.storage.console import ViewRecord
from taskops.storage.domain import ProviderChoice, TaskStatus

log = logging.getLogger(__name__)

EXPIRED = "This list has expired — send /tasks again."


async def render_state(d: Deps, state: ListState, key: str) -> tuple[Rendered, ListState]:
    """Render the state's screen; returns the state as rendered (with facts it learnt)."""
    task_screens = (Screen.DETAIL, Screen.KILL, Screen.RESTART, Screen.RESTART_PROVIDER)
    if state.screen in task_screens and state.task_id is not None:
        task = await d.store.find_task(state.task_id)
        if task is not None:
            if state.screen is Screen.KILL and task.status is TaskStatus.RUNNING:
                return render_kill_confirmation(task, key), state
            if state.screen is Screen.DETAIL:
                detail = await render_detail(d.store, task, state, key)
                return detail.rendered, detail.state
            if state.screen is Screen.RESTART:
                return render_form(task, state, key), state
            if state.screen is Screen.RESTART_PROVIDER:
                return render_provider_menu(task, state, key, d.settings), state
        # The task is gone, or no longer fits the screen (a kill screen for a task that
        # ended meanwhile): fall back to where the screen came from.
        fallback = (Screen.LIST if task is None
                    else state.back_to if state.screen is Screen.KILL else Screen.DETAIL)
        return await render_state(d, replace(state, screen=fallback), key)
    if state.screen is Screen.MENU and state.menu is not None:
        providers = []
        if state.menu is FilterName.PROVIDER:
            if state.menu_options:
                providers = [ProviderChoice.parse(k) for k in state.menu_options if k]
            else:
                providers = await d.store.provider_options()
                state = replace(state, menu_options=tuple(p.key() for p in providers))
        return render_menu(state, key, menu_options(state, providers)), state
    page = await d.store.list_tasks(state.filters, state.sort, state.page)
    state = replace(state, screen=Screen.LIST, page=page.page,
                    shows_running=any(t.status is TaskStatus.RUNNING for t in page.tasks))
    return render_list(page, state, key, d.store.tz, d.store.clock()), state


async def show_new(update: Update, context: ContextTypes.DEFAULT_TYPE, state: ListState) -> None:
    """Send a new console message for ``state`` (from a command)."""
    d = deps(context)
    chat = update.effective_chat
    assert chat is not None
    assert update.effective_message is not None
    key = await d.store.console.create(ViewKind.LIST, chat.id, state.to_json())
    rendered, state = await render_state(d, state, key)
    message = await update.effective_message.reply_text(rendered.text,
                                                        reply_markup=rendered.keyboard)
    await d.store.console.save(key, state.to_json(), message_id=message.message_id)


async def show_in(context: ContextTypes.DEFAULT_TYPE, view: ViewRecord, state: ListState) -> None:
    """Render ``state`` into an existing console message (not from a press) and save it."""
    d = deps(context)
    rendered, state = await render_state(d, state, view.key)
    await d.store.console.save(view.key, state.to_json())
    d.rendered[view.key] = fingerprint(rendered)
    assert view.message_id is not None
    await edit_by_id(context.bot, view.chat_id, view.message_id, rendered)


class Press:
    """A parsed, checked button press on a console message."""

    def __init__(self, query: CallbackQuery, callback: Callback, state: ListState) -> None:
        self.query = query
        self.callback = callback
        self.state = state

    @property
    def key(self) -> str:
        return self.callback.view


async def load_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Press | None:
    """Parse the press and load its view; answers and returns None when it is stale."""
    query = update.callback_query
    assert query is not None
    message = query.message
    try:
        callback = Callback.parse(query.data)
    except BadCallback:
        await answer(query, EXPIRED)
        return None
    record = await deps(context).store.console.get(callback.view)
    if record is None or message is None or record.chat_id != message.chat.id:
        await answer(query, EXPIRED)
        return None
    return Press(query, callback, ListState.from_json(record.body))


async def answer(query: CallbackQuery, text: str | None = None, alert: bool = False) -> None:
    # A late answer only fails for the user's spinner; it must not fail the press.
    with contextlib.suppress(BadRequest):
        await query.answer(text, show_alert=alert)


async def finish_press(context: ContextTypes.DEFAULT_TYPE, press: Press, state: ListState, *,
                       toast: str | None = None, alert: bool = False) -> None:
    """Render ``state`` into the pressed message, answer the press, save the state."""
    d = deps(context)
    rendered, state = await render_state(d, state, press.key)
    d.rendered[press.key] = fingerprint(rendered)
    message = press.query.message
    # One chat's presses are handled one at a time (bot/updates.py), so saving alongside
    # the edit cannot let a quick next press read the old state.
    await asyncio.gather(d.store.console.save(press.key, state.to_json()),
                         answer(press.query, toast, alert),
                         _edit_pressed(message, rendered))


async def _edit_pressed(message: object, rendered: Rendered) -> None:
    # A message too old for the client to include cannot be edited; the answer still goes.
    if isinstance(message, Message):
        await edit(message, rendered)
