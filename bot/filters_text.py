"""``/tasks status:failed trigger:cronjob provider:openai/gpt-4o from:… to:… last:1h
sort:-cost page:2``, and words to search for: ``/tasks deploy #123``."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

from taskops.bot.views import ListPart
from taskops.storage.domain import ListFilters, ProviderChoice, Sort, SortField, TaskStatus, Trigger

SORT_NAMES = {f.value: f for f in SortField}
#: typed dates this far from the ends of the calendar: a day's bounds in any time zone
#: (offsets stay under a day) are still dates Python and both engines can hold
FIRST_DAY = date(1, 1, 2)
LAST_DAY = date(9999, 12, 30)
#: a page number as typed: ASCII digits (not "²"), short enough to be a page
PAGE = re.compile(r"[0-9]{1,9}")
#: ``last:`` windows: 45m, 1h, 7d (ASCII digits, one unit)
WINDOW = re.compile(r"([0-9]{1,6})([mhd])")
WINDOW_MINUTES = {"m": 1, "h": 60, "d": 24 * 60}
#: a year: a window beyond it is a From day
WINDOW_MAX_MINUTES = 366 * 24 * 60


class FilterSyntaxError(ValueError):
    """One clear line saying which token is wrong and what is accepted."""


def _choices(values: list[str]) -> str:
    return ", ".join(values[:-1]) + " or " + values[-1]


def _show(token: str) -> str:
    """A user's token quoted back, cut short: an error line stays one short line."""
    token = " ".join(token.split())
    return token if len(token) <= 40 else token[:39] + "…"


def parse_date(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise FilterSyntaxError(f"'{_show(text)}' is not a date: use YYYY-MM-DD, "
                                "e.g. 2026-11-20.") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise FilterSyntaxError(f"{day.isoformat()} is out of range: use a day from "
                                f"{FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}.")
    return day


def parse_window(text: str) -> int:
    """``last:`` as minutes: 45m, 1h, 7d."""
    match = WINDOW.fullmatch(text.lower())
    minutes = int(match[1]) * WINDOW_MINUTES[match[2]] if match else 0
    if not 1 <= minutes <= WINDOW_MAX_MINUTES:
        raise FilterSyntaxError(f"'{_show(text)}' is not a window: use minutes, hours or "
                                "days up to a year, e.g. 45m, 1h or 7d.")
    return minutes


def window_text(minutes: int) -> str:
    """The shortest exact spelling of a window: 90 → 90m, 60 → 1h, 1440 → 1d."""
    for unit in ("d", "h"):
        if minutes % WINDOW_MINUTES[unit] == 0:
            return f"{minutes // WINDOW_MINUTES[unit]}{unit}"
    return f"{minutes}m"


def parse_list_args(args: list[str]) -> ListPart:
    """Parse every ``key:value`` token; the first bad one raises with a clear message."""
    filters = ListFilters()
    sort = Sort()
    page = 1
    words: list[str] = []
    for token in args:
        key, sep, value = token.partition(":")
        key = key.lower()
        if not sep:  # a word of the name or an id fragment (#123, 123)
            words.append(token)
            continue
        if not value:
            raise FilterSyntaxError(
                f"'{_show(token)}' is not a filter: use key:value with status, trigger, provider, "
                "from, to, last, sort or page.")
        if key == "status":
            try:
                filters = replace(filters, status=TaskStatus(value.lower()))
            except ValueError:
                raise FilterSyntaxError(f"Unknown status '{_show(value)}': use "
                                        f"{_choices([s.value for s in TaskStatus])}.") from None
        elif key == "trigger":
            try:
                filters = replace(filters, trigger=Trigger(value.lower()))
            except ValueError:
                raise FilterSyntaxError(f"Unknown trigger '{_show(value)}': use "
                                        f"{_choices([t.value for t in Trigger])}.") from None
        elif key == "provider":
            try:
                filters = replace(filters, provider=ProviderChoice.parse(value))
            except ValueError:
                raise FilterSyntaxError(f"'{_show(value)}' is not a provider: use provider/model "
                                        "(e.g. openai/gpt-4o) or default.") from None
        elif key == "from":
            filters = replace(filters, date_from=parse_date(value))
        elif key == "to":
            filters = replace(filters, date_to=parse_date(value))
        elif key == "last":
            filters = replace(filters, within_minutes=parse_window(value))
        elif key == "sort":
            descending = value.startswith("-")
            name = value.lstrip("-+").lower()
            if name not in SORT_NAMES:
                raise FilterSyntaxError(f"Unknown sort '{_show(value)}': use "
                                        f"{_choices(list(SORT_NAMES))}, with - for descending.")
            sort = Sort(SORT_NAMES[name], descending)
        elif key == "page":
            if not PAGE.fullmatch(value) or int(value) < 1:
                raise FilterSyntaxError(f"'{_show(value)}' is not a page number: use 1 to "
                                        "999,999,999.")
            page = int(value)
        else:
            raise FilterSyntaxError(f"Unknown filter '{_show(key)}': use status, trigger, "
                                    "provider, from, to, last, sort or page (or words to "
                                    "search for, without a colon).")
    filters = replace(filters, search=" ".join(words))
    check_range(filters)
    return ListPart(filters=filters, sort=sort, page=page)


def check_range(filters: ListFilters) -> None:
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise FilterSyntaxError(
            f"From ({filters.date_from.isoformat()}) is after To ({filters.date_to.isoformat()})"
            ": pick a From date on or before the To date.")


def to_text(state: ListPart) -> str:
    """The text form of a view's filters (the inverse of parse_list_args)."""
    f = state.filters
    parts = []
    if f.status:
        parts.append(f"status:{f.status.value}")
    if f.trigger:
        parts.append(f"trigger:{f.trigger.value}")
    if f.provider:
        parts.append(f"provider:{f.provider.key()}")
    if f.date_from:
        parts.append(f"from:{f.date_from.isoformat()}")
    if f.date_to:
        parts.append(f"to:{f.date_to.isoformat()}")
    if f.within_minutes:
        parts.append(f"last:{window_text(f.within_minutes)}")
    if state.sort != Sort():
        parts.append(f"sort:{'-' if state.sort.descending else ''}{state.sort.field.value}")
    if state.page != 1:
        parts.append(f"page:{state.page}")
    if f.search:
        parts.append(f.search)
    return " ".join(parts)
