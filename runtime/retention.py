"""Retention as the leader runs it: every ``[retention] interval_minutes``, prune what
``events_days`` and ``tasks_days`` say (storage.retention), a batch at a time, checking the
leadership's fence before each batch; one log line per pass that removed anything."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

from taskops.storage.faults import describe, is_transient
from taskops.storage.retention import Pruned
from taskops.storage.store import TaskStore

log = logging.getLogger("taskops.runtime")

#: a breath between two batches, so the workers' writes go first
BATCH_PAUSE_SECONDS = 0.05


class Retention:
    def __init__(self, store: TaskStore, *, keep_going: Callable[[], bool] = lambda: True
                 ) -> None:
        self.store = store
        self.keep_going = keep_going

    async def prune_once(self) -> Pruned:
        settings = self.store.settings.retention
        now = self.store.clock()
        tasks_before = (now - timedelta(days=settings.tasks_days)
                        if settings.tasks_days is not None else None)
        events_before = (now - timedelta(days=settings.events_days)
                         if settings.events_days is not None else None)
        pruned = await self.store.retention.prune(
            tasks_before=tasks_before, events_before=events_before,
            batch=settings.batch_size, keep_going=self.keep_going,
            pause=lambda: asyncio.sleep(BATCH_PAUSE_SECONDS))
        if pruned:
            log.info("retention: pruned %d task(s) created before %s and %d event(s) "
                     "(tasks before %s) in %d batch(es)%s", pruned.tasks,
                     tasks_before.date().isoformat() if tasks_before else "-", pruned.events,
                     events_before.date().isoformat() if events_before else "-",
                     pruned.batches, "; stopped: no longer leading" if pruned.stopped else "")
        return pruned

    async def run(self) -> None:
        """Prune every interval until cancelled (by the leader's stand-down)."""
        settings = self.store.settings.retention
        if not settings.enabled:
            return
        log.info("retention: events after %s day(s), tasks after %s day(s)",
                 settings.events_days or "-", settings.tasks_days or "-")
        while True:
            try:
                await self.prune_once()
            except Exception as error:
                if is_transient(error):
                    log.warning("retention: the store is unavailable (%s); next pass later",
                                describe(error))
                else:
                    log.exception("retention: the pass failed; next pass later")
            await asyncio.sleep(settings.interval_minutes * 60)
