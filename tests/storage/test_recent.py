"""storage.recent.RecentMap: bounded by size and age, written through."""

from __future__ import annotations

import pytest

from taskops.storage import recent
from taskops.storage.recent import RecentMap


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(recent.time, "monotonic", c)
    return c


@pytest.mark.parametrize("idle", [True, False])
def test_age_counts_from_the_put_or_from_the_last_use(clock: Clock, idle: bool) -> None:
    m: RecentMap[str, int] = RecentMap(10, 60.0, idle=idle)
    m.put("a", 1)
    clock.now += 50
    assert m.get("a") == 1
    clock.now += 50  # 100 s after the put, 50 s after the use
    assert m.get("a") == (1 if idle else None)


def test_the_least_recently_used_leave_first_when_over_the_size(clock: Clock) -> None:
    m: RecentMap[int, int] = RecentMap(3, 60.0, idle=True)
    for k in range(3):
        m.put(k, k)
    assert m.get(0) == 0  # 0 is now the most recently used
    m.put(3, 3)
    assert [m.get(k) for k in range(4)] == [0, None, 2, 3]
    assert len(m) == 3


def test_old_entries_leave_when_another_is_put(clock: Clock) -> None:
    m: RecentMap[int, int] = RecentMap(100, 60.0, idle=True)
    m.put(1, 1)
    clock.now += 61
    m.put(2, 2)
    assert len(m) == 1


def test_a_read_that_a_write_overtook_is_not_cached(clock: Clock) -> None:
    m: RecentMap[str, str] = RecentMap(10, 60.0, idle=False)
    before = m.writes
    m.forget("k")  # a write while the read was on its way
    m.put_read("k", "stale", before)
    assert m.get("k") is None
    m.put_read("k", "fresh", m.writes)
    assert m.get("k") == "fresh"
    m.change("k", str.upper)
    assert m.get("k") == "FRESH"
    m.forget_where(lambda v: v == "FRESH")
    assert m.get("k") is None
