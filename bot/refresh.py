"""Auto-refresh: the list a chat last used is re-rendered while it shows running tasks.

Every 5 s; edited only when the render changed; paused while the chat's latest screen is
a task (or any other non-list screen); stopped 10 minutes after the last press. A press
touches the view, which is what "last used" means here.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot.app_types import AnyApp
from bot.context import deps_of
from bot.screens import edit, fingerprint, render_state
from bot.views import LIST_KIND, ListState, Screen

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 5.0
IDLE_STOP = timedelta(minutes=10)
FORGET_AFTER = timedelta(days=30)


async def refresh_lists(app: AnyApp) -> int:
    """One refresh pass; returns how many messages were edited."""
    d = deps_of(app)
    now = d.store.clock()
    latest: dict[int, Any] = {}
    for view in await d.store.console.used_since(LIST_KIND, now - IDLE_STOP):
        current = latest.get(view.chat_id)
        if current is None or (view.updated_at, view.key) > (current.updated_at, current.key):
            latest[view.chat_id] = view
    edited = 0
    for view in latest.values():
        state = ListState.from_json(view.body)
        if state.screen is not Screen.LIST or not state.shows_running or view.message_id is None:
            continue
        rendered, new_state = await render_state(d, state, view.key)
        shown = fingerprint(rendered)
        if d.rendered.get(view.key) == shown:
            continue
        try:
            changed = await edit(None, rendered, chat_id=view.chat_id,
                                 message_id=view.message_id, bot=app.bot)
        except BadRequest as exc:
            # The message is gone (deleted, or too old to edit): stop refreshing it.
            log.info("list %s in chat %s no longer editable: %s", view.key, view.chat_id, exc)
            new_state = replace(new_state, shows_running=False)
        except TelegramError as exc:
            log.warning("refresh of list %s failed: %s", view.key, exc)
            continue
        else:
            edited += changed
        d.rendered[view.key] = shown
        await d.store.console.save(view.key, new_state.to_json(), touch=False)
    return edited


async def _refresh_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    await refresh_lists(context.application)


async def _forget_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    d = deps_of(context.application)
    removed = await d.store.console.delete_unused(d.store.clock() - FORGET_AFTER)
    if removed:
        log.info("forgot %d console views unused for %s", removed, FORGET_AFTER)


def schedule(app: AnyApp) -> None:
    assert app.job_queue is not None
    app.job_queue.run_repeating(_refresh_job, interval=INTERVAL_SECONDS, first=INTERVAL_SECONDS,
                                name="refresh-lists", job_kwargs={"max_instances": 1,
                                                                  "coalesce": True})
    app.job_queue.run_repeating(_forget_job, interval=3600, first=60, name="forget-views")
