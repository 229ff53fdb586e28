"""The view state's schema: what is stored reads back the same, and a body written by the
previous version (or damaged) loads or is expired — it never crashes a press."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskops.bot.views import (
    PUSH_MARK,
    SCHEMA,
    BulkAction,
    BulkPart,
    DetailPart,
    DigestPart,
    FilterName,
    KillPart,
    ListPart,
    MenuPart,
    PromptState,
    Purpose,
    RestartDraft,
    Screen,
    ViewExpired,
    ViewKind,
    ViewState,
    decode,
    decode_prompt,
    encode,
)
from taskops.storage.domain import ListFilters, ProviderChoice, Sort, SortField, TaskStatus, Trigger

providers = st.none() | st.just(ProviderChoice.default()) | st.builds(
    ProviderChoice, st.from_regex(r"[a-z]{1,8}", fullmatch=True),
    st.from_regex(r"[a-z0-9.\-/]{1,12}", fullmatch=True))
days = st.none() | st.dates(date(2020, 1, 1), date(2030, 12, 31))
list_parts = st.builds(
    ListPart,
    filters=st.builds(ListFilters, status=st.none() | st.sampled_from(list(TaskStatus)),
                      trigger=st.none() | st.sampled_from(list(Trigger)), provider=providers,
                      date_from=days, date_to=days),
    sort=st.builds(Sort, st.sampled_from(list(SortField)), st.booleans()),
    page=st.integers(1, 10**6))
task_ids = st.integers(1, 2**62)
details = st.builds(DetailPart, task_id=task_ids, page=st.integers(1, 50),
                    page_starts=st.lists(st.integers(0, 10**6), min_size=1, max_size=8)
                    .map(tuple), show_thinking=st.booleans())
drafts = st.builds(RestartDraft, name=st.text(max_size=200), prompt=st.text(max_size=500),
                   provider=st.sampled_from(["default", "openai/gpt-4o", "a/b/c"]),
                   max_duration=st.integers(1, 10_000), nonce=st.text(min_size=1, max_size=8),
                   error=st.none() | st.text(max_size=80))
pushed = st.none() | st.sampled_from([ViewKind.NOTICE, ViewKind.DIGEST])


@st.composite
def states(draw: st.DrawFn) -> ViewState:
    """Any state a console message can be in: a screen with the parts it needs, plus parts
    left from where it came from."""
    screen = draw(st.sampled_from(list(Screen)))
    detail = draw(details) if screen in (Screen.DETAIL, Screen.RESTART,
                                         Screen.RESTART_PROVIDER) else draw(st.none() | details)
    return ViewState(
        screen=screen, list=draw(list_parts),
        menu=(draw(st.builds(MenuPart, name=st.sampled_from(list(FilterName)),
                             page=st.integers(1, 9),
                             options=st.lists(st.text(max_size=20), max_size=5).map(tuple)))
              if screen is Screen.MENU else None),
        detail=detail,
        kill=(draw(st.builds(KillPart, task_id=task_ids,
                             back_to=st.sampled_from([Screen.LIST, Screen.DETAIL])))
              if screen is Screen.KILL else None),
        restart=(draw(drafts) if screen in (Screen.RESTART, Screen.RESTART_PROVIDER)
                 else None),
        bulk=(draw(st.builds(BulkPart, action=st.sampled_from(list(BulkAction)),
                             ids=st.lists(task_ids, min_size=1, max_size=50).map(tuple),
                             total=st.integers(1, 10**6), nonce=st.text(min_size=1, max_size=8)))
              if screen is Screen.BULK else None),
        digest=(draw(st.builds(DigestPart, page=st.integers(1, 999)))
                if screen is Screen.DIGEST else None),
        shows_running=draw(st.booleans()), pushed=draw(pushed))


@given(states())
def test_a_state_reads_back_as_it_was_stored(state: ViewState) -> None:
    body = encode(state)
    assert json.loads(json.dumps(body)) == body  # the store keeps JSON
    assert body["v"] == SCHEMA
    assert decode(body) == state


@given(states())
def test_a_push_mark_is_what_the_latest_view_rule_reads(state: ViewState) -> None:
    assert (encode(state).get(PUSH_MARK) is None) == (state.pushed is None)
    assert encode(state.used()).get(PUSH_MARK) is None


# --- bodies of the previous version ---------------------------------------------------------

def previous_body(*, status: str | None = None, trigger: str | None = None,
                  provider: str | None = None, date_from: str | None = None,
                  date_to: str | None = None, sort: str = "created", desc: bool = True,
                  page: int = 1, screen: str = "list", menu: str | None = None,
                  menu_page: int = 1, menu_options: list[str] | None = None,
                  task_id: int | None = None, back_to: str = "list",
                  shows_running: bool = False, detail_page: int = 1,
                  page_starts: list[int] | None = None, show_thinking: bool = False,
                  draft: dict[str, Any] | None = None, draft_error: str | None = None,
                  push: str | None = None) -> dict[str, Any]:
    """Exactly what ``ListState.to_json`` stored before the schema (every key, always)."""
    body: dict[str, Any] = {
        "status": status, "trigger": trigger, "provider": provider, "from": date_from,
        "to": date_to, "sort": sort, "desc": desc, "page": page, "screen": screen,
        "menu": menu, "menu_page": menu_page, "menu_options": menu_options or [],
        "task_id": task_id, "back_to": back_to, "shows_running": shows_running,
        "detail_page": detail_page, "page_starts": page_starts or [0],
        "show_thinking": show_thinking, "draft": draft, "draft_error": draft_error,
    }
    if push:
        body[PUSH_MARK] = push
    return body


#: the screens and menus the previous version had (bulk, views and the sort menu are newer)
PREVIOUS_SCREENS = ["list", "menu", "detail", "kill", "restart", "restart_provider"]
PREVIOUS_MENUS = ["status", "trigger", "provider", "from", "to"]


@st.composite
def previous_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Bodies the previous version wrote in its flows: each screen with what it set."""
    screen = draw(st.sampled_from(PREVIOUS_SCREENS))
    task = draw(task_ids) if screen != "list" and screen != "menu" else draw(
        st.none() | task_ids)  # a list keeps the id of the task it was on
    provider = draw(providers)
    day = draw(days)
    return previous_body(
        status=draw(st.none() | st.sampled_from([s.value for s in TaskStatus])),
        trigger=draw(st.none() | st.sampled_from([t.value for t in Trigger])),
        provider=provider.key() if provider else None,
        date_from=day.isoformat() if day else None,
        sort=draw(st.sampled_from([f.value for f in SortField])), desc=draw(st.booleans()),
        page=draw(st.integers(1, 10**6)), screen=screen,
        menu=(draw(st.sampled_from(PREVIOUS_MENUS)) if screen == "menu"
              else draw(st.none() | st.sampled_from(PREVIOUS_MENUS))),
        menu_page=draw(st.integers(1, 9)),
        menu_options=draw(st.lists(st.sampled_from(["", "default", "openai/gpt-4o"]),
                                   max_size=4)),
        task_id=task, back_to=draw(st.sampled_from(["list", "detail"])),
        shows_running=draw(st.booleans()), detail_page=draw(st.integers(1, 9)),
        page_starts=draw(st.lists(st.integers(0, 500), min_size=1, max_size=5)),
        show_thinking=draw(st.booleans()),
        draft=({"name": "n", "prompt": "p", "provider": "default", "max_duration": 30,
                "nonce": "Ab12Cd34"} if screen.startswith("restart") else None),
        draft_error=draw(st.none() | st.text(max_size=40)),
        push=draw(st.none() | st.sampled_from(["notice", "digest"])))


@given(previous_bodies())
def test_a_view_saved_by_the_previous_version_keeps_its_meaning(body: dict[str, Any]) -> None:
    state = decode(body)
    assert state.screen.value == body["screen"]
    f = state.list.filters
    assert (f.status, f.trigger) == (body["status"], body["trigger"])
    assert (f.provider.key() if f.provider else None) == body["provider"]
    assert (f.date_from.isoformat() if f.date_from else None) == body["from"]
    assert (state.list.sort.field.value, state.list.sort.descending) == (body["sort"],
                                                                        body["desc"])
    assert state.list.page == body["page"]
    assert state.shows_running == body["shows_running"]
    assert state.pushed == body.get(PUSH_MARK)
    if state.screen is Screen.MENU:
        assert state.menu is not None
        assert (state.menu.name, state.menu.page) == (body["menu"], body["menu_page"])
        assert list(state.menu.options) == body["menu_options"]
    if state.screen is not Screen.LIST and state.screen is not Screen.MENU:
        assert state.task_id == body["task_id"]
    if state.detail is not None:
        assert state.detail.task_id == body["task_id"]
        assert (state.detail.page, list(state.detail.page_starts)) == (body["detail_page"],
                                                                       body["page_starts"])
        assert state.detail.show_thinking == body["show_thinking"]
    if state.kill is not None:
        assert state.kill.back_to == body["back_to"]
        assert (state.detail is not None) == (body["back_to"] == "detail")
    if state.restart is not None:
        assert (state.restart.name, state.restart.error) == ("n", body["draft_error"])
    # Once read, it is stored in today's shape and reads back the same.
    assert decode(encode(state)) == state


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8)


@given(previous_bodies(), st.sampled_from(sorted(previous_body())), json_values)
def test_a_damaged_previous_body_loads_or_is_expired(body: dict[str, Any], key: str,
                                                     junk: Any) -> None:
    damaged = {**body, key: junk}
    try:
        state = decode(damaged)
    except ViewExpired:
        return
    assert decode(encode(state)) == state


@given(st.dictionaries(st.text(max_size=12), json_values, max_size=8))
def test_any_body_loads_or_is_expired(body: dict[str, Any]) -> None:
    try:
        state = decode(body)
    except ViewExpired:
        return
    assert decode(encode(state)) == state


@given(states(), st.integers().filter(lambda v: v != SCHEMA) | st.text(max_size=3))
def test_a_body_of_another_schema_version_is_expired(state: ViewState, version: Any) -> None:
    with pytest.raises(ViewExpired):
        decode({**encode(state), "v": version})


def test_a_screen_without_its_part_is_expired() -> None:
    body = encode(ViewState().open_task(7))
    with pytest.raises(ViewExpired, match="needs its task"):
        decode({**body, "detail": None})


def test_prompts_of_the_previous_version_read_as_they_were() -> None:
    assert decode_prompt({"purpose": "answer", "view": "Ab12Cd34", "task_id": 5}) == \
        PromptState(purpose=Purpose.ANSWER, view="Ab12Cd34", task_id=5)
    assert decode_prompt({"purpose": "date", "view": "k", "field": "from"}).field == "from"
    with pytest.raises(ViewExpired):
        decode_prompt({"purpose": "somethingelse", "view": "k"})
