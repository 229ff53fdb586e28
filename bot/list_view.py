"""The task list and its filter menus: rendering from a page of tasks and the view's list
part, and what picking a menu option or the Sort button changes."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from taskops.bot import format as fmt
from taskops.bot.bulk_view import LABEL
from taskops.bot.callbacks import Action
from taskops.bot.filters_text import FilterSyntaxError, check_range, window_text
from taskops.bot.render import render
from taskops.bot.saved_views import views_row
from taskops.bot.ui import Rendered, button
from taskops.bot.views import BulkAction, FilterName, ListPart, MenuPart, ViewState
from taskops.storage.console import SavedView
from taskops.storage.domain import (
    SORT_CYCLE,
    ProviderChoice,
    Sort,
    SortField,
    Task,
    TaskPage,
    TaskStatus,
    Trigger,
)

#: a phone shows about this many characters on a line (Telegram's default font, a 6" screen)
PHONE_COLUMNS = 38
#: numbered buttons per keyboard row (the grid that opens the rows; kill buttons likewise)
GRID_WIDTH = 5
MENU_PAGE_SIZE = 8
#: a one-character trigger mark for the row's second line (the name is in the detail)
TRIGGER_MARK = {
    Trigger.USER: "👤",
    Trigger.AGENT: "🤖",
    Trigger.CRONJOB: "⏰",
    Trigger.HEARTBEAT: "💓",
    Trigger.CONSOLIDATION: "🗂",
}


def filter_label(state: ListPart, name: FilterName) -> str:
    f = state.filters
    if name is FilterName.STATUS:
        return fmt.STATUS_LABEL[f.status] if f.status else "All"
    if name is FilterName.TRIGGER:
        return fmt.TRIGGER_LABEL[f.trigger] if f.trigger else "All"
    if name is FilterName.PROVIDER:
        if f.provider is None:
            return "All"
        return "Default" if f.provider.is_default else f"{f.provider.provider}/{f.provider.model}"
    day = f.date_from if name is FilterName.FROM else f.date_to
    return fmt.short_date(day) if day else "—"


def header(state: ListPart) -> str:
    f = state.filters
    parts = []
    if f.status:
        parts.append(fmt.STATUS_LABEL[f.status])
    if f.trigger:
        parts.append(fmt.TRIGGER_LABEL[f.trigger])
    if f.provider:
        parts.append(filter_label(state, FilterName.PROVIDER))
    if f.date_from:
        parts.append(f"from {fmt.short_date(f.date_from)}")
    if f.date_to:
        parts.append(f"to {fmt.short_date(f.date_to)}")
    if f.within_minutes:
        parts.append(f"last {window_text(f.within_minutes)}")
    if f.search:
        parts.append(f"🔎 {fmt.truncate(f.search, 40)}")
    arrow = "▼" if state.sort.descending else "▲"
    parts.append(f"sorted by {fmt.SORT_LABEL[state.sort.field]} {arrow}")
    if not f.any_set:
        parts.insert(0, "All")
    return " · ".join(parts)


def _row(number: int, task: Task, tz: ZoneInfo, now: datetime) -> dict[str, str]:
    """One task in two phone lines: number, badge, #id and name; then trigger, duration,
    tokens, cost and created (the provider and the token split are one tap away)."""
    lead = f"{number}. "
    name_width = max(12, PHONE_COLUMNS - len(lead) - 2 - len(f"#{task.id} "))
    return {
        "number": str(number),
        "badge": fmt.STATUS_BADGE[task.status],
        "id": str(task.id),
        "name": fmt.truncate(task.name, name_width),
        "trigger": TRIGGER_MARK[task.trigger],
        "duration": fmt.duration(task.duration_seconds(now)),
        "tokens": fmt.compact_number(task.total_tokens),
        "cost": fmt.cost(task.cost_usd),
        "created": fmt.row_time(task.created_at, tz, now),
    }


def _grid(labels: list[tuple[str, str, int]], view: str) -> list[list[InlineKeyboardButton]]:
    """(label, action, task id) buttons, ``GRID_WIDTH`` to a row."""
    cells = [button(label, Action(action), view, task_id) for label, action, task_id in labels]
    return [cells[i:i + GRID_WIDTH] for i in range(0, len(cells), GRID_WIDTH)]


def list_keyboard(page: TaskPage, state: ListPart, view: str,
                  saved: list[SavedView] | None = None) -> InlineKeyboardMarkup:
    rows = _grid([(str(i), Action.OPEN_TASK, t.id) for i, t in enumerate(page.tasks, 1)], view)
    rows += _grid([(f"🛑 {i}", Action.KILL_ASK, t.id) for i, t in enumerate(page.tasks, 1)
                   if t.status is TaskStatus.RUNNING], view)
    if page.page_count > 1:
        nav = []
        if page.page > 1:
            nav += [button("⏮", Action.PAGE, view, 1),
                    button("◀", Action.PAGE, view, page.page - 1)]
        if page.page < page.page_count:
            nav += [button("▶", Action.PAGE, view, page.page + 1),
                    button("⏭", Action.PAGE, view, LAST)]
        rows.append(nav)
    rows.append([button(f"Status: {filter_label(state, FilterName.STATUS)}", Action.MENU, view,
                         FilterName.STATUS.value),
                 button(f"Trigger: {filter_label(state, FilterName.TRIGGER)}", Action.MENU,
                         view, FilterName.TRIGGER.value),
                 button(f"Provider: {fmt.truncate(filter_label(state, FilterName.PROVIDER), 28)}",
                         Action.MENU, view, FilterName.PROVIDER.value)])
    arrow = "▼" if state.sort.descending else "▲"
    rows.append([button(f"From: {filter_label(state, FilterName.FROM)}", Action.MENU, view,
                         FilterName.FROM.value),
                 button(f"To: {filter_label(state, FilterName.TO)}", Action.MENU, view,
                         FilterName.TO.value),
                 button(f"↕ {fmt.SORT_LABEL[state.sort.field]} {arrow}", Action.MENU, view,
                         FilterName.SORT.value)])
    acts = {TaskStatus.RUNNING: BulkAction.KILL, TaskStatus.FAILED: BulkAction.RESTART}
    if state.filters.status in acts and page.total:
        action = acts[state.filters.status]
        rows.append([button(LABEL[action].format(n=f"{page.total:,}"), Action.BULK_ASK, view,
                            action.value)])
    last = [button("🔎", Action.SEARCH, view), button("🔄 Refresh", Action.REFRESH, view)]
    if state.filters.any_set:
        last.append(button("✖ Clear filters", Action.CLEAR_FILTERS, view))
    rows.append(last)
    if saved is not None:
        rows.append(views_row(saved, view))
    return InlineKeyboardMarkup(rows)


def render_list(page: TaskPage, state: ListPart, view: str, tz: ZoneInfo,
                now: datetime, saved: list[SavedView] | None = None) -> Rendered:
    text = render("task_list", header=header(state), filtered=state.filters.any_set,
                  rows=[_row(i, t, tz, now) for i, t in enumerate(page.tasks, 1)],
                  total=f"{page.total:,}", page=page.page, page_count=page.page_count)
    return Rendered(text, list_keyboard(page, state, view, saved))


# --- filter menus ---------------------------------------------------------------------

MENU_TITLES = {
    FilterName.SORT: "Sort by:",
    FilterName.STATUS: "Filter by status:",
    FilterName.TRIGGER: "Filter by trigger:",
    FilterName.PROVIDER: "Filter by provider / model:",
    FilterName.FROM: "Only tasks created on or after:",
    FilterName.TO: "Only tasks created on or before:",
}
DATE_PRESETS = {
    FilterName.FROM: ("Today", "Last 24 h", "Last 7 days", "Last 30 days"),
    FilterName.TO: ("Today", "Yesterday"),
}


OPTION_GONE = "That option is no longer there — open the menu again."
PROVIDER_DROPPED = "Provider filter cleared: no such tasks under the other filters."


class ChoiceRefused(ValueError):
    """A menu option that cannot be applied; the message says why."""


#: the argument of ⏭ (the last page, read from the end of the list: PageRequest.last())
LAST = "last"


class SortArg(StrEnum):
    """What the Sort cycle buttons of messages sent before the sort menu change."""

    #: the next field of the cycle, descending
    FIELD = "field"
    #: the other direction, same field
    DIRECTION = "dir"


def next_sort(sort: Sort, what: str) -> Sort:
    if what == SortArg.DIRECTION:
        return Sort(sort.field, not sort.descending)
    i = SORT_CYCLE.index(sort.field)
    return Sort(SORT_CYCLE[(i + 1) % len(SORT_CYCLE)], True)


def sort_key(sort: Sort) -> str:
    return f"{'-' if sort.descending else ''}{sort.field.value}"


def menu_options(name: FilterName, providers: list[ProviderChoice]) -> list[tuple[str, str]]:
    """(label, option key) pairs of the open menu; the key is what a press applies."""
    if name is FilterName.SORT:
        # Every field in both directions: any sort is two taps from the list.
        return [(f"{fmt.SORT_LABEL[f]} {arrow}", sort_key(Sort(f, desc)))
                for f in SORT_CYCLE for desc, arrow in ((True, "▼"), (False, "▲"))]
    if name is FilterName.STATUS:
        return [("All", "")] + [(f"{fmt.STATUS_BADGE[s]} {fmt.STATUS_LABEL[s]}", s.value)
                                for s in TaskStatus]
    if name is FilterName.TRIGGER:
        return [("All", "")] + [(fmt.TRIGGER_LABEL[t], t.value) for t in Trigger]
    if name is FilterName.PROVIDER:
        return [("All", "")] + [
            ("Default" if p.is_default else f"{p.provider}/{p.model}", p.key())
            for p in providers]
    assert name in DATE_PRESETS
    return [("Any day", "")] + [(label, label) for label in DATE_PRESETS[name]]


def preset_day(label: str, now: datetime, tz: ZoneInfo) -> date:
    today = now.astimezone(tz).date()
    return {
        "Today": today,
        "Yesterday": today - timedelta(days=1),
        "Last 24 h": (now - timedelta(hours=24)).astimezone(tz).date(),
        "Last 7 days": today - timedelta(days=6),
        "Last 30 days": today - timedelta(days=29),
    }[label]


def choose(state: ViewState, index: int, now: datetime, tz: ZoneInfo) -> ViewState:
    """The state after picking option ``index`` of the open menu; ChoiceRefused says why
    not (the option is gone, or the dates would be out of order)."""
    menu = state.menu
    if menu is None:
        return state
    providers = [ProviderChoice.parse(k) for k in menu.options if k]
    options = menu_options(menu.name, providers)
    if not 0 <= index < len(options):
        raise ChoiceRefused(OPTION_GONE)
    value = options[index][1]
    if menu.name is FilterName.SORT:
        field = SortField(value.lstrip("-"))
        return state.with_list(sort=Sort(field, value.startswith("-")), page=1)
    if menu.name is FilterName.STATUS:
        return state.with_filters(status=TaskStatus(value) if value else None)
    if menu.name is FilterName.TRIGGER:
        return state.with_filters(trigger=Trigger(value) if value else None)
    if menu.name is FilterName.PROVIDER:
        return state.with_filters(provider=ProviderChoice.parse(value) if value else None)
    day = preset_day(value, now, tz) if value else None
    new = state.with_filters(**{"date_from" if menu.name is FilterName.FROM else "date_to": day})
    try:
        check_range(new.list.filters)
    except FilterSyntaxError as exc:
        raise ChoiceRefused(str(exc)) from None
    return new


def render_menu(state: ListPart, menu: MenuPart, view: str,
                options: list[tuple[str, str]]) -> Rendered:
    rows: list[list[InlineKeyboardButton]] = []
    size = len(options) if menu.name is FilterName.SORT else MENU_PAGE_SIZE
    start = (menu.page - 1) * size
    shown = options[start:start + size]
    for i in range(0, len(shown), 2):
        rows.append([button(fmt.truncate(label, 30), Action.CHOOSE, view, start + i + j)
                     for j, (label, _) in enumerate(shown[i:i + 2])])
    pages = max(1, -(-len(options) // size))
    if pages > 1:
        nav = []
        if menu.page > 1:
            nav.append(button("◀", Action.MENU_PAGE, view, menu.page - 1))
        nav.append(button(f"{menu.page}/{pages}", Action.NOOP, view))
        if menu.page < pages:
            nav.append(button("▶", Action.MENU_PAGE, view, menu.page + 1))
        rows.append(nav)
    if menu.name in DATE_PRESETS:
        rows.append([button("📅 Type a date", Action.PROMPT_DATE, view, menu.name.value)])
    rows.append([button("« Back", Action.BACK, view)])
    current = (f"{fmt.SORT_LABEL[state.sort.field]} {'▼' if state.sort.descending else '▲'}"
               if menu.name is FilterName.SORT else filter_label(state, menu.name))
    text = render("filter_menu", header=header(state), title=MENU_TITLES[menu.name],
                  current=current)
    return Rendered(text, InlineKeyboardMarkup(rows))
