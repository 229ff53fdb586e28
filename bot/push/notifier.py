"""Status-change notifications: one worker per subscribed chat, each reading the feed from
that chat's own cursor.

A worker reads a batch from its cursor and picks the status changes the chat wants. Then:
- a digest is open (the burst goes on): the digest message is edited to take them in;
- more than ``digest_threshold`` changes within ``digest_window_seconds`` (singles sent in
  the window plus those waiting): they start a new digest;
- else the first one goes as its own message.
Only after Telegram confirmed the message does the cursor move past what it covered, in
the same transaction as the chat's delivery state. A crash between the two repeats that
one message (or re-applies that one digest edit), nothing more. A graceful stop does not:
a delivery under way ends before its worker is cancelled, and its save is not cut
half-way (bot/push/inflight.py); one still waiting for Telegram's answer when the stop can
wait no longer is recorded as unconfirmed, so the next process sends it marked.

A message Telegram did not confirm (a timeout, a dropped connection, a 5xx: it may have
arrived) is recorded in the delivery state before its one repeat (bot/delivery.py), so
a restart in between sends that repeat, marked, instead of a further unmarked copy. If
the repeat is unconfirmed too, the message counts as sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from taskops.bot import digest_view
from taskops.bot.delivery import ChatGone, ChatMoved, Rejected, Telegram, Unconfirmed
from taskops.bot.digest_view import DigestAlerts
from taskops.bot.flood import PUSH, attempt
from taskops.bot.outage import repeat
from taskops.bot.push import alerts, digest_alerts, messages
from taskops.bot.push.changes import Change, covered_by, matching, view_body
from taskops.bot.push.digest import DeliveryState, Digest
from taskops.bot.push.feed import Batch, FeedReader
from taskops.bot.push.inflight import Deliveries, kept
from taskops.bot.push.options import PushOptions
from taskops.bot.ui import Rendered
from taskops.bot.views import PUSH_MARK, ListPart, ViewKind, ViewState
from taskops.config import NotificationSettings
from taskops.storage import push_store
from taskops.storage.console import ViewUpdate
from taskops.storage.domain import (
    EventKind,
    ListFilters,
    TaskStatus,
)
from taskops.storage.push_store import (
    Alert,
    AlertKind,
    AlertRepeat,
    DigestAppend,
    NewAlert,
    Subscription,
)
from taskops.storage.store import TaskStore

log = logging.getLogger(__name__)


class ChatWorker:
    def __init__(self, chat_id: int, store: TaskStore, telegram: Telegram, feed: FeedReader,
                 options: PushOptions, notifications: NotificationSettings,
                 deliveries: Deliveries, clock: Callable[[], float] = time.time) -> None:
        self.chat_id = chat_id
        self.store, self.telegram, self.feed = store, telegram, feed
        self.deliveries = deliveries
        self.options, self.notifications, self.clock = options, notifications, clock
        self.state = DeliveryState()
        self.wake = asyncio.Event()
        self.gone = False
        #: where this worker has read to; ahead of the stored cursor only by changes the
        #: chat does not want, which are written back lazily (a restart re-reads them)
        self.cursor: str | None = None
        self._subscribed_at: datetime | None = None
        self._unsaved = False
        self._saved_at = 0.0

    async def load(self) -> None:
        record = await self.store.console.get(push_store.delivery_key(self.chat_id))
        self.state = DeliveryState.from_json(record.body if record else None)
        self.telegram.gate.seed(self.chat_id, self.state.sent)

    async def run(self) -> None:
        try:
            await self._loop()
        finally:
            with contextlib.suppress(Exception):
                await self._save_cursor(force=True)

    async def _save_cursor(self, force: bool = False) -> None:
        if not self._unsaved or self.cursor is None:
            return
        now = time.monotonic()
        if force or now - self._saved_at >= self.options.cursor_save_seconds:
            await self.store.push.advance(self.chat_id, self.cursor)
            self._unsaved, self._saved_at = False, now

    async def _delivered(self, cursor: str, *, view: ViewUpdate,
                         alert: NewAlert | AlertRepeat | None = None,
                         digest: DigestAppend | None = None,
                         digest_alerts: Sequence[NewAlert] = ()) -> None:
        """Move the stored cursor to ``cursor`` with what was delivered up to it and the
        chat's delivery state; not cut half-way by a stop."""
        await kept(self.store.push.advance(self.chat_id, cursor, delivery=self.state.to_json(),
                                           view=view, alert=alert, digest=digest,
                                           digest_alerts=digest_alerts))
        self.cursor, self._unsaved, self._saved_at = cursor, False, time.monotonic()

    async def _loop(self) -> None:
        loaded = False

        async def step() -> None:
            nonlocal loaded
            if not loaded:
                await self.load()
                loaded = True
            await self.drain()

        # The database may be away for a while: the cursor is kept, and read again after.
        await repeat(self.store, f"notifications for chat {self.chat_id}", step, self._woken,
                     going=lambda: not self.gone)

    async def _woken(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), self.options.poll_seconds)
            # A burst signals every change: let a few gather before reading.
            await asyncio.sleep(self.options.coalesce_seconds)
        self.wake.clear()

    async def drain(self) -> None:
        while not self.gone:
            sub = await self.store.push.get(self.chat_id)
            if sub is None:
                self.gone = True
                return
            if self.cursor is None or sub.created_at != self._subscribed_at:
                self.cursor, self._subscribed_at = sub.cursor, sub.created_at
            batch = await self.feed.read(self.cursor)
            following = await alerts.apply_lifecycle(
                self.store, self.telegram, self.chat_id,
                [e for e in batch.events if e.kind is EventKind.STATUS_CHANGE], batch.tasks,
                PUSH)
            changes = matching(batch, sub, self.store.clock(), covered_by(batch, following))
            if not changes:
                if batch.cursor != self.cursor:
                    self.cursor, self._unsaved = batch.cursor, True
                await self._save_cursor()
                if not batch.full:
                    return
                continue
            try:
                await self.deliveries.run(self._deliver(sub, batch, changes),
                                          f"delivery to chat {self.chat_id}")
            except ChatGone as exc:
                await self.store.push.unsubscribe(self.chat_id)
                log.warning("chat %s unsubscribed: Telegram says %s", self.chat_id, exc.reason)
                self.gone = True
            except ChatMoved as exc:
                await self.store.push.move(self.chat_id, exc.new_chat_id)
                log.warning("chat %s became %s: its subscription moved", self.chat_id,
                            exc.new_chat_id)
                self.gone = True

    async def _deliver(self, sub: Subscription, batch: Batch, changes: list[Change]) -> None:
        # Waiting for the chat's budget, a digest is put together at the last moment: the
        # auto-refresh's edits of the chat's live views must not take its place meanwhile.
        with self.telegram.gate.turn(self.chat_id, PUSH.priority):
            await self._deliver_now(sub, batch, changes)

    async def _deliver_now(self, sub: Subscription, batch: Batch,
                           changes: list[Change]) -> None:
        now = self.clock()
        window = self.notifications.digest_window_seconds
        digest = self.state.digest
        if digest is not None and digest.is_open(now, window,
                                                 self.options.digest_max_span_seconds):
            if await self._digest_untouched(digest):
                await self._extend(digest, *await self._gather(sub, batch, changes))
                return
            self.state.digest = None
        if self.state.recent_singles(now, window) + len(changes) > \
                self.notifications.digest_threshold:
            await self._new_digest(*await self._gather(sub, batch, changes))
        else:
            await self._single(sub, batch, changes[0])

    async def _gather(self, sub: Subscription, batch: Batch,
                      changes: list[Change]) -> tuple[str, list[Change]]:
        """Once the chat may be sent to, everything that arrived meanwhile joins the digest
        (one edit then covers a whole stretch of the burst, not one batch)."""
        await self.telegram.gate.ready(self.chat_id)
        cursor, changes = batch.cursor, list(changes)
        for _ in range(self.options.digest_gather_batches):
            more = await self.feed.read(cursor)
            if not more.events:
                break
            changes += matching(more, sub, self.store.clock())
            cursor = more.cursor
            if not more.full:
                break
        return cursor, changes

    async def _digest_untouched(self, digest: Digest) -> bool:
        """A press turns a digest into a console view; then it is no longer extended.
        A press here stages its state before its edit and saves it after
        (``bot/screens.finish_press``): that state first."""
        staged = self.store.console.pending(digest.key)
        if staged is not None:
            return staged.get(PUSH_MARK) == ViewKind.DIGEST
        record = await self.store.console.get(digest.key)
        return record is not None and record.body.get(PUSH_MARK) == ViewKind.DIGEST

    async def _send(self, cursor: str, text: str, keyboard: Any) -> int | None:
        """Send one message covering the feed up to ``cursor``: its id, or None when
        Telegram did not confirm it even once repeated (it counts as sent)."""
        async def record() -> None:
            # Before the repeat: a restart then knows the next send is that repeat.
            self.state.unconfirmed = cursor
            if self.cursor is not None:
                await kept(self.store.push.advance(self.chat_id, self.cursor,
                                                   delivery=self.state.to_json()))
        with attempt() as sending:
            try:
                message = await self.telegram.send(
                    self.chat_id, text, keyboard, sent_before=self.state.unconfirmed == cursor,
                    on_unconfirmed=record)
            except asyncio.CancelledError:
                # Stopped while Telegram had the first attempt (a stop waits only so long
                # for its answer): it may have arrived, so the next process sends it marked.
                if sending.went and self.state.unconfirmed != cursor:
                    await kept(record())
                raise
            except Unconfirmed as exc:
                log.warning("message to chat %s unconfirmed twice; not sent again: %s",
                            self.chat_id, exc.cause.message)
                self.state.unconfirmed = None
                return None
            except Rejected:
                self.state.unconfirmed = None
                raise
        # (any other failure keeps the mark: the retry of this message is its repeat)
        self.state.unconfirmed = None
        return message.message_id

    async def _notice_text(self, change: Change, key: str) -> Rendered:
        task = change.task
        failed_call = None
        if change.status is TaskStatus.FAILED:
            failed_call = await self.store.push.last_failed_tool_call(task.id)
        return messages.notification(task, change.status, change.event.payload, key,
                                     self.store.clock(), failed_call)

    async def _single(self, sub: Subscription, batch: Batch, change: Change) -> None:
        task = change.task
        kind = alerts.alert_kind(task, change.status)
        group = alerts.group_key(task)
        if kind is not None and alerts.coalesces(kind):
            latest = await self.store.push.latest_of_group(self.chat_id, group)
            if latest is not None and alerts.joins(latest, kind, self.store.clock()) and \
                    await self._repeat(latest, batch, change):
                return
        body = view_body(ViewState().open_task(task.id), ViewKind.NOTICE)
        key = await self.store.console.create(ViewKind.NOTICE, self.chat_id, body)
        rendered = await self._notice_text(change, key)
        new_alert: NewAlert | None = None
        if kind is not None:
            now = self.store.clock()
            draft = Alert(0, self.chat_id, task.id, task.id, kind, key, None, group, 1,
                          rendered.text, [], change.event.id, now, now, None, None, None, None)
            rendered = alerts.render_alert(draft, task, task.name, self.store.tz, now)
        message_id: int | None = None
        cursor = await self.feed.after(batch, change.index)
        try:
            message_id = await self._send(cursor, rendered.text, rendered.keyboard)
        except Rejected as exc:
            log.error("notification of task#%d to chat %s refused, skipped: %s", task.id,
                      self.chat_id, exc)
        if kind is not None:
            new_alert = NewAlert(task.id, kind, key, message_id, group, draft.text,
                                 change.event.id)
        self.state.record_send(self.clock(), single=True)
        await self._delivered(cursor, view=ViewUpdate(key, message_id, body), alert=new_alert)
        log.info("  → task#%d %s notified to chat %s", task.id, change.status.value,
                 self.chat_id)

    async def _repeat(self, latest: Alert, batch: Batch, change: Change) -> bool:
        """One more run of a recurrence that ended the same way: its message is edited
        (×N since ...); False when that message is gone (a new one is sent instead)."""
        task = change.task
        assert latest.message_id is not None
        base = await self._notice_text(change, latest.view_key)
        now = self.store.clock()
        shown = replace(latest, count=latest.count + 1, task_id=task.id,
                        follow_task_id=task.id, text=base.text)
        rendered = alerts.render_alert(shown, task, task.name, self.store.tz, now)
        try:
            await self.telegram.edit(self.chat_id, latest.message_id, rendered.text,
                                     rendered.keyboard)
        except Rejected as exc:
            log.info("recurring message in chat %s no longer editable (%s)", self.chat_id, exc)
            return False
        # The message's buttons now act on the newest run.
        body = view_body(ViewState().open_task(task.id), ViewKind.NOTICE)
        self.state.record_send(self.clock())
        cursor = await self.feed.after(batch, change.index)
        await self._delivered(cursor, view=ViewUpdate(latest.view_key, None, body),
                              alert=AlertRepeat(latest.id, task.id, base.text,
                                                change.event.id))
        log.info("  → task#%d %s counted in chat %s (×%d)", task.id, change.status.value,
                 self.chat_id, shown.count)
        return True

    def _digest_body(self, digest: Digest) -> dict[str, Any]:
        state = ViewState.of_list(ListPart(filters=ListFilters(status=digest.status)))
        return view_body(state, ViewKind.DIGEST)

    async def _new_digest(self, cursor: str, changes: list[Change]) -> None:
        now = self.clock()
        key = await self.store.console.create(ViewKind.DIGEST, self.chat_id,
                                              view_body(ViewState(), ViewKind.DIGEST))
        digest = Digest(key, 0, now, now)
        added = DigestAppend(key, 0, [c.item for c in changes])
        digest.add(added.items, digest_view.PAGE_SIZE)
        worthy = _alert_worthy(changes)
        rendered = digest_view.render_digest(digest.total, digest.counts, digest.items, 0.0,
                                             key, alerts=DigestAlerts(open=len(worthy)))
        try:
            message_id = await self._send(cursor, rendered.text, rendered.keyboard)
        except Rejected as exc:
            log.error("digest to chat %s refused, skipped: %s", self.chat_id, exc)
            self.state.digest = None
        else:
            # Unconfirmed: no message to extend; the next changes start a new digest.
            digest.message_id = message_id or 0
            self.state.digest = digest if message_id else None
        self.state.record_send(self.clock())
        await self._delivered(cursor,
                              view=ViewUpdate(key, digest.message_id or None,
                                              self._digest_body(digest)),
                              digest=added,
                              digest_alerts=digest_alerts.carried(
                                  key, digest.message_id or None, worthy))
        log.info("  → digest of %d changes to chat %s", len(changes), self.chat_id)

    async def _extend(self, digest: Digest, cursor: str, changes: list[Change]) -> None:
        added = DigestAppend(digest.key, digest.total, [c.item for c in changes])
        worthy = _alert_worthy(changes)
        shown = await digest_alerts.shown(self.store, digest.key, len(worthy))
        digest.add(added.items, digest_view.PAGE_SIZE)
        rendered = digest_view.render_digest(digest.total, digest.counts, digest.items,
                                             self.clock() - digest.started, digest.key,
                                             alerts=shown)
        try:
            await self.telegram.edit(self.chat_id, digest.message_id, rendered.text,
                                     rendered.keyboard)
        except Rejected as exc:
            # The digest message is gone (deleted by someone): these start a new one.
            log.info("digest in chat %s no longer editable (%s); starting a new one",
                     self.chat_id, exc)
            self.state.digest = None
            await self._new_digest(cursor, changes)
            return
        digest.updated = self.clock()
        self.state.record_send(digest.updated)
        await self._delivered(cursor,
                              view=ViewUpdate(digest.key, None, self._digest_body(digest)),
                              digest=added,
                              digest_alerts=digest_alerts.carried(
                                  digest.key, digest.message_id, worthy))


def _alert_worthy(changes: list[Change]) -> list[tuple[int, AlertKind, str, int]]:
    """The changes of a digest that are alerts (failed, looped, paused): what
    ``digest_alerts.carried`` makes their rows of."""
    worthy = []
    for change in changes:
        kind = alerts.alert_kind(change.task, change.status)
        if kind is not None and kind.needs_person:
            worthy.append((change.task.id, kind, change.task.name, change.event.id))
    return worthy


class Notifier:
    """Keeps one worker per subscribed chat and wakes them when the feed may have grown."""

    def __init__(self, store: TaskStore, telegram: Telegram, options: PushOptions,
                 notifications: NotificationSettings, deliveries: Deliveries) -> None:
        self.store, self.telegram, self.options = store, telegram, options
        self.notifications, self.deliveries = notifications, deliveries
        self.feed = FeedReader(store, options)
        self.workers: dict[int, tuple[ChatWorker, asyncio.Task[None]]] = {}
        self.resync = asyncio.Event()

    async def lag_seconds(self) -> float:
        """Age of the oldest change not yet delivered to a subscribed chat (0: none waits)
        — for /healthz and ``taskops_push_lag_seconds``. A chat's position is its worker's,
        which is ahead of the stored one between saves."""
        stored = {s.chat_id: s.cursor for s in await self.store.push.subscriptions()}
        now = self.store.clock()
        lag = 0.0
        for chat_id, cursor in stored.items():
            entry = self.workers.get(chat_id)
            position = entry[0].cursor if entry is not None and entry[0].cursor else cursor
            at = await self.store.first_change_after(position)
            if at is not None:
                lag = max(lag, (now - at).total_seconds())
        return lag

    def poke(self, subscriptions: bool = False) -> None:
        """The feed may have grown (or, with ``subscriptions``, the subscriptions changed)."""
        self.feed.forget_partial()
        for worker, _ in self.workers.values():
            worker.wake.set()
        if subscriptions:
            self.resync.set()

    async def run(self) -> None:
        try:
            await repeat(self.store, "notifier: reading subscriptions", self._supervise,
                         self._resync_asked)
        finally:
            for _, task in self.workers.values():
                task.cancel()
            await asyncio.gather(*(t for _, t in self.workers.values()),
                                 return_exceptions=True)

    async def _resync_asked(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.resync.wait(), self.options.poll_seconds)
        self.resync.clear()

    async def _supervise(self) -> None:
        chats = {s.chat_id for s in await self.store.push.subscriptions()}
        for chat_id, (_, task) in list(self.workers.items()):
            if chat_id not in chats or task.done():
                task.cancel()
                del self.workers[chat_id]
        for chat_id in chats:
            if chat_id not in self.workers:
                worker = ChatWorker(chat_id, self.store, self.telegram, self.feed,
                                    self.options, self.notifications, self.deliveries)
                self.workers[chat_id] = (worker, asyncio.create_task(
                    worker.run(), name=f"notify-{chat_id}"))
