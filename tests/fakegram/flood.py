"""Flood limits (429 + retry_after) and an injectable clock."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from .models import ApiError


@dataclass(frozen=True)
class FloodLimits:
    """Telegram's documented sending limits; set a field to None to switch that limit off.

    - per chat: a token bucket of ``per_chat_burst`` messages refilled at ``per_chat_rate``/s
      (about one message per second with a short burst);
    - per group or supergroup: ``per_group_per_minute`` messages in any 60 s window;
    - overall: ``global_per_second`` messages in any 1 s window.

    Counted: sendMessage, sendDocument, sendPhoto, and editMessageText/editMessageReplyMarkup
    unless ``count_edits`` is False.
    """

    per_chat_burst: float | None = 5
    per_chat_rate: float = 1.0
    per_group_per_minute: int | None = 20
    global_per_second: int | None = 30
    count_edits: bool = True

    @classmethod
    def off(cls) -> FloodLimits:
        return cls(per_chat_burst=None, per_group_per_minute=None, global_per_second=None)

    def without_per_chat(self) -> FloodLimits:
        return replace(self, per_chat_burst=None)


class ManualClock:
    """A clock for tests: ``clock()`` returns the time, ``clock.advance(s)`` moves it."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class _Bucket:
    __slots__ = ("at", "tokens")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens, self.at = tokens, at


class FloodControl:
    def __init__(self, limits: FloodLimits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self.clock = clock
        self._buckets: dict[int, _Bucket] = {}
        self._group: dict[int, deque[float]] = {}
        self._global: deque[float] = deque()

    def charge(self, chat_id: int, is_group: bool, *, edit: bool = False) -> None:
        """Count one message to ``chat_id`` or raise ApiError 429 (and count nothing)."""
        lim = self.limits
        if edit and not lim.count_edits:
            return
        now = self.clock()
        waits: list[float] = []
        bucket: _Bucket | None = None
        if lim.per_chat_burst is not None:
            bucket = self._buckets.get(chat_id)
            if bucket is None:
                bucket = self._buckets[chat_id] = _Bucket(float(lim.per_chat_burst), now)
            bucket.tokens = min(
                float(lim.per_chat_burst),
                bucket.tokens + max(0.0, now - bucket.at) * lim.per_chat_rate,
            )
            bucket.at = now
            if bucket.tokens < 1.0:
                waits.append((1.0 - bucket.tokens) / lim.per_chat_rate)
        group_window: deque[float] | None = None
        if is_group and lim.per_group_per_minute is not None:
            group_window = self._group.setdefault(chat_id, deque())
            waits += _window_wait(group_window, now, 60.0, lim.per_group_per_minute)
        if lim.global_per_second is not None:
            waits += _window_wait(self._global, now, 1.0, lim.global_per_second)
        if waits:
            retry = max(1, math.ceil(max(waits) - 1e-9))
            raise ApiError(429, f"Too Many Requests: retry after {retry}", retry_after=retry)
        if bucket is not None:
            bucket.tokens -= 1.0
        if group_window is not None:
            group_window.append(now)
        if lim.global_per_second is not None:
            self._global.append(now)


def _window_wait(window: deque[float], now: float, span: float, limit: int) -> list[float]:
    while window and window[0] <= now - span:
        window.popleft()
    if len(window) < limit:
        return []
    return [window[len(window) - limit] + span - now]
