"""Auto-refresh: the list a chat last used is re-rendered while it shows running tasks, or
while it is the first page of the newest tasks (new tasks appear at its top).

Every 5 s; edited only when the render changed; paused while the chat's latest screen is
a task (or any other non-list screen); stopped 10 minutes after the last press. A press
touches the view, which is what "last used" means here.

Part of the console, not of the push side: it needs the store, the screens and the
classified Telegram calls (bot/delivery.py, with the flood gate's LIVE policy); the push
side's live task views follow the same "latest view of a chat" rule (bot/views.py).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from msgspec.structs import replace
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from taskops.bot.app_types import AnyApp
from taskops.bot.context import deps_of
from taskops.bot.delivery import ChatGone, ChatMoved, Rejected
from taskops.bot.flood import LIVE
from taskops.bot.outage import Streak
from taskops.bot.screens import render_state
from taskops.bot.ui import fingerprint
from taskops.bot.views import (
    CONSOLE_KINDS,
    PUSH_MARK,
    Screen,
    ViewState,
    decode_or_none,
    encode,
)
from taskops.storage.domain import Sort
from taskops.storage.health import quick

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 5.0
IDLE_STOP = timedelta(minutes=10)
FORGET_AFTER = timedelta(days=30)


def shows_newest(state: ViewState) -> bool:
    """Page 1 of the newest first: where a new task appears (edited only when it does)."""
    return state.list.page == 1 and state.list.sort == Sort()


async def refresh_lists(app: AnyApp) -> int:
    """One auto-refresh pass over the chats' latest lists; returns how many were edited."""
    d = deps_of(app)
    now = d.store.clock()
    latest = await d.store.console.latest_used_since(CONSOLE_KINDS, now - IDLE_STOP,
                                                     unmarked=PUSH_MARK)
    edited = 0
    for view in latest.values():
        state = decode_or_none(view.body)
        if (state is None or state.screen is not Screen.LIST or view.message_id is None
                or not (state.shows_running or shows_newest(state))):
            continue
        rendered, new_state = await render_state(d, state, view.key, chat_id=view.chat_id)
        shown = fingerprint(rendered)
        if d.rendered.get(view.key) == shown:
            continue
        # Claimed before the edit, as live views do: a press that came in since the view
        # was read has rendered the message itself, and its state must not be overwritten
        # with this older one (the next press would act on a screen nobody saw).
        if not await d.store.console.save_if(view.key, view.body, encode(new_state)):
            continue
        try:
            edited += await d.telegram.edit(view.chat_id, view.message_id, rendered.text,
                                            rendered.keyboard, LIVE)
        except (BadRequest, Rejected, ChatGone, ChatMoved) as exc:
            # The message is gone (deleted, or too old to edit): stop refreshing it.
            log.info("list %s in chat %s no longer editable: %s", view.key, view.chat_id, exc)
            await d.store.console.save_if(view.key, encode(new_state),
                                          encode(replace(new_state, shows_running=False)))
        except TelegramError as exc:
            log.warning("refresh of list %s failed: %s", view.key, exc)
            continue
        d.rendered.put(view.key, shown)
    return edited


async def _refresh_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    assert context.job is not None
    streak = context.job.data
    assert isinstance(streak, Streak)
    d = deps_of(context.application)
    if not d.telegram.leading():
        return  # one process of the cluster refreshes (and only while it leads)
    try:
        # Quick store calls, as a press makes: a pass must not hold a connection while the
        # store is away (the next pass comes in 5 s anyway).
        with quick():
            await refresh_lists(context.application)
    except Exception as error:
        if not await streak.failed(d.store, error, pause=False):
            raise
    else:
        streak.ok()


async def _forget_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    d = deps_of(context.application)
    removed = await d.store.console.delete_unused(d.store.clock() - FORGET_AFTER)
    # A digest's tasks go with its message state (kept as long as any other view).
    removed += await d.store.push.forget_digests(d.store.clock() - FORGET_AFTER)
    if removed:
        log.info("forgot %d console views unused for %s", removed, FORGET_AFTER)


def schedule(app: AnyApp) -> None:
    assert app.job_queue is not None
    app.job_queue.run_repeating(_refresh_job, interval=INTERVAL_SECONDS, first=INTERVAL_SECONDS,
                                name="refresh-lists", data=Streak("auto-refresh"),
                                job_kwargs={"max_instances": 1, "coalesce": True})
    app.job_queue.run_repeating(_forget_job, interval=3600, first=60, name="forget-views")
