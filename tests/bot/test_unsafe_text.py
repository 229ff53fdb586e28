"""Agent and tool text made safe once, where it enters the store.

Any text — lone UTF-16 surrogates and NUL included — through every entry of the store
API is stored identically on SQLite and PostgreSQL, and every screen rendered from it is
a message Telegram accepts (the fake server checks the HTML, the 4096-character limit,
the buttons) and the full log encodes as a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest_asyncio
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from telegram import Bot

from taskops.bot.detail_view import render_detail, render_full_log, render_kill_confirmation
from taskops.bot.digest_view import PAGE_SIZE, render_digest
from taskops.bot.list_view import render_list
from taskops.bot.push import messages
from taskops.bot.restart_view import new_draft, render_form
from taskops.bot.ui import MAX_TEXT, Rendered, visible_length
from taskops.bot.views import DetailPart, ListPart
from taskops.storage import rules
from taskops.storage.domain import (
    EventKind,
    ProviderChoice,
    RestartEdits,
    StoreError,
    Task,
    TaskDraft,
    TaskStatus,
)
from taskops.storage.push_store import DigestItem
from taskops.storage.store import TaskStore
from tests.conftest import reset_database
from tests.factories import FakeClock, make_settings
from tests.fakegram import FakeTelegram, FloodLimits

SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff", "\ud83d", "\ude00"]
#: any code point, surrogates included, with NUL and surrogates (lone, and now and then
#: a pair held as two code points) in most examples
unsafe = st.lists(st.text(st.characters(exclude_categories=()), max_size=40)
                  | st.sampled_from(["\x00", *SURROGATES]), max_size=12).map("".join)
unsafe_name = unsafe.map(lambda s: "n" + s[:60])
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.floats() | unsafe,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(unsafe, inner, max_size=4),
    max_leaves=12)


@given(unsafe)
def test_clean_text_leaves_nothing_an_engine_or_telegram_refuses(text: str) -> None:
    cleaned = rules.clean_text(text)
    cleaned.encode("utf-8")  # no lone surrogate left
    assert "\x00" not in cleaned
    assert len(cleaned) <= len(text)
    assert rules.clean_text(cleaned) == cleaned
    if "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text):
        assert cleaned is text


@given(json_value)
def test_clean_reaches_every_string_of_a_payload(value: Any) -> None:
    cleaned = rules.clean(value)
    text = json.dumps(cleaned, ensure_ascii=False, allow_nan=False)
    text.encode("utf-8")
    assert "\x00" not in text
    assert rules.clean(cleaned) == cleaned


@pytest_asyncio.fixture
async def stores(sqlite_url: str, postgres_url: str, tmp_path: Path
                 ) -> AsyncIterator[tuple[TaskStore, TaskStore]]:
    opened = []
    for url in (sqlite_url, postgres_url):
        store = await TaskStore.open(make_settings(tmp_path, url, {
            "ui": {"timezone": "Europe/Berlin"},
            "tasks": {"default_provider": "scripted", "default_model": "scripted"}}),
            clock=FakeClock())
        opened.append(store)
    yield opened[0], opened[1]
    for store in opened:
        await store.close()


@pytest_asyncio.fixture
async def bot_and_chat() -> AsyncIterator[tuple[Bot, int]]:
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    server = FakeTelegram(token="1:UNSAFE", flood=FloodLimits.off())
    await server.start()
    user = server.add_user(7, "Prop")
    server.private_chat(user)
    bot = Bot("1:UNSAFE", base_url=server.bot_base_url)
    async with bot:
        yield bot, user.id
    await server.stop()


async def write_everything(store: TaskStore, name: str, text: str, other: str,
                           payload: Any) -> list[int]:
    """Every entry of the store API that takes text, with the given text; the task ids."""
    created = await store.create_task(TaskDraft(name=name, prompt=text, parent_session=other))
    await store.start_task(created.id)
    await store.append_event(created.id, EventKind.TOOL_CALL, {
        "tool": other, "arguments": {text: payload, "q": other}, "result": text,
        "is_error": True, "duration_ms": 12})
    await store.append_event(created.id, EventKind.TEXT, {"text": text, other: payload})
    await store.append_event(created.id, EventKind.THINKING, {"text": other})
    await store.finish_task(created.id, f"{text}\nSTATUS: question\nSUMMARY: {other}")
    await store.resume_task(created.id, "a" + text, by=other)
    await store.fail_task(created.id, "e" + text, summary=other)
    restarted = await store.restart_task(created.id, RestartEdits(name=name + other[:5],
                                                                   prompt="p" + other))
    await store.start_task(restarted.id)
    await store.kill_task(restarted.id, by=other)
    done = await store.create_task(TaskDraft(name=other[:50] or "x", prompt="p",
                                             provider=ProviderChoice("prov" + other[:10],
                                                                     "model" + text[:10])))
    await store.start_task(done.id)
    await store.finish_task(done.id, f"STATUS: completed\nSUMMARY: {text}")
    key = await store.console.create("list", 7, {"name": text, other: [payload]})
    await store.console.save(key, {"draft": {"name": other, "prompt": text}})
    await store.console.audit(actor_id=7, actor_name=other, action="kill",
                              task_id=created.id, outcome=text)
    await store.push.subscribe(7, {"statuses": [text]}, created_by=7)
    return [created.id, restarted.id, done.id]


async def stored(store: TaskStore, ids: list[int]) -> list[Any]:
    """What the store gives back, without what differs between engines by design."""
    result: list[Any] = []
    for task_id in ids:
        task = asdict(await store.get_task(task_id))
        for volatile in ("id", "created_at", "started_at", "finished_at", "last_event_at",
                         "restarted_from_id", "duration_ms"):
            task.pop(volatile, None)
        events = (await store.list_events(task_id, 0, 100)).events
        result.append((task, [(e.kind, e.payload) for e in events]))
    views = await store.console.of_kind("list")
    result.append([v.body for v in views])
    result.append([(a.actor_name, a.outcome) for a in await store.console.audit_log()])
    result.append([s.settings for s in await store.push.subscriptions()])
    return result


def no_unsafe_text(value: Any) -> None:
    if isinstance(value, str):
        value.encode("utf-8")
        assert "\x00" not in value
    elif isinstance(value, dict):
        for key, inner in value.items():
            no_unsafe_text(key)
            no_unsafe_text(inner)
    elif isinstance(value, list | tuple):
        for inner in value:
            no_unsafe_text(inner)


async def screens(store: TaskStore, tasks: list[Task]) -> list[Rendered | str]:
    """Every screen and push message the console renders from these tasks."""
    now = store.clock()
    key = "Ab12Cd34"
    page = await store.list_tasks()
    shown: list[Rendered | str] = [render_list(page, ListPart(), key, store.tz, now)]
    for task in tasks:
        for thinking in (False, True):
            detail = await render_detail(store, task, DetailPart(task_id=task.id,
                                                                 show_thinking=thinking), key)
            shown.append(detail.rendered)
        shown.append(render_kill_confirmation(task, key))
        shown.append(render_form(task, new_draft(task), key))
        shown.append(messages.notification(task, task.status, {"message": task.error or ""},
                                           key, now))
        shown.append(messages.stuck(task, "idle", key, now))
        events = (await store.list_events(task.id, 0, 100)).events
        for event in events:
            if event.kind is EventKind.INJECTION:
                block = str(event.payload.get("text") or "")
                shown.append(messages.injection(messages.Injection.parse(task.id, block), task))
    items = [DigestItem(t.id, t.status, t.name) for t in tasks]
    shown.append(render_digest(len(items) * 9, {TaskStatus.FAILED: len(items) * 9},
                               items[:PAGE_SIZE], 30, key, page=2))
    return shown


# No shrinking: each example writes to both databases, and a failure prints its example.
@settings(max_examples=20, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=unsafe_name, text=unsafe, other=unsafe, payload=json_value)
async def test_any_text_is_stored_alike_and_every_screen_renders_it(
        stores: tuple[TaskStore, TaskStore], bot_and_chat: tuple[Bot, int],
        name: str, text: str, other: str, payload: Any) -> None:
    bot, chat_id = bot_and_chat
    results = []
    for store in stores:
        await reset_database(store)
        await store.rebuild_counts()
        try:
            ids = await write_everything(store, name, text, other, payload)
        except StoreError as refused:  # e.g. a name that is only spaces: refused alike
            results.append(type(refused))
            continue
        results.append(await stored(store, ids))
    sqlite_result, pg_result = results
    assert sqlite_result == pg_result
    if not isinstance(pg_result, list):
        return
    no_unsafe_text(pg_result)
    store = stores[1]
    tasks = [await store.get_task(t.id) for t in (await store.list_tasks()).tasks]
    for task in tasks:
        assert task.name == rules.clean_text(task.name)
    assert any(t.prompt == rules.clean_text(text) for t in tasks)
    for screen in await screens(store, tasks):
        text, keyboard = ((screen.text, screen.keyboard) if isinstance(screen, Rendered)
                          else (screen, None))
        assert visible_length(text) <= MAX_TEXT
        await bot.send_message(chat_id, text, reply_markup=keyboard, parse_mode="HTML")
    for task in tasks:
        (await render_full_log(store, task)).encode("utf-8")
