"""Every parser of typed input, fed arbitrary Unicode: a value, or one clear line — never
another exception (a traceback and no answer is what issue 15 found)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskops.bot.commands import parse_task_id
from taskops.bot.filters_text import (
    FilterSyntaxError,
    parse_date,
    parse_list_args,
    parse_window,
    window_text,
)
from taskops.bot.handlers.audit_log import MAX_COUNT, parse_audit_args
from taskops.bot.restart_view import Field, new_draft, with_typed
from taskops.bot.saved_views import NAME_MAX, check_name
from tests.factories import sample_task

#: digits ``str.isdigit`` accepts and ``int`` refuses, and other tricky numerals
NUMERALS = st.sampled_from(["²", "³", "¹²", "①", "٣", "１２", "𝟙", "0", "-1", "+1", " 1", "1_0",
                            "9" * 5000, "#", "##1", "#²"])
ANY_TEXT = st.one_of(st.text(), NUMERALS)


def one_line(message: str) -> bool:
    return bool(message) and "\n" not in message and len(message) <= 200


@given(st.lists(st.one_of(ANY_TEXT, NUMERALS.map(lambda n: f"page:{n}"),
                          NUMERALS.map(lambda n: f"last:{n}h"),
                          st.sampled_from(["to:9999-12-31", "from:0001-01-01", "from:",
                                           "sort:", "status:²", "last:0m", "last:367d",
                                           "last:1H", "last:²h", "last:"])), max_size=4))
def test_list_args_parse_or_say_one_line(args: list[str]) -> None:
    try:
        part = parse_list_args(args)
    except FilterSyntaxError as exc:
        message = str(exc)
    else:
        message = "ok"
        assert part.page >= 1
    assert one_line(message)


@given(ANY_TEXT)
def test_windows_parse_or_say_one_line(text: str) -> None:
    message = "ok"
    try:
        minutes = parse_window(text)
    except FilterSyntaxError as exc:
        message = str(exc)
    else:
        assert 1 <= minutes <= 366 * 24 * 60
        assert parse_window(window_text(minutes)) == minutes
    assert one_line(message)


def test_windows_in_every_unit() -> None:
    assert [parse_window(t) for t in ("45m", "1h", "90M", "7d")] == [45, 60, 90, 7 * 1440]
    assert [window_text(m) for m in (45, 60, 90, 1440, 1500)] == ["45m", "1h", "90m", "1d",
                                                                  "25h"]
    with pytest.raises(FilterSyntaxError, match="is not a window"):
        parse_window("1w")


@given(ANY_TEXT)
def test_dates_parse_or_say_one_line(text: str) -> None:
    message = "ok"
    try:
        parse_date(text)
    except FilterSyntaxError as exc:
        message = str(exc)
    assert one_line(message)


@given(st.lists(ANY_TEXT, max_size=3))
def test_task_ids_parse_or_are_none(args: list[str]) -> None:
    task_id = parse_task_id(args)
    assert task_id is None or 0 < task_id < 2**62


@given(st.sampled_from(list(Field)), ANY_TEXT)
def test_form_fields_take_the_value_or_say_one_line(field: Field, text: str) -> None:
    draft = with_typed(new_draft(sample_task()), field, text, 1440)
    if draft.error is not None:
        assert one_line(draft.error)
        assert "invalid literal" not in draft.error


def test_the_cases_issue_15_found() -> None:
    assert parse_task_id(["²"]) is None
    assert parse_task_id(["#12"]) == 12
    for args in (["page:²"], ["page:" + "9" * 5000], ["to:9999-12-31"], ["from:0001-01-01"]):
        with pytest.raises(FilterSyntaxError) as refused:
            parse_list_args(args)
        assert one_line(str(refused.value))
    draft = with_typed(new_draft(sample_task()), Field.DURATION, "²", 1440)
    assert draft.error == "Max duration must be a whole number of minutes from 1 to 1440."


@given(st.lists(st.one_of(ANY_TEXT, NUMERALS.map(lambda n: f"admin:{n}"),
                          st.sampled_from(["action:kill", "action:²", "admin:", "admin:@"])),
                max_size=4))
def test_audit_args_parse_or_say_one_line(args: list[str]) -> None:
    try:
        query = parse_audit_args(args)
    except ValueError as exc:
        message = str(exc)
    else:
        message = "ok"
        assert 1 <= query.count <= MAX_COUNT
    assert one_line(message)


@given(ANY_TEXT)
def test_view_names_are_taken_or_refused_in_one_line(text: str) -> None:
    try:
        name = check_name(text)
    except ValueError as exc:
        assert one_line(str(exc))  # noqa: PT017
    else:
        assert 1 <= len(name) <= NAME_MAX
        assert name == " ".join(name.split())
