"""The push side as one service owned by the Application's lifecycle.

``start`` runs after the Application started (``bot.app.start_console``) and ``stop`` before
it stops, so every loop shares the bot's event loop and ends cleanly. Each loop reads the
store and wakes early on the in-process change bus; a missed wake-up costs latency only.
``stop`` cancels every job; a delivery under way ends first (bot/push/inflight.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from taskops.bot.app_types import AnyApp
from taskops.bot.context import deps_of
from taskops.bot.outage import store_fault, why
from taskops.bot.push.escalation import Escalation
from taskops.bot.push.inflight import Deliveries
from taskops.bot.push.injections import InjectionRelay
from taskops.bot.push.live import LiveEditor
from taskops.bot.push.notifier import Notifier
from taskops.bot.push.options import PushOptions
from taskops.bot.push.stuck import StuckWatch
from taskops.bot.push.summary import ShiftSummary
from taskops.storage.domain import EventKind
from taskops.storage.signals import TaskChange

log = logging.getLogger(__name__)
#: how long the jobs have to end once cancelled, beyond the grace of a delivery under way
#: (``PushOptions.stop_grace_seconds``): both within `taskops run`'s 10 s bound on a stop
STOP_GRACE_SECONDS = 2.0


class PushService:
    def __init__(self, app: AnyApp, options: PushOptions | None = None) -> None:
        d = deps_of(app)
        self.options = options or PushOptions()
        self.store = d.store
        self.telegram = d.telegram
        self.deliveries = Deliveries(self.options.stop_grace_seconds)
        notifications, deliveries = d.settings.notifications, self.deliveries
        self.notifier = Notifier(d.store, self.telegram, self.options, notifications,
                                 deliveries)
        self.relay = InjectionRelay(d.store, self.telegram, self.options, d.settings.tasks,
                                    deliveries)
        self.stuck = StuckWatch(d.store, self.telegram, self.options, notifications,
                                deliveries)
        self.escalation = Escalation(d.store, self.telegram, self.options, notifications,
                                     deliveries)
        self.live = LiveEditor(app, self.options)
        self.summary = ShiftSummary(d.store, self.telegram, self.options, notifications,
                                    deliveries)
        self._tasks: list[asyncio.Task[None]] = []

    def poke(self, change: TaskChange | None = None) -> None:
        """Something may be new in the feed; without a change: the subscriptions changed."""
        if change is None:
            self.notifier.poke(subscriptions=True)
            return
        if change.status is not None or change.event_kind is EventKind.STATUS_CHANGE:
            self.notifier.poke()
        if change.status is not None or change.event_kind is EventKind.PROGRESS:
            self.relay.poke()

    async def _watch(self) -> None:
        queue = self.store.bus.subscribe()
        try:
            while True:
                self.poke(await queue.get())
        finally:
            self.store.bus.unsubscribe(queue)

    def start(self) -> None:
        for name, coro in (("push-bus", self._watch()), ("push-notify", self.notifier.run()),
                           ("push-results", self.relay.run()), ("push-stuck", self.stuck.run()),
                           ("push-live", self.live.run()),
                           ("push-escalate", self.escalation.run()),
                           ("push-summary", self.summary.run())):
            self._tasks.append(asyncio.create_task(coro, name=name))
        log.info("push jobs started")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True),
                                   self.options.stop_grace_seconds + STOP_GRACE_SECONDS)
        self._tasks.clear()


#: ``app.bot_data`` key of PushOptions to use instead of the defaults (benchmarks that run
#: simulated time shorten the check intervals with it)
OPTIONS_KEY = "push_options"


async def start(app: AnyApp) -> PushService:
    d = deps_of(app)
    options = app.bot_data.get(OPTIONS_KEY)
    service = PushService(app, options if isinstance(options, PushOptions) else None)
    d.push = service
    try:
        await service.relay.prepare()
    except Exception as error:
        if not store_fault(error):
            log.exception("push: could not read the results cursor yet; the relay will retry")
        else:
            log.warning("push: the task store is unavailable (%s); the relay will retry",
                        why(error))
    service.start()
    return service


async def stop(app: AnyApp) -> None:
    d = deps_of(app)
    if isinstance(d.push, PushService):
        await d.push.stop()
    d.push = None
