"""The console while the store is away: real faults, the real Application over HTTP.

* SQLite: another process holds the database's write lock (reads still work in WAL mode,
  writes wait for the lock);
* PostgreSQL: a database of our own refuses connections and its sessions are cut.

Every command, reply and press gets an answer saying so, nothing is logged at ERROR, and
the console works again once the store is back, without a restart.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from taskops.storage.domain import EventKind
from tests.e2e.harness import Console, command, running_console
from tests.factories import make_task
from tests.fakegram import CallbackAnswer, FakeMessage, FakeTelegram
from tests.fakegram.fixtures import fakegram
from tests.faults import postgres_refusing, sqlite_locked

__all__ = ["fakegram"]

UNAVAILABLE = re.compile(
    r"^⚠️ The task store is unavailable — retrying; last contact \d+ (s|min|h) ago\.$")


@pytest_asyncio.fixture
async def sqlite_console(fakegram: FakeTelegram, tmp_path: Path) -> AsyncIterator[Console]:
    async with running_console(fakegram, tmp_path) as running:
        yield running


@pytest_asyncio.fixture
async def pg_console(fakegram: FakeTelegram, tmp_path: Path,
                     own_postgres_url: str) -> AsyncIterator[Console]:
    async with running_console(fakegram, tmp_path, db_url=own_postgres_url) as running:
        yield running


async def press_answer(console: Console, message: FakeMessage, button: str) -> CallbackAnswer:
    server = console.server
    query_id = await server.press_button(console.admin, message.chat, message.message_id,
                                         button)
    await server.wait_for(lambda: any(a.query_id == query_id for a in server.callback_answers),
                          message=f"press of {button!r} not answered")
    return next(a for a in server.callback_answers if a.query_id == query_id)


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_sqlite_write_lock_held_elsewhere(sqlite_console: Console,
                                                caplog: pytest.LogCaptureFixture) -> None:
    console = sqlite_console
    task = await make_task(console.store, console.clock, name="long job")
    listing = await command(console, "/tasks")
    detail = await command(console, f"/task {task.id}")
    caplog.set_level(logging.WARNING)
    async with sqlite_locked(console.settings.database.url):
        # A new list is a new stored view: a write, so it cannot be shown now.
        line = await command(console, "/tasks")
        assert UNAVAILABLE.match(line.text), line.text
        assert line.buttons == []
        # Kill writes before it answers: the press gets the line as an alert.
        confirm = await press_answer(console, detail, "🛑 Kill")
        assert confirm.text is None  # the confirmation screen only reads
        await console.server.wait_for(lambda: "Kill running task?" in detail.text)
        kill = await press_answer(console, detail, "🛑 Kill")
        assert kill.show_alert
        assert UNAVAILABLE.match(kill.text or ""), kill.text
        assert (await console.store.get_task(task.id)).status.value == "running"
    assert errors(caplog) == []
    # Back at once, no restart.
    again = await command(console, "/tasks")
    assert "long job" in again.text
    refresh = await press_answer(console, listing, "🔄 Refresh")
    assert not refresh.show_alert


async def test_postgres_refusing_connections(pg_console: Console,
                                             caplog: pytest.LogCaptureFixture) -> None:
    console = pg_console
    paused = await make_task(console.store, console.clock, name="needs input",
                             final="Which region?\nSTATUS: question\nSUMMARY: Which region?")
    listing = await command(console, "/tasks")
    detail = await command(console, f"/task {paused.id}")
    await press_answer(console, detail, "💬 Answer")
    prompt = console.server.last_bot_message(detail.chat)
    assert prompt is not None
    caplog.set_level(logging.WARNING)
    async with postgres_refusing(console.settings.database.url):
        for text in ("/tasks", f"/task {paused.id}", "/cronjobs"):
            line = await command(console, text)
            assert UNAVAILABLE.match(line.text), (text, line.text)
        refresh = await press_answer(console, listing, "🔄 Refresh")
        assert refresh.show_alert
        assert UNAVAILABLE.match(refresh.text or ""), refresh.text
        before = len(console.server.messages(prompt.chat))
        await console.server.reply_to(console.admin, prompt.chat, prompt.message_id, "eu-west")
        await console.server.wait_for(
            lambda: len(console.server.messages(prompt.chat)) > before + 1)
        reply = console.server.last_bot_message(prompt.chat)
        assert reply is not None
        assert UNAVAILABLE.match(reply.text), reply.text
    assert errors(caplog) == []
    again = await command(console, "/tasks")
    assert "needs input" in again.text
    refresh = await press_answer(console, listing, "🔄 Refresh")
    assert not refresh.show_alert
    # The reply can be given again now, and it lands.
    await console.server.reply_to(console.admin, prompt.chat, prompt.message_id, "eu-west")
    await console.server.wait_for(
        lambda: "Answer sent" in (console.server.last_bot_message(prompt.chat) or detail).text,
        message="the answer did not land after the store came back")


async def test_a_task_with_lone_surrogates_and_nul_opens_and_logs(sqlite_console: Console
                                                                  ) -> None:
    # What a tool may hand back (a truncated emoji, a C string): /task used to get no
    # answer at all (UnicodeEncodeError in the handler).
    console = sqlite_console
    task = await make_task(console.store, console.clock, name="odd \ud83d output\x00")
    await console.store.append_event(task.id, EventKind.TOOL_CALL, {
        "tool": "read\udc00", "arguments": {"path\x00": "/tmp/\ud800"},
        "result": "half an emoji: \ud83d", "is_error": False, "duration_ms": 3})
    await console.store.finish_task(task.id, "STATUS: failed\nSUMMARY: bad \udfff byte\x00")
    detail = await command(console, f"/task {task.id}")
    assert "half an emoji: \ufffd" in detail.text
    assert "odd \ufffd output\ufffd" in detail.text
    await press_answer(console, detail, "📄 Full log")
    await console.server.wait_for(
        lambda: (console.server.last_bot_message(detail.chat) or detail).document is not None)
    document = console.server.last_bot_message(detail.chat)
    assert document is not None
    assert document.document is not None
    assert "bad \ufffd byte\ufffd" in document.document[1].decode()
