"""/tasks: the list, its filters (menus, typed dates, text), sort, pages and refresh."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes

from taskops.bot.callbacks import Action
from taskops.bot.commands import Command, reply_error
from taskops.bot.commands import register as register_command
from taskops.bot.context import deps
from taskops.bot.filters_text import FilterSyntaxError, check_range, parse_date, parse_list_args
from taskops.bot.handlers.prompts import ask, register_prompt
from taskops.bot.list_view import menu_options
from taskops.bot.press import ConsolePress, answer, load_press, on_press, press_task
from taskops.bot.render import render
from taskops.bot.screens import finish_press, show_in, show_new
from taskops.bot.views import FilterName, ListState, Screen
from taskops.storage.console import ViewRecord
from taskops.storage.domain import (
    SORT_CYCLE,
    ListFilters,
    ProviderChoice,
    Sort,
    TaskStatus,
    Trigger,
)

LIST_ACTIONS = (Action.PAGE, Action.REFRESH, Action.SORT, Action.CLEAR_FILTERS, Action.MENU,
                Action.CHOOSE, Action.MENU_PAGE, Action.BACK, Action.PROMPT_DATE, Action.NOOP,
                Action.OPEN_TASK)


async def tasks_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    try:
        state = parse_list_args(context.args or [])
    except FilterSyntaxError as exc:
        await reply_error(update, str(exc))
        return
    await show_new(update, context, state)


def _preset_dates(label: str, today: date, yesterday_24h: date) -> date:
    return {
        "Today": today,
        "Yesterday": today - timedelta(days=1),
        "Last 24 h": yesterday_24h,
        "Last 7 days": today - timedelta(days=6),
        "Last 30 days": today - timedelta(days=29),
    }[label]


def _next_sort(sort: Sort, what: str) -> Sort:
    if what == "dir":
        return Sort(sort.field, not sort.descending)
    i = SORT_CYCLE.index(sort.field)
    return Sort(SORT_CYCLE[(i + 1) % len(SORT_CYCLE)], True)


async def _choose(press: ConsolePress, context: ContextTypes.DEFAULT_TYPE) -> ListState | str:
    """The state after picking a menu option, or a message saying why not."""
    d = deps(context)
    state = press.state
    if state.screen is not Screen.MENU or state.menu is None:
        return state
    providers = [ProviderChoice.parse(k) for k in state.menu_options if k]
    options = menu_options(state, providers)
    index = press.callback.int_arg
    if not 0 <= index < len(options):
        return "That option is no longer there — open the menu again."
    value = options[index][1]
    menu = state.menu
    if menu is FilterName.STATUS:
        return state.with_filters(status=TaskStatus(value) if value else None)
    if menu is FilterName.TRIGGER:
        return state.with_filters(trigger=Trigger(value) if value else None)
    if menu is FilterName.PROVIDER:
        return state.with_filters(provider=ProviderChoice.parse(value) if value else None)
    now = d.store.clock()
    today = now.astimezone(d.store.tz).date()
    day = _preset_dates(value, today, (now - timedelta(hours=24)).astimezone(d.store.tz).date()) \
        if value else None
    new = state.with_filters(**{"date_from" if menu is FilterName.FROM else "date_to": day})
    try:
        check_range(new.filters)
    except FilterSyntaxError as exc:
        return str(exc)
    return new


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
    if cb.action is Action.PAGE:
        state = replace(state, page=cb.int_arg, screen=Screen.LIST)
    elif cb.action is Action.REFRESH:
        pass
    elif cb.action is Action.SORT:
        state = replace(state, sort=_next_sort(state.sort, cb.arg), page=1, screen=Screen.LIST)
    elif cb.action is Action.CLEAR_FILTERS:
        state = replace(state, filters=ListFilters(), page=1, screen=Screen.LIST)
    elif cb.action is Action.MENU:
        try:
            menu = FilterName(cb.arg)
        except ValueError:
            await answer(press.query)
            return
        state = replace(state, screen=Screen.MENU, menu=menu, menu_page=1, menu_options=())
    elif cb.action is Action.MENU_PAGE:
        state = replace(state, menu_page=max(1, cb.int_arg))
    elif cb.action is Action.BACK:
        state = replace(state, screen=Screen.LIST, menu=None, menu_options=(), task_id=None,
                        draft=None, draft_error=None)
    elif cb.action is Action.OPEN_TASK:
        task = await press_task(d, press, cb.int_arg)
        if task is None:
            return
        state = state.open_task(task.id)
    elif cb.action is Action.CHOOSE:
        chosen = await _choose(press, context)
        if isinstance(chosen, str):
            await answer(press.query, chosen, alert=True)
            return
        state = chosen
    await finish_press(context, press, state)


async def _ask_for_date(press: ConsolePress, context: ContextTypes.DEFAULT_TYPE) -> None:
    d = deps(context)
    field = FilterName(press.callback.arg) if press.callback.arg in ("from", "to") \
        else FilterName.FROM
    today = d.store.clock().astimezone(d.store.tz).date()
    await ask(context, press.view.chat_id,
              render("date_prompt", field=field.value.capitalize(), example=today.isoformat()),
              "YYYY-MM-DD", {"purpose": "date", "view": press.key, "field": field.value})
    await answer(press.query)


async def on_date_reply(update: Update, context: ContextTypes.DEFAULT_TYPE, prompt: ViewRecord,
                        view: ViewRecord, text: str) -> None:
    """A typed From/To date: applied to the list it was asked from, if valid."""
    message = update.effective_message
    assert message is not None
    state = ListState.from_json(view.body)
    try:
        day = parse_date(text)
        field = "date_from" if prompt.body["field"] == "from" else "date_to"
        state = state.with_filters(**{field: day})
        check_range(state.filters)
    except FilterSyntaxError as exc:
        await reply_error(update, str(exc))
        return
    await show_in(context, view, state)
    await deps(context).store.console.delete(prompt.key)


def register(app: Application) -> None:  # type: ignore[type-arg]
    register_command(Command("tasks", "List tasks, with filters", "[status:… trigger:… "
                             "provider:… from:… to:… sort:… page:…]"))
    app.add_handler(CommandHandler("tasks", tasks_command))
    app.add_handler(on_press(on_list_press, *LIST_ACTIONS))
    register_prompt("date", on_date_reply)
