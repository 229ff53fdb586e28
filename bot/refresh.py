"""Auto-refresh: the list a chat last used is re-rendered while it shows running tasks.

Every 5 s; edited only when the render changed; paused while the chat's latest screen is
a task (or any other non-list screen); stopped 10 minutes after the last press. A press
touches the view, which is what "last used" means here.

The pass itself is the push side's live-view machinery (``bot.push.live``), the same
that keeps an open task detail live; this module schedules it and forgets old views.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from telegram.ext import ContextTypes

from taskops.bot.app_types import AnyApp
from taskops.bot.context import deps_of
from taskops.bot.push.live import LIST_IDLE, refresh_lists

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 5.0
IDLE_STOP = LIST_IDLE
FORGET_AFTER = timedelta(days=30)

__all__ = ["FORGET_AFTER", "IDLE_STOP", "INTERVAL_SECONDS", "refresh_lists", "schedule"]


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
