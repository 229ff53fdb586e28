"""Helpers for the push tests: subscribing, waiting until delivered, reading digests."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import text

from taskops.bot.context import deps_of
from taskops.storage.domain import TaskDraft
from taskops.storage.store import TaskStore
from tests.e2e.harness import Console, command, press
from tests.fakegram import FakeMessage

DIGEST_HEAD = re.compile(r"^\S+ ([\d,]+) tasks? ", re.MULTILINE)
LISTED = re.compile(r"^\S+ #(\d+) ", re.MULTILINE)
SINGLE_HEAD = re.compile(r"^\S+ Task (started|resumed|failed|completed|paused)\b"
                         r"|^\S+ .* · (completed|failed|looped) ×\d+ since ")


async def subscribe(console: Console, chat: Any = None, user: Any = None) -> FakeMessage:
    """/subscribe in the chat (the admin's private chat by default); the settings message."""
    message = await command(console, "/subscribe" if chat is None else "/subscribe@taskops_bot",
                            user=user, chat=chat)
    assert "subscribed" in message.text
    return message


def bot_messages(console: Console, chat: Any) -> list[FakeMessage]:
    return [m for m in console.server.messages(chat) if m.from_bot]


def notices(console: Console, chat: Any) -> list[FakeMessage]:
    """The push messages in a chat: notifications, digests and stuck notices."""
    return [m for m in bot_messages(console, chat)
            if is_single(m) or is_digest(m) or "Task looks stuck" in (m.text or "")]


def is_single(message: FakeMessage) -> bool:
    return bool(SINGLE_HEAD.match(message.text or ""))


def is_digest(message: FakeMessage) -> bool:
    first = (message.text or "").split("\n", 1)[0]
    return bool(DIGEST_HEAD.match(first)) and "in the last" in first


def digest_total(message: FakeMessage) -> int:
    match = DIGEST_HEAD.match(message.text or "")
    assert match is not None, message.text
    return int(match.group(1).replace(",", ""))


def notified_ids(message: FakeMessage) -> list[int]:
    """Task ids a single notification (first line "<badge> Task ... · #id name") is about."""
    match = re.search(r" · #(\d+) ", (message.text or "").split("\n", 1)[0])
    return [int(match.group(1))] if match else []


async def caught_up(console: Console, chat_id: int) -> bool:
    """Everything in the feed was delivered to the chat (or passed over as unwanted)."""
    workers = push(console).notifier.workers
    if chat_id in workers:
        cursor = workers[chat_id][0].cursor
    else:
        sub = await console.store.push.get(chat_id)
        cursor = sub.cursor if sub is not None else None
    if cursor is None:
        return False
    if console.store.engines.is_sqlite:
        return not (await console.store.read_changes(cursor, 1)).events
    # On PostgreSQL the feed holds back events behind any transaction still open on the
    # server; "caught up" must mean every committed event, not every one readable now.
    txid, last_id = (int(part) for part in cursor.split(":"))
    async with console.store.engines.read.connect() as conn:
        pending = (await conn.execute(text(
            "SELECT count(*) FROM task_events WHERE txid > :t OR (txid = :t AND id > :i)"),
            {"t": txid, "i": last_id})).scalar_one()
    return pending == 0


async def wait_delivered(console: Console, *chat_ids: int, timeout: float = 15.0) -> None:
    for chat_id in chat_ids:
        await console.server.wait_for(lambda c=chat_id: caught_up(console, c), timeout=timeout,
                                      message=f"chat {chat_id} not caught up")


def push(console: Console) -> Any:
    service = deps_of(console.app).push
    assert service is not None
    return service


async def press_for_reply(console: Console, message: FakeMessage, label: str,
                          user: Any = None) -> FakeMessage:
    """Press a button that opens a new message (a screen opened from an alert); that one."""
    chat = message.chat
    before = len(bot_messages(console, chat))
    await press(console, message, label, user=user, expect_edit=False)
    await console.server.wait_for(lambda: len(bot_messages(console, chat)) > before,
                                  timeout=15)
    return bot_messages(console, chat)[before]


async def running_tasks(store: TaskStore, n: int, name: str = "burst") -> list[int]:
    """``n`` running tasks whose names need escaping; their ids. Runs that fail under a
    name that failed before join its alert when that alert went alone (a recurrence): a
    second burst that must make messages of its own needs another ``name``."""
    ids = []
    for i in range(n):
        task = await store.create_task(TaskDraft(name=f"{name} {i:03d} <&>", prompt="p"))
        await store.start_task(task.id)
        ids.append(task.id)
    return ids
