"""Prometheus metrics (issue 18), made with the official ``prometheus-client``.

One registry for the process, served at ``GET /metrics`` by the monitoring server
(taskops.monitoring) when ``[monitoring] port`` is set; every layer counts into it through
the helpers below. With the port off (the default) the helpers return at once: nothing is
counted, nothing is served.

Label sets stay bounded: statuses, event kinds, outcomes, Bot API method names from a
fixed list (others count as ``other``), lock names from the code; never a task id, a
name, a chat or a user.

``taskops_tasks{status}`` is not counted here: the server sets it from the store's own
per-status counts (``TaskStore.task_counts``, what the list shows) when it is scraped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

#: this process's registry (not the library's global one: tests and benches that build
#: several consoles in one process still get one set of series)
REGISTRY = CollectorRegistry(auto_describe=True)
# The library's own collectors: resident and virtual memory, CPU seconds, open and
# maximum file descriptors, start time (process_*); the Python version; the collector's
# runs (python_gc_*).
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0)

TASKS = Gauge("taskops_tasks", "Tasks by status, exact, from the store's own counts",
              ["status"], registry=REGISTRY)
STATUS_CHANGES = Counter("taskops_status_changes",
                         "Task status changes written, by the status changed to",
                         ["status"], registry=REGISTRY)
EVENTS_WRITTEN = Counter("taskops_events_written", "Task events written, by kind", ["kind"],
                         registry=REGISTRY)
KILL_SECONDS = Histogram("taskops_kill_seconds",
                         "From a kill request to the task recorded as killed",
                         buckets=_LATENCY_BUCKETS, registry=REGISTRY)
PUSH_LAG = Gauge("taskops_push_lag_seconds",
                 "Age of the oldest change not yet delivered to a subscribed chat "
                 "(0: every chat is up to date)", registry=REGISTRY)
FEED_LAG = Gauge("taskops_feed_lag_seconds",
                 "Age of the oldest event written but not yet readable by the change feed "
                 "(PostgreSQL: held back by a transaction still open; 0 on SQLite)",
                 registry=REGISTRY)
NOTIFICATIONS = Counter("taskops_notifications",
                        "Push messages (notifications, alerts and their re-announcements, "
                        "digests, stuck notices, results, shift summaries): sent, retried "
                        "(a try that failed and was tried again), dropped (refused by "
                        "Telegram) or unconfirmed (may have arrived; not sent again)",
                        ["outcome"], registry=REGISTRY)
TELEGRAM_REQUESTS = Counter("taskops_telegram_requests",
                            "Bot API requests (each try), by method and outcome: ok, 429 "
                            "(flood limit) or error", ["method", "outcome"], registry=REGISTRY)
STORE_ERRORS = Counter("taskops_store_errors",
                       "Store statements that failed: transient (the database away) or other",
                       ["kind"], registry=REGISTRY)
STORE_SECONDS = Histogram("taskops_store_statement_seconds", "Store statement latency",
                          buckets=_LATENCY_BUCKETS, registry=REGISTRY)
STORE_UP = Gauge("taskops_store_up", "1 when the store answered the last health probe",
                 registry=REGISTRY)
LEADER = Gauge("taskops_leader", "1 while this process leads (holds the lock), by lock",
               ["lock"], registry=REGISTRY)

#: Bot API methods counted under their own name; any other is "other"
TELEGRAM_METHODS = frozenset({
    "sendMessage", "editMessageText", "editMessageReplyMarkup", "deleteMessage",
    "answerCallbackQuery", "sendDocument", "sendPhoto", "sendChatAction", "getMe",
    "getUpdates", "setMyCommands", "deleteMyCommands", "getMyCommands", "setWebhook",
    "deleteWebhook", "getWebhookInfo", "getFile", "getChat", "close", "logOut"})


class _State:
    on = False
    #: locks this process leads now (the role: leader / standby / worker)
    leading: set[str] = set()  # noqa: RUF012 - one per process, by design


STATE = _State()


def enable(on: bool = True) -> None:
    """Counting on (``[monitoring] port`` set) or off (the default: every helper returns
    at once)."""
    STATE.on = on


def enabled() -> bool:
    return STATE.on


def status_changed(status: str) -> None:
    if STATE.on:
        STATUS_CHANGES.labels(status).inc()


def events_written(kind: str, n: int = 1) -> None:
    if STATE.on and n:
        EVENTS_WRITTEN.labels(kind).inc(n)


def telegram_request(method: str, outcome: str) -> None:
    if STATE.on:
        TELEGRAM_REQUESTS.labels(method if method in TELEGRAM_METHODS else "other",
                                 outcome).inc()


def notification(outcome: str) -> None:
    if STATE.on:
        NOTIFICATIONS.labels(outcome).inc()


def store_statement(seconds: float) -> None:
    if STATE.on:
        STORE_SECONDS.observe(seconds)


def store_error(transient: bool) -> None:
    if STATE.on:
        STORE_ERRORS.labels("transient" if transient else "other").inc()


@contextmanager
def kill_timer() -> Iterator[None]:
    start = time.perf_counter()
    yield
    if STATE.on:
        KILL_SECONDS.observe(time.perf_counter() - start)


def leading(lock: str, now: bool) -> None:
    """Whether this process leads ``lock`` (kept even with counting off: /healthz's role)."""
    if now:
        STATE.leading.add(lock)
    else:
        STATE.leading.discard(lock)
    if STATE.on:
        LEADER.labels(lock).set(1 if now else 0)


def render() -> bytes:
    """The registry in Prometheus' text format."""
    return generate_latest(REGISTRY)
