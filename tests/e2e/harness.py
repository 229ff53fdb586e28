"""Runs the real taskops Application against the fake Telegram server, in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskops.bot.app import AnyApp, build_application, start_console, stop_console
from taskops.bot.push.options import PushOptions
from taskops.bot.push.service import OPTIONS_KEY
from taskops.config import Settings
from taskops.storage.db import migrate
from taskops.storage.store import TaskStore
from tests.factories import FakeClock, make_settings
from tests.fakegram import FakeTelegram, FakeUser

ADMIN_ID = 1001
OTHER_ADMIN_ID = 1002
STRANGER_ID = 2001


@dataclass
class Console:
    server: FakeTelegram
    app: AnyApp
    store: TaskStore
    settings: Settings
    clock: FakeClock
    admin: FakeUser
    other_admin: FakeUser
    stranger: FakeUser


def console_settings(tmp_path: Path, server: FakeTelegram, db_url: str,
                     sections: dict[str, Any] | None = None) -> Settings:
    merged: dict[str, Any] = {
        "telegram": {"base_url": server.bot_base_url,
                     "admin_ids": [ADMIN_ID, OTHER_ADMIN_ID]},
        # The console tests count rows in pages of 10; the default (8, what fits one phone
        # screen) is measured by bench/phone_journeys.py.
        "ui": {"timezone": "Europe/Berlin", "page_size": 10},
    }
    for key, values in (sections or {}).items():
        if isinstance(values, list):
            merged[key] = values
        else:
            merged.setdefault(key, {}).update(values)
    return make_settings(tmp_path, db_url, merged,
                         env={"TASKOPS_TELEGRAM_TOKEN": server.token})


@asynccontextmanager
async def running_console(server: FakeTelegram, tmp_path: Path, *, db_url: str | None = None,
                          sections: dict[str, Any] | None = None,
                          clock: FakeClock | None = None,
                          push_options: PushOptions | None = None) -> AsyncIterator[Console]:
    url = db_url or f"sqlite+aiosqlite:///{tmp_path / 'console.db'}"
    if db_url is None:
        await migrate(url)
    settings = console_settings(tmp_path, server, url, sections)
    clock = clock or FakeClock()
    store = await TaskStore.open(settings, clock=clock)
    admin = server.add_user(ADMIN_ID, "Ann", username="ann")
    other = server.add_user(OTHER_ADMIN_ID, "Olaf", username="olaf")
    stranger = server.add_user(STRANGER_ID, "Mallory", username="mallory")
    for user in (admin, other):
        server.private_chat(user)  # both admins have opened the bot before it starts
    app = build_application(settings, store)
    if push_options is not None:
        app.bot_data[OPTIONS_KEY] = push_options
    try:
        async with app:
            await start_console(app)
            try:
                yield Console(server, app, store, settings, clock, admin, other, stranger)
            finally:
                await stop_console(app)
    finally:
        await store.close()


async def command(console: Console, text: str, user: FakeUser | None = None,
                  chat: Any = None) -> Any:
    """Send a command as an admin and wait for the bot's new message in that chat."""
    server = console.server
    user = user or console.admin
    chat = chat if chat is not None else server.private_chat(user)
    before = len([m for m in server.messages(chat) if m.from_bot])
    await server.send_text(user, chat, text)
    await server.wait_for(lambda: len([m for m in server.messages(chat) if m.from_bot]) > before)
    return server.last_bot_message(chat)


async def press(console: Console, message: Any, button_text: str, *,
                user: FakeUser | None = None, expect_edit: bool = True) -> Any:
    """Press a button on a bot message; wait until the press is answered (and the edit)."""
    server = console.server
    edits = len(message.edits)
    query_id = await server.press_button(user or console.admin, message.chat,
                                         message.message_id, button_text)
    await server.wait_for(lambda: any(a.query_id == query_id for a in server.callback_answers))
    if expect_edit:
        await server.wait_for(lambda: len(message.edits) > edits)
    return next(a for a in server.callback_answers if a.query_id == query_id)


def buttons(message: Any) -> list[str]:
    return [text for row in message.buttons for text, _ in row]


def task_ids(message: Any) -> list[int]:
    """Task ids in the order the list message shows them."""
    import re

    return [int(m) for m in re.findall(r"^\d+\. \S+ #(\d+) ", message.text, flags=re.MULTILINE)]


def row_number(message: Any, task_id: int) -> str:
    """The number of a task's row on the list (the label of the button that opens it)."""
    import re

    found = re.search(rf"^(\d+)\. \S+ #{task_id} ", message.text, flags=re.MULTILINE)
    assert found, f"#{task_id} is not on the list"
    return found.group(1)
