"""The push side's feed reader shares a batch among chats for a moment, and keeps none
longer than it can use it (a soak found the stale batches growing the heap)."""

from __future__ import annotations

import pytest

from taskops.bot.push import feed
from taskops.bot.push.feed import FULL_SECONDS, FeedReader
from taskops.bot.push.options import PushOptions
from taskops.storage.domain import EventKind
from taskops.storage.store import TaskStore
from tests.factories import FakeClock, make_task


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


async def test_batches_are_shared_briefly_and_never_kept_stale(
        store: TaskStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    timer = Monotonic()
    monkeypatch.setattr(feed, "time", timer)
    reader = FeedReader(store, PushOptions(batch_size=2))
    task = await make_task(store, clock)
    for i in range(6):
        await store.append_event(task.id, EventKind.TEXT, {"text": f"step {i}"})
    first = await reader.read("0:0")
    assert first.full
    assert await reader.read("0:0") is first  # shared while fresh
    cursor = first.cursor
    for _ in range(3):
        cursor = (await reader.read(cursor)).cursor
    assert len(reader._cache) == 4
    timer.now += FULL_SECONDS
    fresh = await reader.read(cursor)
    assert list(reader._cache) == [cursor]  # every older batch is gone
    assert await reader.read(cursor) is fresh
    assert await reader.read("0:0") is not first  # read again, not kept
