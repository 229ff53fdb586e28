"""``GET /healthz`` and ``GET /metrics`` for a load balancer, systemd, an orchestrator and
Prometheus (issue 18): ``[monitoring] listen`` and ``port``, served by ``taskops run`` and
``taskops worker``.

A probe runs every :data:`PROBE_EVERY` seconds: one trivial statement on the store
(given :data:`PROBE_TIMEOUT` seconds), then, while it answers, the feed's and the push
lag. ``/healthz`` answers from the last probe: 200 and a small JSON body while the store
answered it, 503 (same body) when it did not or when the last answer is older than
:data:`STALE_AFTER` seconds. So a store that goes away is a 503 within
``PROBE_EVERY + PROBE_TIMEOUT`` (5 s), and its return a 200 at the next probe (2 s).

``/metrics`` is the process's registry (taskops.metrics) in Prometheus' text format, with
``taskops_tasks{status}`` read from the store's own counts at each scrape.

The HTTP side is a few lines on asyncio streams: two GET paths, no keep-alive, requests
of at most :data:`MAX_REQUEST` bytes, each answered within :data:`REQUEST_TIMEOUT` s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from taskops import metrics, redaction
from taskops.config import Settings
from taskops.storage.domain import TaskStatus
from taskops.storage.faults import describe
from taskops.storage.store import TaskStore

log = logging.getLogger(__name__)

PROBE_EVERY = 2.0
PROBE_TIMEOUT = 3.0
STALE_AFTER = 8.0
MAX_REQUEST = 8192
REQUEST_TIMEOUT = 5.0


class Role:
    LEADER = "leader"  #: leads the triggers (cronjobs, heartbeat, consolidation)
    STANDBY = "standby"  #: would lead them, another process does
    WORKER = "worker"  #: runs tasks; no schedules to lead


def role_of(settings: Settings) -> str:
    if "triggers" in metrics.STATE.leading:
        return Role.LEADER
    runtime = settings.runtime
    scheduled = (any(job.enabled for job in settings.cronjobs) or bool(runtime.heartbeat_minutes)
                 or bool(runtime.consolidation_cron))
    return Role.STANDBY if scheduled else Role.WORKER


@dataclass
class Health:
    reachable: bool = False
    checked_at: float | None = None  #: time.monotonic() of the last probe that ended
    error: str | None = None
    feed_lag: float | None = None
    push_lag: float | None = None


class Monitor:
    def __init__(self, store: TaskStore, settings: Settings, *,
                 push_lag: Callable[[], Awaitable[float]] | None = None,
                 probe_every: float = PROBE_EVERY, probe_timeout: float = PROBE_TIMEOUT) -> None:
        self.store, self.settings = store, settings
        self.push_lag = push_lag
        self.probe_every, self.probe_timeout = probe_every, probe_timeout
        self.health = Health()
        self.server: asyncio.Server | None = None
        self._prober: asyncio.Task[None] | None = None

    # --- the probe ------------------------------------------------------------------------

    async def probe(self) -> Health:
        health = Health()
        try:
            await asyncio.wait_for(self.store.ping(), self.probe_timeout)
            health.reachable = True
            held = await asyncio.wait_for(self.store.feed_held_back_since(), self.probe_timeout)
            now = self.store.clock()
            health.feed_lag = 0.0 if held is None else max(0.0, (now - held).total_seconds())
            if self.push_lag is not None:
                health.push_lag = await asyncio.wait_for(self.push_lag(), self.probe_timeout)
        except TimeoutError:
            health.error = f"no answer within {self.probe_timeout:g} s"
        except Exception as error:
            health.error = describe(error)
        health.checked_at = time.monotonic()
        if health.reachable != self.health.reachable and self.health.checked_at is not None:
            log.warning("health: the store is %s%s", "back" if health.reachable else "away",
                        f" ({health.error})" if health.error else "")
        self.health = health
        if metrics.enabled():
            metrics.STORE_UP.set(1 if health.reachable else 0)
            if health.feed_lag is not None:
                metrics.FEED_LAG.set(health.feed_lag)
            if health.push_lag is not None:
                metrics.PUSH_LAG.set(health.push_lag)
        return health

    async def _probe_forever(self) -> None:
        while True:
            started = time.monotonic()
            await self.probe()
            await asyncio.sleep(max(0.0, self.probe_every - (time.monotonic() - started)))

    def healthy(self) -> bool:
        checked = self.health.checked_at
        return (self.health.reachable and checked is not None
                and time.monotonic() - checked <= STALE_AFTER)

    def health_body(self) -> dict[str, Any]:
        health = self.health
        age = None if health.checked_at is None else round(time.monotonic() - health.checked_at, 1)
        return {"status": "ok" if self.healthy() else "unavailable",
                "store": {"reachable": health.reachable, "checked_seconds_ago": age,
                          "error": health.error},
                "role": role_of(self.settings),
                "feed_lag_seconds": _round(health.feed_lag),
                "push_lag_seconds": _round(health.push_lag)}

    # --- the server -----------------------------------------------------------------------

    async def start(self, host: str, port: int) -> None:
        metrics.enable(True)
        await self.probe()
        self._prober = asyncio.create_task(self._probe_forever(), name="health-probe")
        self.server = await asyncio.start_server(self._serve, host, port)
        shown = ", ".join(f"{s.getsockname()[0]}:{s.getsockname()[1]}"
                          for s in self.server.sockets)
        log.info("monitoring: /healthz and /metrics on %s", shown)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._prober is not None:
            self._prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prober
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, content_type, body = await asyncio.wait_for(self._answer(reader),
                                                                REQUEST_TIMEOUT)
        except (TimeoutError, asyncio.LimitOverrunError, asyncio.IncompleteReadError,
                ConnectionError, ValueError):
            status, content_type, body = 400, "text/plain", b"bad request\n"
        head = (f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Cache-Control: no-store\r\nConnection: close\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode("ascii") + body)
            await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_REQUEST:
            return 431, "text/plain", b"request too large\n"
        method, path, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        path = path.split("?", 1)[0]
        if path not in ("/healthz", "/metrics"):
            return 404, "text/plain", b"not found\n"
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"only GET\n"
        if path == "/healthz":
            body = redaction.redact(json.dumps(self.health_body())).encode() + b"\n"
            return (200 if self.healthy() else 503), "application/json", body
        await self._refresh_task_counts()
        return 200, CONTENT_TYPE_LATEST, metrics.render()

    async def _refresh_task_counts(self) -> None:
        # On failure the last values stay; taskops_store_up says they may be old.
        try:
            found = await asyncio.wait_for(self.store.status_counts(), self.probe_timeout)
        except Exception as error:
            log.debug("metrics: task counts not read: %s", describe(error))
            return
        for status in TaskStatus:
            metrics.TASKS.labels(status.value).set(found.get(status, 0))


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            431: "Request Header Fields Too Large", 503: "Service Unavailable"}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@contextlib.asynccontextmanager
async def serving(store: TaskStore, settings: Settings, *,
                  push_lag: Callable[[], Awaitable[float]] | None = None
                  ) -> AsyncIterator[Monitor | None]:
    """The monitoring server for the block when ``[monitoring] port`` is set; else nothing."""
    port = settings.monitoring.port
    if port is None:
        yield None
        return
    monitor = Monitor(store, settings, push_lag=push_lag)
    await monitor.start(settings.monitoring.listen, port)
    try:
        yield monitor
    finally:
        await monitor.stop()
