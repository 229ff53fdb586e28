"""Property tests: callback codec, text filters, and rendering any task text."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import Bot

from taskops.bot.callbacks import Action, BadCallback, Callback
from taskops.bot.detail_view import render_event
from taskops.bot.filters_text import FilterSyntaxError, parse_list_args, to_text
from taskops.bot.list_view import render_list
from taskops.bot.ui import MAX_TEXT, visible_length
from taskops.bot.views import ListPart
from taskops.storage.domain import (
    EventKind,
    ListFilters,
    ProviderChoice,
    Sort,
    SortField,
    Task,
    TaskEvent,
    TaskPage,
    TaskStatus,
    Trigger,
)
from tests.fakegram import FakeTelegram, FloodLimits, parse_html

keys = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
               min_size=1, max_size=8)


@given(st.sampled_from(list(Action)), keys, st.text(max_size=20).filter(lambda s: ":" not in s))
def test_callback_round_trip_within_64_bytes(action: Action, view: str, arg: str) -> None:
    callback = Callback(action, view, arg)
    try:
        data = callback.encode()
    except ValueError:
        assert len(f"1:{action.value}:{view}:{arg}".encode()) > 64
        return
    assert len(data.encode()) <= 64
    assert Callback.parse(data) == callback


@given(st.text(max_size=80))
def test_any_callback_data_parses_or_is_refused_cleanly(data: str) -> None:
    with contextlib.suppress(BadCallback):
        Callback.parse(data)


@given(st.builds(
    ListPart,
    filters=st.builds(
        ListFilters,
        status=st.none() | st.sampled_from(list(TaskStatus)),
        trigger=st.none() | st.sampled_from(list(Trigger)),
        provider=st.none() | st.just(ProviderChoice.default())
        | st.builds(ProviderChoice, st.from_regex(r"[a-z]{1,8}", fullmatch=True),
                    st.from_regex(r"[a-z0-9.\-]{1,12}", fullmatch=True)),
        date_from=st.none() | st.dates(date(2026, 1, 1), date(2026, 6, 30)),
        date_to=st.none() | st.dates(date(2026, 7, 1), date(2026, 12, 31)),
        within_minutes=st.none() | st.integers(1, 366 * 24 * 60)),
    sort=st.builds(Sort, st.sampled_from(list(SortField)), st.booleans()),
    page=st.integers(1, 500)))
def test_text_filters_round_trip(state: ListPart) -> None:
    assert parse_list_args(to_text(state).split()) == state


@given(st.lists(st.text(max_size=30) | st.text(min_size=300, max_size=5000), max_size=6))
def test_any_text_filter_parses_or_says_why_in_one_line(args: list[str]) -> None:
    # Telegram command arguments never contain whitespace (PTB splits on it).
    tokens = [a for a in args if a and not any(c.isspace() for c in a)]
    problem = ""
    try:
        parse_list_args(tokens)
    except FilterSyntaxError as exc:
        problem = str(exc)
    assert "\n" not in problem
    assert len(problem) < 300


@pytest_asyncio.fixture
async def bot_and_chat() -> AsyncIterator[tuple[Bot, int]]:
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    server = FakeTelegram(token="1:PROPS", flood=FloodLimits.off())
    await server.start()
    user = server.add_user(7, "Prop")
    server.private_chat(user)
    bot = Bot("1:PROPS", base_url=server.bot_base_url)
    async with bot:
        yield bot, user.id
    await server.stop()


hostile = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=10_000) | \
    st.sampled_from(["<b>&amp;</b>", "a & b < c > d", "\u202eevil rtl", "🚀" * 3000,
                     "</blockquote><pre>", "&#x1F600; &nbsp; &", " " * 50 + "x"])


def make_task(i: int, name: str, provider: str, model: str, now: datetime) -> Task:
    return Task(
        id=10**9 + i, name=name, prompt=name, status=list(TaskStatus)[i % 4],
        trigger=list(Trigger)[i % 5], trigger_source_id=None, provider=provider, model=model,
        used_default=i % 2 == 0, max_duration_minutes=60, parent_session=None,
        restarted_from_id=None, created_at=now - timedelta(days=400), started_at=now
        - timedelta(hours=30), finished_at=None if i % 4 < 2 else now, prompt_tokens=10**9,
        completion_tokens=10**9, cost_usd=None if i % 3 == 0 else 123456.789, tool_call_count=1,
        result_status=None, summary=name, error=None, killed_by=None, last_event_at=None,
        event_count=0)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(names=st.lists(hostile, min_size=1, max_size=20), provider=hostile, model=hostile)
async def test_any_task_text_renders_a_message_telegram_accepts(
        bot_and_chat: tuple[Bot, int], names: list[str], provider: str, model: str) -> None:
    bot, chat_id = bot_and_chat
    now = datetime(2026, 11, 20, tzinfo=UTC)
    tasks = [make_task(i, n, provider, model, now) for i, n in enumerate(names)]
    page = TaskPage(tasks, total=10**6, page=49_999, page_size=20)
    state = ListPart(filters=ListFilters(status=TaskStatus.FAILED, date_from=date(2026, 1, 1)))
    rendered = render_list(page, state, "Ab12Cd34", ZoneInfo("Asia/Kolkata"), now)
    assert visible_length(rendered.text) <= MAX_TEXT
    await bot.send_message(chat_id, rendered.text, reply_markup=rendered.keyboard,
                           parse_mode="HTML")


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(list(EventKind)), text=hostile, other=hostile,
       is_error=st.booleans(), show_thinking=st.booleans())
def test_any_event_renders_valid_bounded_html(kind: EventKind, text: str, other: str,
                                              is_error: bool, show_thinking: bool) -> None:
    payload = {"text": text, "tool": other, "arguments": {"q": text, other: [1, 2]},
               "result": other, "is_error": is_error, "duration_ms": 1234, "summary": text,
               "status": "question", "new": "failed", "old": "running", "message": other,
               "parent_session": other, "by": other}
    event = TaskEvent(1, 1, 1, datetime(2026, 11, 20, tzinfo=UTC), kind, payload)
    html = render_event(event, ZoneInfo("UTC"), show_thinking)
    plain, _ = parse_html(html, strict=True)
    assert visible_length(html) <= 3500
    assert len(plain) > 0
