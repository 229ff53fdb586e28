"""Task results and status updates delivered to the Telegram chat a task belongs to.

A task whose parent session is ``telegram:<chat id>`` gets its ``injection`` events (the
result when it ends or pauses; none when silent) and its ``progress`` events (periodic
status updates, when ``[tasks] status_updates`` is on) posted in that chat, rendered
readably rather than as the raw ``<task_injection>`` block.

``[tasks] telegram_delivery``: "always" delivers; "auto" means "only when the owner is not
active elsewhere" — taskops has no other surface where the owner could be reading, so
"auto" delivers too.

The relay has its own cursor (a ``console_state`` row of kind "cursor"), advanced after
each confirmed message: at least once, at most the message in flight repeated (by a crash:
a stop lets a delivery under way end and save, bot/push/inflight.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from taskops.bot.delivery import ChatGone, ChatMoved, Rejected, Telegram, Unconfirmed
from taskops.bot.outage import repeat
from taskops.bot.push import messages
from taskops.bot.push.feed import Batch, FeedReader
from taskops.bot.push.inflight import Deliveries, kept
from taskops.bot.push.options import PushOptions
from taskops.bot.views import ViewKind
from taskops.config import TasksSettings, TelegramDelivery
from taskops.storage.domain import EventKind, Task, TaskEvent
from taskops.storage.store import TaskStore

log = logging.getLogger(__name__)
CURSOR_KEY = "cursor-injections"
TELEGRAM_SESSION = "telegram:"


def delivers(tasks: TasksSettings) -> bool:
    return tasks.telegram_delivery in (TelegramDelivery.ALWAYS, TelegramDelivery.AUTO)


def parent_chat(session: str | None) -> int | None:
    if not session or not session.startswith(TELEGRAM_SESSION):
        return None
    text = session[len(TELEGRAM_SESSION):].strip()
    try:
        return int(text)
    except ValueError:
        return None


def target(event: TaskEvent, tasks: dict[int, Task]) -> int | None:
    """The chat an event goes to, if it is one the relay delivers."""
    if event.kind is EventKind.INJECTION:
        return parent_chat(str(event.payload.get("parent_session") or ""))
    if event.kind is EventKind.PROGRESS:
        task = tasks.get(event.task_id)
        return parent_chat(task.parent_session if task else None)
    return None


class InjectionRelay:
    def __init__(self, store: TaskStore, telegram: Telegram, options: PushOptions,
                 tasks: TasksSettings, deliveries: Deliveries) -> None:
        self.store, self.telegram, self.options, self.tasks = store, telegram, options, tasks
        self.deliveries = deliveries
        self.feed = FeedReader(store, options, kinds=(EventKind.INJECTION, EventKind.PROGRESS))
        self.wake = asyncio.Event()
        self.cursor: str | None = None
        self._saved: str | None = None
        self._saved_at = 0.0

    def poke(self) -> None:
        self.feed.forget_partial()
        self.wake.set()

    async def run(self) -> None:
        try:
            await self._loop()
        finally:
            with contextlib.suppress(Exception):
                await self._save_now()

    async def _loop(self) -> None:
        await repeat(self.store, "task results for Telegram chats", self.drain, self._woken)

    async def _woken(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), self.options.poll_seconds)
            await asyncio.sleep(self.options.coalesce_seconds)
        self.wake.clear()

    async def _load_cursor(self) -> str:
        record = await self.store.console.get(CURSOR_KEY)
        if record is not None:
            self._saved = str(record.body.get("cursor", ""))
            return self._saved
        # First start: results from before taskops ran are not replayed into chats.
        cursor = await self.store.feed_head()
        await self.store.console.put(CURSOR_KEY, ViewKind.CURSOR, 0, {"cursor": cursor})
        self._saved = cursor
        return cursor

    async def _save(self, cursor: str, *, delivered: bool) -> None:
        """Move the cursor: stored at once after a delivery, else at most every few
        seconds (a restart then re-reads events that go nowhere, harmlessly)."""
        self.cursor = cursor
        now = time.monotonic()
        if delivered or now - self._saved_at >= self.options.cursor_save_seconds:
            await self.store.console.put(CURSOR_KEY, ViewKind.CURSOR, 0,
                                       {"cursor": cursor})
            self._saved, self._saved_at = cursor, now

    async def _save_now(self) -> None:
        if self.cursor is not None and self.cursor != self._saved:
            await self._save(self.cursor, delivered=True)

    async def prepare(self) -> None:
        """Take the cursor before the console starts: on a first start the feed's head is
        then the moment taskops started, not whenever the loop first runs."""
        if self.cursor is None:
            self.cursor = await self._load_cursor()

    async def drain(self) -> int:
        """Deliver everything up to the end of the feed; returns how many messages."""
        if self.cursor is None:
            self.cursor = await self._load_cursor()
        sent = 0
        while True:
            batch = await self.feed.read(self.cursor)
            done, done_index = self.cursor, -1
            if delivers(self.tasks):
                for index, event in enumerate(batch.events):
                    chat_id = target(event, batch.tasks)
                    if chat_id is None:
                        continue
                    n, done = await self.deliveries.run(
                        self._deliver(batch, event, chat_id, index, done, done_index),
                        f"result for chat {chat_id}")
                    sent, done_index = sent + n, index
            if batch.cursor != self.cursor:
                await self._save(batch.cursor, delivered=False)
            if not batch.full:
                return sent

    async def _deliver(self, batch: Batch, event: TaskEvent, chat_id: int, index: int,
                       done: str, done_index: int) -> tuple[int, str]:
        """Send event ``index`` of the batch to its chat, then store the cursor past it:
        (messages sent, that cursor)."""
        sent = await self._send(batch, event, chat_id)
        return sent, await kept(self._saved_past(batch, index, done, done_index))

    async def _saved_past(self, batch: Batch, index: int, done: str, done_index: int) -> str:
        cursor = await self.feed.after(batch, index, done, done_index)
        await self._save(cursor, delivered=True)
        return cursor

    async def _send(self, batch: Batch, event: TaskEvent, chat_id: int) -> int:
        task = batch.tasks.get(event.task_id)
        if event.kind is EventKind.INJECTION:
            item = messages.Injection.parse(event.task_id, str(event.payload.get("text", "")))
            text, what = messages.injection(item, task), f"result of task#{event.task_id}"
        else:
            text = messages.progress(event.task_id, event.payload, task)
            what = f"status update of task#{event.task_id}"
        try:
            await self.telegram.send(chat_id, text, None)
        except (ChatGone, ChatMoved) as exc:
            log.warning("%s not delivered: %s", what, exc)
            return 0
        except Rejected as exc:
            log.error("%s refused by Telegram, skipped: %s", what, exc)
            return 0
        except Unconfirmed as exc:  # may have arrived, even twice: not sent a third time
            log.warning("%s to chat %s unconfirmed: %s", what, chat_id, exc)
            return 1
        log.info("  → %s delivered to chat %s", what, chat_id)
        return 1
