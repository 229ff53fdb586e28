"""Helpers of the round-trip latency benchmarks (echo_floor.py, console_latency.py).

Timing method, shared by both scripts: a round trip starts the moment the fake Telegram
server is handed the user's update (``server.send_text`` / ``server.press``, which queue
it and wake the bot's pending ``getUpdates`` long poll) and ends the moment the fake has
recorded the bot's answering call (``sendMessage`` / ``editMessageText``) in its call
log. The call log is watched through :class:`CallWatch`, which replaces the fake's
``world.calls`` list by a list that wakes a waiting future on each ``append`` — the fake
itself is not modified. The fake and the benchmark share one event loop and one
``time.perf_counter`` clock.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import math
import os
import statistics
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import machine_facts
from tests.fakegram import Call, FakeMessage, FakeTelegram

Predicate = Callable[[Call], bool]

#: the bot's AIORateLimiter admits 30 chat-bound requests per second overall; presses are
#: spaced so that no round trip ever waits for it (a person does not press 30 times a second)
DEFAULT_GAP_MS = 50.0
ROUND_TRIP_TIMEOUT = 15.0


class CallWatch(list[Call]):
    """The fake's call log, which also resolves futures waiting for a matching call."""

    def __init__(self, existing: Iterable[Call] = ()) -> None:
        super().__init__(existing)
        self._waiters: list[tuple[Predicate, asyncio.Future[tuple[float, Call]]]] = []

    def append(self, call: Call) -> None:
        at = time.perf_counter()
        super().append(call)
        if not self._waiters:
            return
        keep = []
        for predicate, future in self._waiters:
            if future.done():
                continue
            if predicate(call):
                future.set_result((at, call))
            else:
                keep.append((predicate, future))
        self._waiters = keep

    def expect(self, predicate: Predicate) -> asyncio.Future[tuple[float, Call]]:
        """A future of ``(perf_counter at recording, call)`` for the next matching call."""
        future: asyncio.Future[tuple[float, Call]] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        return future


def watch_calls(server: FakeTelegram) -> CallWatch:
    watch = CallWatch(server.world.calls)
    server.world.calls = watch
    return watch


def is_edit_of(message: FakeMessage) -> Predicate:
    chat_id, message_id = message.chat.id, message.message_id

    def predicate(call: Call) -> bool:
        return (call.method == "editMessageText"
                and str(call.params.get("message_id")) == str(message_id)
                and str(call.params.get("chat_id")) == str(chat_id))

    return predicate


def is_answer_of(query_id: str) -> Predicate:
    def predicate(call: Call) -> bool:
        return (call.method == "answerCallbackQuery"
                and str(call.params.get("callback_query_id")) == query_id)

    return predicate


def is_send_of(chat_id: int, text: str) -> Predicate:
    def predicate(call: Call) -> bool:
        return (call.method == "sendMessage" and str(call.params.get("chat_id")) == str(chat_id)
                and call.params.get("text") == text)

    return predicate


@dataclass(frozen=True)
class PressTiming:
    """One press: milliseconds from the injected update to the recorded edit and answer."""

    edit_ms: float
    answer_ms: float
    edit_status: int
    started: float  # perf_counter when the update was handed to the fake


#: PressTiming.edit_status of a press the bot settled with its answer alone
NO_EDIT = 0
#: how long after the answer an edit of an unchanged page would still count (it would be
#: sent beside the answer); outside the timing
LATE_EDIT_GRACE = 0.05


async def timed_press(server: FakeTelegram, watch: CallWatch, user: int, message: FakeMessage,
                      callback_data: str, *, timeout: float = ROUND_TRIP_TIMEOUT,
                      changes: bool = True) -> PressTiming:
    """Press a button and wait until the press is settled: edited and answered. A press
    that does not change the message (``changes=False``: the same page again) is settled
    by its answer; the bot skips an edit Telegram would refuse as "not modified", and if
    it edits anyway, the edit counts."""
    edited = watch.expect(is_edit_of(message))
    start = time.perf_counter()
    query_id = await server.press(user, message.chat, message.message_id, callback_data)
    answered = watch.expect(is_answer_of(query_id))
    try:
        if changes:
            (edit_at, call), (answer_at, _) = await asyncio.wait_for(
                asyncio.gather(edited, answered), timeout)
        else:
            answer_at, _ = await asyncio.wait_for(answered, timeout)
            try:
                edit_at, call = await asyncio.wait_for(edited, LATE_EDIT_GRACE)
            except TimeoutError:
                return PressTiming((answer_at - start) * 1000, (answer_at - start) * 1000,
                                   NO_EDIT, start)
            edit_at = max(edit_at, answer_at)
    except TimeoutError:
        edited.cancel()
        answered.cancel()
        raise RuntimeError(f"press {callback_data!r} not edited and answered within "
                           f"{timeout} s\n{server.dump()}") from None
    return PressTiming((edit_at - start) * 1000, (answer_at - start) * 1000, call.status, start)


def button_data(message: FakeMessage, text: str, *, prefix: bool = False) -> str:
    """The callback data of the button labelled ``text`` (or starting with it)."""
    found = [data for row in message.buttons for label, data in row
             if (label.startswith(text) if prefix else label == text) and data is not None]
    if len(found) != 1:
        labels = [label for row in message.buttons for label, _ in row]
        raise LookupError(f"{len(found)} buttons {text!r} on the message: {labels}")
    return found[0]


# --- statistics -----------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (the same definition as bench/common.py)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Stats:
    n: int
    p50: float
    p95: float
    mean: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stats:
        if not samples:
            raise ValueError("no samples")
        return cls(len(samples), statistics.median(samples), percentile(samples, 95),
                   statistics.fmean(samples), min(samples), max(samples))


# --- facts ----------------------------------------------------------------------------------


def git_state() -> str:
    """The commit benchmarked, and whether the working tree differed from it."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                                  timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = [line for line in git("status", "--porcelain", "--untracked-files=no",
                                    "bot", "storage", "taskops").splitlines() if line]
    return commit + (f" + uncommitted changes in {len(changed)} file(s) of bot/, storage/, "
                     "taskops/" if changed else "")


def latency_facts() -> dict[str, str]:
    """Machine facts plus the versions on the request path and the commit."""
    facts = machine_facts()
    facts["git"] = git_state()
    for dist in ("python-telegram-bot", "httpx", "aiohttp", "SQLAlchemy"):
        try:
            facts[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            facts[dist] = "not installed"
    return facts


def facts_line(facts: dict[str, str], keys: Sequence[str]) -> str:
    return ", ".join(f"{k} {facts[k]}" for k in keys if k in facts)


# --- interference -------------------------------------------------------------------------


def _busy_seconds() -> float:
    """CPU seconds all processes have spent busy since boot (/proc/stat), 0 if unknown."""
    try:
        with open("/proc/stat", encoding="ascii") as file:
            fields = file.readline().split()[1:]
    except OSError:
        return 0.0
    ticks = [int(f) for f in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class CpuWatch:
    """How much CPU other processes used while a benchmark ran (a noisy neighbour shows)."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.busy = _busy_seconds()
        self.own = time.process_time()

    def other_cores(self) -> float:
        """Mean number of cores busy outside this process since the watch started."""
        wall = time.perf_counter() - self.wall
        other = (_busy_seconds() - self.busy) - (time.process_time() - self.own)
        return max(0.0, other / wall) if wall > 0 else 0.0
