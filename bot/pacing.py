"""Pacing of what the push side and the auto-refresh send, so a burst never meets Telegram's
flood limits.

The Application's rate limiter (bot/ratelimit.py) paces each chat, but its overall and
per-group limits are leaky buckets that, once full, keep going at the average rate — more
than "30 in any second" or "20 in any minute" when a burst runs for long. Push traffic is
the bulk of what the bot sends, so it goes through stricter gates first:
- per chat, a token bucket a little under Telegram's (about 1/s with a short burst);
- per group, a token bucket whose burst plus a minute's refill stays under 20 a minute,
  so a long burst is spread evenly instead of stalling for most of every minute;
- overall, a true sliding window under 30 a second.
Whatever passes here passes the Application's limiter without waiting.

Send times are wall-clock seconds so a restarted process can be seeded with the last ones
(``seed``) instead of starting with a full burst into a chat that just had one.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class PacingLimits:
    """Below Telegram's documented limits (the fake server enforces them: a per-chat token
    bucket, sliding windows per group and overall)."""

    global_per_second: int = 25
    global_window_seconds: float = 1.1
    #: a group's burst plus one minute of refill must stay under Telegram's 20 a minute
    group_burst: int = 3
    group_per_minute: float = 15.0
    chat_burst: int = 3
    chat_per_second: float = 0.85


class TokenBucket:
    """``burst`` at once, then ``rate`` per second."""

    def __init__(self, burst: float, rate: float, clock: Callable[[], float]) -> None:
        self.burst, self.rate, self.clock = burst, rate, clock
        self.tokens, self.at = burst, clock()

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = max(self.at, now)

    def wait_time(self) -> float:
        self._refill(self.clock())
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1.0

    def replay(self, sent_at: list[float]) -> None:
        """Rebuild the bucket from the times messages were sent (oldest first)."""
        self.tokens, self.at = self.burst, sent_at[0]
        for at in sent_at:
            self._refill(at)
            self.tokens -= 1.0


class SlidingWindow:
    """At most ``limit`` acquisitions in any ``span`` seconds."""

    def __init__(self, limit: int, span: float, clock: Callable[[], float]) -> None:
        self.limit, self.span, self.clock = limit, span, clock
        self.times: deque[float] = deque()

    def wait_time(self) -> float:
        now = self.clock()
        while self.times and self.times[0] <= now - self.span:
            self.times.popleft()
        if len(self.times) < self.limit:
            return 0.0
        return self.times[len(self.times) - self.limit] + self.span - now

    def take(self) -> None:
        self.times.append(self.clock())


Gate = TokenBucket | SlidingWindow


class Pacer:
    def __init__(self, options: PacingLimits | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        options = options or PacingLimits()
        self.options = options
        self.clock = clock
        self._global = SlidingWindow(options.global_per_second, options.global_window_seconds,
                                     clock)
        self._chats: dict[int, TokenBucket] = {}
        self._groups: dict[int, TokenBucket] = {}

    def _chat(self, chat_id: int) -> TokenBucket:
        bucket = self._chats.get(chat_id)
        if bucket is None:
            bucket = self._chats[chat_id] = TokenBucket(
                self.options.chat_burst, self.options.chat_per_second, self.clock)
        return bucket

    def _group(self, chat_id: int) -> TokenBucket:
        bucket = self._groups.get(chat_id)
        if bucket is None:
            bucket = self._groups[chat_id] = TokenBucket(
                self.options.group_burst, self.options.group_per_minute / 60, self.clock)
        return bucket

    async def acquire(self, chat_id: int) -> None:
        """Wait until one more message (or edit) to ``chat_id`` is within every limit."""
        await _take(self._chat(chat_id))
        if chat_id < 0:  # groups, supergroups and channels have negative ids
            await _take(self._group(chat_id))
        await _take(self._global)

    async def ready(self, chat_id: int) -> None:
        """Wait until ``acquire`` would not wait (without taking anything): what is sent
        next may then be put together at the last moment."""
        gates: list[Gate] = [self._chat(chat_id)]
        if chat_id < 0:
            gates.append(self._group(chat_id))
        while True:
            wait = max(gate.wait_time() for gate in gates)
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    def seed(self, chat_id: int, sent_at: Iterable[float]) -> None:
        """Replay a chat's recent send times (from before a restart) into its limits."""
        times = sorted(t for t in sent_at if t > self.clock() - 3600)
        if not times:
            return
        self._chat(chat_id).replay(times)
        if chat_id < 0:
            self._group(chat_id).replay(times)


async def _take(gate: Gate) -> None:
    while True:
        wait = gate.wait_time()
        if wait <= 0:
            gate.take()
            return
        await asyncio.sleep(wait)
