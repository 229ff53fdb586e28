"""Live task views: a task's detail message edited as events arrive.

It follows the chat's *latest* console view (``ConsoleStore.latest_used_since``) — the
message the chat last used (a press or a command touches it; a notification the bot sent
is not "used" until someone presses it). Opening another view therefore stops whatever was
live in that chat.

Task detail (screen DETAIL of a running task):
- live while the chat used it in the last ``live_idle_minutes``, or longer after
  "▶ Follow" — until 30 minutes pass without a new event of the task;
- edited when the task has new events or a new status (not for the ticking duration), at
  most once every ``live_edit_seconds`` per message; on the last timeline page it moves on
  to newer pages as they fill; the task's end gets one final render.
- An in-process change waits ``SETTLE_SECONDS`` before the edit: a press that caused it
  (kill, answer) renders the message itself in that time, and a second, identical edit
  would only be refused as "not modified".

The list's auto-refresh follows the same rule (bot/refresh.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta

from msgspec.structs import replace
from telegram.error import BadRequest, TelegramError

from taskops.bot.app_types import AnyApp
from taskops.bot.context import deps_of
from taskops.bot.delivery import ChatGone, ChatMoved, Rejected
from taskops.bot.flood import LIVE, is_group
from taskops.bot.outage import Streak
from taskops.bot.push.options import PushOptions
from taskops.bot.screens import render_state
from taskops.bot.ui import fingerprint
from taskops.bot.views import (
    CONSOLE_KINDS,
    PUSH_MARK,
    Screen,
    ViewKind,
    ViewState,
    decode_or_none,
    encode,
)
from taskops.storage.console import ViewRecord
from taskops.storage.domain import TaskStatus
from taskops.storage.signals import TaskChange
from taskops.storage.store import TaskStore

log = logging.getLogger(__name__)

SETTLE_SECONDS = 0.4
MAX_TAIL_PAGES = 20


def follow_key(view_key: str) -> str:
    return f"fw{view_key}"


async def follow(store: TaskStore, view_key: str, chat_id: int, task_id: int) -> None:
    """Keep a detail message live past the idle limit (until quiet, or another view)."""
    await store.console.put(follow_key(view_key), ViewKind.FOLLOW, chat_id,
                               {"view": view_key, "task_id": task_id})


class LiveEditor:
    def __init__(self, app: AnyApp, options: PushOptions) -> None:
        self.app = app
        self.options = options
        self.store = deps_of(app).store
        self.queue: asyncio.Queue[TaskChange] = self.store.bus.subscribe()
        #: since when an in-process change of a task waits for its edit (monotonic)
        self.pending: dict[int, float] = {}
        #: when a throttled edit may be made (monotonic); the loop wakes up for it
        self.due: float | None = None
        #: (event count, status) of the task as last rendered into each message
        self.marks: dict[str, tuple[int, str]] = {}
        self.last_edit: dict[str, float] = {}
        #: tasks some chat's latest view shows in detail (in-process changes of others
        #: need no pass of their own)
        self.live_tasks: set[int] = set()

    def _signal(self, change: TaskChange) -> None:
        self.pending.setdefault(change.task_id, time.monotonic())

    def _take_signals(self) -> None:
        while not self.queue.empty():
            self._signal(self.queue.get_nowait())

    async def run(self) -> None:
        streak = Streak("live views")
        try:
            next_poll = time.monotonic() + self.options.live_poll_seconds
            while True:
                wake_at = next_poll if self.due is None else min(next_poll, self.due)
                try:
                    change: TaskChange | None = await asyncio.wait_for(
                        self.queue.get(), max(0.0, wake_at - time.monotonic()))
                except TimeoutError:
                    change = None
                if change is not None:
                    self._signal(change)
                    if change.task_id not in self.live_tasks:
                        continue  # no message shows it; the next poll finds new views
                    await asyncio.sleep(SETTLE_SECONDS)
                self._take_signals()
                try:
                    await self.follow_pass()
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    if not await streak.failed(self.store, error):
                        log.exception("live views: pass failed; trying again")
                        await asyncio.sleep(self.options.live_poll_seconds)
                else:
                    streak.ok()
                next_poll = time.monotonic() + self.options.live_poll_seconds
        finally:
            self.store.bus.unsubscribe(self.queue)

    async def follow_pass(self) -> int:
        """Edit every live detail message that has something new; returns how many."""
        self._take_signals()
        now = self.store.clock()
        idle = timedelta(minutes=self.options.live_idle_minutes)
        follows = {str(r.body.get("view")): r
                   for r in await self.store.console.of_kind(ViewKind.FOLLOW)}
        latest = await self.store.console.latest_used_since(CONSOLE_KINDS, now - idle,
                                                             unmarked=PUSH_MARK)
        followed = [v for v in [await self.store.console.get(k) for k in follows] if v]
        if followed:
            older = await self.store.console.latest_used_since(
                CONSOLE_KINDS, min(v.updated_at for v in followed),
                chat_ids=[v.chat_id for v in followed], unmarked=PUSH_MARK)
            for chat_id, view in older.items():
                current = latest.get(chat_id)
                if current is None or (view.updated_at, view.key) > (current.updated_at,
                                                                     current.key):
                    latest[chat_id] = view
        states = {v.key: decode_or_none(v.body) for v in latest.values()}
        self.live_tasks = {s.task_id for s in states.values()
                           if s is not None and s.task_id is not None}
        edited = 0
        self.due = None
        settled = time.monotonic() - SETTLE_SECONDS
        for view in latest.values():
            state = states[view.key]
            if state is not None:
                edited += await self._follow(view, state, view.key in follows, now, idle)
        for task_id, since in list(self.pending.items()):
            if since <= settled:
                del self.pending[task_id]  # its views were rendered in this pass
        # Only each chat's latest view is live: what was kept for older ones goes (the
        # marks are bounded by the chats with a live view, not by every view ever opened).
        live = {view.key for view in latest.values()}
        for kept in (self.marks, self.last_edit):
            for key in [k for k in kept if k not in live]:
                del kept[key]
        for key, record in follows.items():
            current = latest.get(record.chat_id)
            if current is None or current.key != key:
                await self.store.console.delete(record.key)  # the chat opened another view
        return edited

    async def _follow(self, view: ViewRecord, state: ViewState, followed: bool, now: datetime,
                      idle: timedelta) -> bool:
        if state.screen is not Screen.DETAIL or state.task_id is None or view.message_id is None:
            return False
        if not followed and view.updated_at < now - idle:
            return False
        task = await self.store.find_task(state.task_id)
        if task is None:
            return False
        ended = task.status is not TaskStatus.RUNNING
        if ended and not state.shows_running:
            return False
        quiet = now - (task.last_event_at or task.created_at)
        if not ended and quiet > timedelta(minutes=self.options.follow_quiet_minutes):
            if followed:
                await self.store.console.delete(follow_key(view.key))
            return False
        mono = time.monotonic()
        waiting = self.pending.get(task.id)
        if waiting is not None and mono - waiting < SETTLE_SECONDS:
            return False  # the pass after the settle time takes it
        mark = (task.event_count, task.status.value)
        previous = self.marks.get(view.key)
        if previous is None:
            # First sight (a new view, or a bot restart): the message shows what was
            # rendered when the chat last used it; only events after that need an edit.
            # The state says how many events that render had. Times cannot tell: the run
            # "Save & restart" opens is often started by the worker while the press still
            # saves its render of the run not started ("⏱ —"), so the start is no newer
            # than the saved view, and the view sat there until the run's next event.
            self.marks[view.key] = mark
            shown = state.detail.events_shown if state.detail is not None else -1
            if shown == task.event_count:
                return False
            if shown < 0 and (task.last_event_at is None
                              or task.last_event_at <= view.updated_at):
                return False  # saved before the count was kept: the old rule
        elif previous == mark:
            return False
        # A group's 20 messages a minute are shared with its alerts and the admins' presses:
        # a live view there takes a slower share.
        interval = (self.options.live_edit_group_seconds if is_group(view.chat_id)
                    else self.options.live_edit_seconds)
        allowed = self.last_edit.get(view.key, -1e9) + interval
        if mono < allowed:
            self.due = allowed if self.due is None else min(self.due, allowed)
            return False  # the pass when the interval is over takes it
        return await self._render_and_edit(view, state, mark, ended, followed)

    async def _render_and_edit(self, view: ViewRecord, state: ViewState,
                               mark: tuple[int, str], ended: bool, followed: bool) -> bool:
        d = deps_of(self.app)
        rendered, new_state = await render_state(d, state, view.key, chat_id=view.chat_id)
        for _ in range(MAX_TAIL_PAGES):
            if not (_on_last_page(state) and _has_next_page(new_state)):
                break
            # Following the tail: newer events filled a new timeline page.
            assert new_state.detail is not None
            rendered, new_state = await render_state(
                d, new_state.with_detail(page=len(new_state.detail.page_starts)), view.key,
                chat_id=view.chat_id)
        self.marks[view.key] = mark
        shown = fingerprint(rendered)
        if d.rendered.get(view.key) == shown:
            return False
        if not await self.store.console.save_if(view.key, view.body, encode(new_state)):
            return False  # pressed meanwhile: that press rendered the message
        d.rendered.put(view.key, shown)
        self.last_edit[view.key] = time.monotonic()
        try:
            assert view.message_id is not None
            changed = await d.telegram.edit(view.chat_id, view.message_id, rendered.text,
                                            rendered.keyboard, LIVE)
        except (Rejected, ChatGone, ChatMoved, BadRequest) as exc:
            log.info("live view %s in chat %s no longer editable: %s", view.key, view.chat_id,
                     exc)
            await self.store.console.save_if(view.key, encode(new_state),
                                          encode(replace(new_state, shows_running=False)))
            changed = False
        except TelegramError as exc:
            log.warning("live view %s in chat %s not edited (%s); trying again", view.key,
                        view.chat_id, exc)
            self.marks[view.key] = (-1, "")  # still owed: the next pass edits again
            d.rendered.forget(view.key)
            return False
        if ended and followed:
            await self.store.console.delete(follow_key(view.key))
        return changed



def _on_last_page(state: ViewState) -> bool:
    return state.detail is not None and state.detail.page >= len(state.detail.page_starts)


def _has_next_page(state: ViewState) -> bool:
    return state.detail is not None and len(state.detail.page_starts) > state.detail.page
