"""One console message, many screens: list, filter menu, task detail, kill confirmation.

A press loads the message's state by the key in its button, applies the action, renders
the new screen into the same message and saves the state. Rendering by screen lives here;
what each action does lives in the feature handlers.
"""

from __future__ import annotations

import asyncio

from msgspec.structs import replace
from telegram import Message, ReplyParameters, Update
from telegram.ext import ContextTypes

from taskops.bot.bulk_view import SAMPLE, render_bulk_confirmation
from taskops.bot.context import Deps, deps
from taskops.bot.detail_view import render_detail, render_kill_confirmation
from taskops.bot.digest_view import PAGE_SIZE as DIGEST_PAGE_SIZE
from taskops.bot.digest_view import DigestAlerts, render_digest_page
from taskops.bot.list_view import header, menu_options, render_list, render_menu
from taskops.bot.press import ConsolePress, answer
from taskops.bot.restart_view import render_form, render_provider_menu
from taskops.bot.saved_views import render_views
from taskops.bot.ui import Rendered, edit, edit_by_id, fingerprint, keyboard_print
from taskops.bot.views import FilterName, Screen, ViewKind, ViewState, encode
from taskops.storage.console import ViewRecord
from taskops.storage.domain import PageRequest, ProviderChoice, TaskStatus


async def render_state(d: Deps, state: ViewState, key: str,
                       request: PageRequest | None = None, *,
                       chat_id: int | None = None) -> tuple[Rendered, ViewState]:
    """Render the state's screen; returns the state as rendered (with facts it learnt).
    ``request`` reads the list's page another way than by its number (◀/▶ from a row
    shown, ⏭ the last);
    ``chat_id`` is the message's chat, whose saved views the list offers."""
    if state.task_id is not None:
        task = await d.store.find_task(state.task_id)
        if task is None:
            return await render_state(d, state.back_to_list(), key, chat_id=chat_id)
        if state.screen is Screen.KILL:
            if task.status is TaskStatus.RUNNING:
                return render_kill_confirmation(task, key), state
            # The task ended meanwhile: back to where the confirmation came from.
            return await render_state(d, state.after_kill(), key, chat_id=chat_id)
        if state.restart is not None and state.screen is Screen.RESTART:
            return render_form(task, state.restart, key), state
        if state.restart is not None and state.screen is Screen.RESTART_PROVIDER:
            return render_provider_menu(task, state.restart, key, d.settings), state
        assert state.detail is not None
        detail = await render_detail(d.store, task, state.detail, key)
        return detail.rendered, replace(state, screen=Screen.DETAIL,
                                        detail=replace(detail.detail,
                                                       events_shown=task.event_count),
                                        shows_running=task.status is TaskStatus.RUNNING)
    if state.screen is Screen.BULK and state.bulk is not None:
        found = await d.store.tasks_by_ids(state.bulk.ids[:SAMPLE])
        sample = [found[i] for i in state.bulk.ids[:SAMPLE] if i in found]
        return render_bulk_confirmation(state.bulk, sample, d.settings.console.bulk_max,
                                        key), state
    if state.screen is Screen.DIGEST and state.digest is not None:
        digest = await d.store.push.digest_page(key, state.digest.page, DIGEST_PAGE_SIZE)
        alerts = DigestAlerts.of(await d.store.push.alerts_of_view(key), d.store.tz,
                                 d.store.clock())
        return render_digest_page(digest, key, state.digest.page, alerts), state
    if state.screen is Screen.VIEWS and chat_id is not None:
        return render_views(await d.store.console.saved_views(chat_id), key, d.store.clock(),
                            d.store.tz, header), state
    if state.screen is Screen.MENU and state.menu is not None:
        providers = []
        if state.menu.name is FilterName.PROVIDER:
            if state.menu.options:
                providers = [ProviderChoice.parse(k) for k in state.menu.options if k]
            else:
                # Only what would show tasks together with the other filters.
                providers = await d.store.provider_options(state.list.filters)
                state = state.with_menu_options(tuple(p.key() for p in providers))
        assert state.menu is not None
        return render_menu(state.list, state.menu, key,
                           menu_options(state.menu.name, providers)), state
    page = await d.store.list_tasks(state.list.filters, state.list.sort,
                                    request or state.list.page)
    state = replace(state.back_to_list(),
                    list=replace(state.list, page=page.page, first=page.first_anchor,
                                 last=page.last_anchor),
                    shows_running=any(t.status is TaskStatus.RUNNING for t in page.tasks))
    saved = await d.store.console.saved_views(chat_id) if chat_id is not None else None
    return render_list(page, state.list, key, d.store.tz, d.store.clock(), saved), state


async def without_unavailable_provider(d: Deps, state: ViewState) -> tuple[ViewState, bool]:
    """Drop a provider selection that no longer occurs under the other filters (after
    one of them changed); says whether it was dropped."""
    chosen = state.list.filters.provider
    if chosen is None or chosen in await d.store.provider_options(state.list.filters):
        return state, False
    return state.with_filters(provider=None), True


async def show_new(update: Update, context: ContextTypes.DEFAULT_TYPE, state: ViewState) -> None:
    """Send a new console message for ``state`` (from a command)."""
    d = deps(context)
    chat = update.effective_chat
    assert chat is not None
    assert update.effective_message is not None
    key = await d.store.console.create(ViewKind.LIST, chat.id, encode(state))
    rendered, state = await render_state(d, state, key, chat_id=chat.id)
    message = await update.effective_message.reply_text(rendered.text,
                                                        reply_markup=rendered.keyboard)
    await d.store.console.save(key, encode(state), message_id=message.message_id)
    d.rendered.put(key, fingerprint(rendered))
    shown(d, key, rendered)


async def show_reply(context: ContextTypes.DEFAULT_TYPE, chat_id: int, state: ViewState,
                     reply_to: int | None) -> str:
    """A new console message for ``state`` replying to ``reply_to`` (an alert, a digest,
    which stays as it is); its view key."""
    d = deps(context)
    key = await d.store.console.create(ViewKind.LIST, chat_id, encode(state))
    rendered, state = await render_state(d, state, key, chat_id=chat_id)
    message = await context.bot.send_message(
        chat_id, rendered.text, reply_markup=rendered.keyboard,
        reply_parameters=(ReplyParameters(reply_to, allow_sending_without_reply=True)
                          if reply_to else None))
    await d.store.console.save(key, encode(state), message_id=message.message_id)
    d.rendered.put(key, fingerprint(rendered))
    shown(d, key, rendered)
    return key


async def show_in(context: ContextTypes.DEFAULT_TYPE, view: ViewRecord, state: ViewState) -> None:
    """Render ``state`` into an existing console message (not from a press) and save it."""
    d = deps(context)
    rendered, state = await render_state(d, state.used(), view.key, chat_id=view.chat_id)
    await d.store.console.save(view.key, encode(state))
    d.rendered.put(view.key, fingerprint(rendered))
    assert view.message_id is not None
    await edit_by_id(context.bot, view.chat_id, view.message_id, rendered)
    shown(d, view.key, rendered)


async def finish_press(context: ContextTypes.DEFAULT_TYPE, press: ConsolePress, state: ViewState, *,
                       toast: str | None = None, alert: bool = False,
                       request: PageRequest | None = None) -> None:
    """Render ``state`` into the pressed message, answer the press, save the state."""
    d = deps(context)
    rendered, state = await render_state(d, state, press.key, request,
                                         chat_id=press.view.chat_id)
    shows = fingerprint(rendered)
    body = encode(state)
    # Staged before the edit and saved after it, so the press waits for the list read and
    # Telegram only: push asks this process's view cache whether a person took a digest
    # over (a pressed digest is no longer extended), and one chat's presses are handled
    # one at a time (bot/updates.py), so a quick next press finds the new state too.
    d.store.console.stage(press.view, body)
    if press.shows_ours and d.rendered.get(press.key) == shows:
        # The message already shows exactly this (Telegram would refuse the edit as "not
        # modified"): one request, not two.
        await answer(press.query, toast, alert)
    else:
        await asyncio.gather(answer(press.query, toast, alert),
                             _edit_pressed(press.message, rendered))
    await d.store.console.save(press.key, body)
    # Remembered once shown and saved: a failed edit must not pass for the message's
    # content, nor an unsaved state for the view's.
    d.rendered.put(press.key, shows)
    shown(d, press.key, rendered)


def shown(d: Deps, key: str, rendered: Rendered) -> None:
    """Remember the keyboard a console message now has: a press that brings it back acts
    on the view as cached (``bot/press.py``), with no read of the store."""
    fp = keyboard_print(rendered.keyboard)
    if fp is not None:
        d.keyboards.put(key, fp)
    else:
        d.keyboards.forget(key)


async def _edit_pressed(message: object, rendered: Rendered) -> None:
    # A message too old for the client to include cannot be edited; the answer still goes.
    if isinstance(message, Message):
        await edit(message, rendered)
