"""/tasks: the list, its filters (menus, typed dates, text), sort, pages and refresh."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes

from taskops.bot.callbacks import Action
from taskops.bot.commands import Command, reply_error
from taskops.bot.commands import register as register_command
from taskops.bot.context import Deps, deps
from taskops.bot.filters_text import FilterSyntaxError, check_range, parse_date, parse_list_args
from taskops.bot.handlers.prompts import Reply, ask, register_prompt
from taskops.bot.list_view import LAST, PROVIDER_DROPPED, ChoiceRefused, choose, next_sort
from taskops.bot.press import ConsolePress, answer, load_press, on_press, press_task
from taskops.bot.push import digest_alerts
from taskops.bot.render import render
from taskops.bot.screens import (
    finish_press,
    show_in,
    show_new,
    show_reply,
    without_unavailable_provider,
)
from taskops.bot.views import FilterName, PromptState, Purpose, ViewState
from taskops.storage.domain import ListFilters, PageRequest

LIST_ACTIONS = (Action.PAGE, Action.REFRESH, Action.SORT, Action.CLEAR_FILTERS, Action.MENU,
                Action.CHOOSE, Action.MENU_PAGE, Action.BACK, Action.PROMPT_DATE, Action.NOOP,
                Action.OPEN_TASK, Action.SEARCH)


async def tasks_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    try:
        part = parse_list_args(context.args or [])
    except FilterSyntaxError as exc:
        await reply_error(update, str(exc))
        return
    await show_new(update, context, ViewState.of_list(part))


async def on_list_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    press = await load_press(update, context)
    if press is None:
        return
    state, cb = press.state, press.callback
    d = deps(context)
    if cb.action is Action.NOOP:
        await answer(press.query)
        return
    if cb.action is Action.PROMPT_DATE:
        await _ask_for_date(press, context)
        return
    if cb.action is Action.SEARCH:
        await ask(context, press.view.chat_id, render("search_prompt"), "deploy #123",
                  PromptState(purpose=Purpose.SEARCH, view=press.key))
        await answer(press.query)
        return
    if cb.action is Action.PAGE and cb.arg == LAST:
        await finish_press(context, press, state.with_list(), request=PageRequest.last())
        return
    if cb.action is Action.PAGE:
        target = max(1, cb.int_arg)
        step = state.list.request(target)
        state = state.with_list(page=target)
        if isinstance(step, PageRequest):  # ◀/▶: from the row shown first or last
            await finish_press(context, press, state, request=step)
            return
    elif cb.action is Action.SORT:
        state = state.with_list(sort=next_sort(state.list.sort, cb.arg), page=1)
    elif cb.action is Action.CLEAR_FILTERS:
        state = state.with_list(filters=ListFilters(), page=1)
    elif cb.action is Action.MENU:
        try:
            state = state.open_menu(FilterName(cb.arg))
        except ValueError:
            await answer(press.query)
            return
    elif cb.action is Action.MENU_PAGE:
        state = state.menu_paged(cb.int_arg)
    elif cb.action is Action.BACK:
        state = state.back_to_list()
    elif cb.action is Action.OPEN_TASK:
        task = await press_task(d, press, cb.int_arg)
        if task is None:
            return
        state = state.open_task(task.id)
    if cb.action in (Action.OPEN_TASK, Action.BACK) and await _keeps_alerts(d, press):
        # A group's digest is its tasks' alert: it stays for everyone, the screen replies.
        await answer(press.query)
        await show_reply(context, press.view.chat_id, state, press.message.message_id)
        return
    elif cb.action is Action.CHOOSE:
        menu = state.menu
        try:
            state = choose(state, cb.int_arg, d.store.clock(), d.store.tz)
        except ChoiceRefused as exc:
            await answer(press.query, str(exc), alert=True)
            return
        if menu is not None and menu.name not in (FilterName.PROVIDER, FilterName.SORT):
            state, dropped = await without_unavailable_provider(d, state)
            if dropped:
                await finish_press(context, press, state, toast=PROVIDER_DROPPED)
                return
    await finish_press(context, press, state)


async def _keeps_alerts(d: Deps, press: ConsolePress) -> bool:
    """The press is on a group's digest (still showing the digest) that carries alerts."""
    return (press.view.chat_id < 0 and digest_alerts.page_shown(press.view) is not None
            and bool(await d.store.push.alerts_of_view(press.key)))


async def _ask_for_date(press: ConsolePress, context: ContextTypes.DEFAULT_TYPE) -> None:
    d = deps(context)
    dates = (FilterName.FROM, FilterName.TO)
    field = FilterName(press.callback.arg) if press.callback.arg in dates else FilterName.FROM
    today = d.store.clock().astimezone(d.store.tz).date()
    await ask(context, press.view.chat_id,
              render("date_prompt", field=field.value.capitalize(), example=today.isoformat()),
              "YYYY-MM-DD", PromptState(purpose=Purpose.DATE, view=press.key, field=field.value))
    await answer(press.query)


async def on_date_reply(update: Update, context: ContextTypes.DEFAULT_TYPE, reply: Reply) -> None:
    """A typed From/To date: applied to the list it was asked from, if valid."""
    try:
        day = parse_date(reply.text)
        field = "date_from" if reply.prompt.field == FilterName.FROM else "date_to"
        state = reply.state.with_filters(**{field: day})
        check_range(state.list.filters)
    except FilterSyntaxError as exc:
        await reply_error(update, str(exc))
        return
    state, _ = await without_unavailable_provider(deps(context), state)
    await show_in(context, reply.view, state)
    await deps(context).store.console.delete(reply.prompt_key)


async def on_search_reply(update: Update, context: ContextTypes.DEFAULT_TYPE,
                          reply: Reply) -> None:
    """Typed search words: applied to the list they were asked from; "-" clears them."""
    words = " ".join(reply.text.split())
    state = reply.state.with_filters(search="" if words == "-" else words)
    await show_in(context, reply.view, state)
    await deps(context).store.console.delete(reply.prompt_key)


def register(app: Application) -> None:  # type: ignore[type-arg]
    register_command(Command("tasks", "List tasks, with filters", "[status:… trigger:… "
                             "provider:… from:… to:… sort:… page:… words #id]"))
    app.add_handler(CommandHandler("tasks", tasks_command))
    app.add_handler(on_press(on_list_press, *LIST_ACTIONS))
    register_prompt(Purpose.DATE, on_date_reply)
    register_prompt(Purpose.SEARCH, on_search_reply)
