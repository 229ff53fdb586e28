"""A bounded map of what this process read or wrote lately, for the store's caches.

Entries leave least recently used first when the map is over its size, and when older
than ``max_age`` seconds — counted from the last put, or from the last get too when
``idle=True`` (an entry in use stays). The map is written through by its owner: each
write of the stored truth updates or drops the entry, and counts in ``writes``, so a
value read from the store while a write was on its way is not cached (``put_read`` with
the count taken before the read).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class RecentMap(Generic[K, V]):
    def __init__(self, size: int, max_age: float, *, idle: bool) -> None:
        self.size = size
        self.max_age = max_age
        self.idle = idle
        #: value and when it was put (or last used, when ``idle``), oldest first
        self._entries: OrderedDict[K, tuple[V, float]] = OrderedDict()
        self._writes = 0

    @property
    def writes(self) -> int:
        return self._writes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = time.monotonic()
        if now - entry[1] >= self.max_age:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        if self.idle:
            self._entries[key] = (entry[0], now)
        return entry[0]

    def put(self, key: K, value: V) -> None:
        """Cache a value this process wrote."""
        self._writes += 1
        self._put(key, value)

    def put_read(self, key: K, value: V, writes_before: int) -> None:
        """Cache a value read from the store, unless a write came in while it was read."""
        if self._writes == writes_before:
            self._put(key, value)

    def change(self, key: K, change: Callable[[V], V]) -> None:
        """A write of this process changed the stored value: change the cached one alike."""
        self._writes += 1
        entry = self._entries.get(key)
        if entry is not None:
            self._entries[key] = (change(entry[0]), entry[1])

    def forget(self, key: K) -> None:
        """A write of this process changed the value in a way not known here: drop it."""
        self._writes += 1
        self._entries.pop(key, None)

    def forget_where(self, stale: Callable[[V], bool]) -> None:
        self._writes += 1
        for key in [k for k, (v, _) in self._entries.items() if stale(v)]:
            del self._entries[key]

    def _put(self, key: K, value: V) -> None:
        now = time.monotonic()
        self._entries[key] = (value, now)
        self._entries.move_to_end(key)
        # Oldest first: drop while over the size, or too old.
        while self._entries:
            oldest, (_, stamp) = next(iter(self._entries.items()))
            if len(self._entries) <= self.size and now - stamp < self.max_age:
                break
            del self._entries[oldest]
