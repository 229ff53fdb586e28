"""The shift summary's and /usage's figures, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from taskops.storage.domain import ProviderChoice, TaskStatus
from taskops.storage.store import TaskStore
from taskops.storage.usage import day_bounds
from tests.factories import FakeClock, make_task

OPENAI = ProviderChoice("openai", "gpt-4o")
CLAUDE = ProviderChoice("anthropic", "claude-3-haiku-20240307")


async def test_a_day_in_figures(store: TaskStore, clock: FakeClock) -> None:
    start = clock()
    await make_task(store, clock, name="old", provider=OPENAI, tokens=(1000, 1000),
                    created=start - timedelta(hours=25), final="STATUS: failed\nSUMMARY: x")
    clock.set(start)
    for _ in range(3):
        await make_task(store, clock, name="disk check", provider=OPENAI, tokens=(1_000_000, 0),
                        final="STATUS: failed\nSUMMARY: full")
    await make_task(store, clock, name="report", provider=OPENAI,
                    final="STATUS: failed\nSUMMARY: no")
    await make_task(store, clock, name="report", provider=CLAUDE, tokens=(4_000_000, 0),
                    final="done")
    await make_task(store, clock, name="running", provider=CLAUDE)
    await make_task(store, clock, name="never", started=False, killed=True)
    summary = await store.usage(start - timedelta(hours=24), start + timedelta(seconds=1))
    # A kill ends a task as failed (the platform's meaning), so it counts as one.
    assert summary.by_status == {TaskStatus.FAILED: 5, TaskStatus.COMPLETED: 1,
                                 TaskStatus.RUNNING: 1}
    assert summary.total == 7
    assert summary.failures == [("disk check", 3), ("never", 1), ("report", 1)]
    assert summary.failed_names == 3
    by = {p.provider: p for p in summary.providers}
    assert by["openai"].tasks == 4
    assert by["openai"].prompt_tokens == 3_000_000
    assert by["openai"].cost_usd == pytest.approx(7.5)  # $2.50 per million in
    assert by["anthropic"].cost_usd == pytest.approx(1.0)
    assert by["anthropic"].tasks == 2
    assert summary.providers[0].provider == "openai"  # most cost first
    assert sum(p.tasks for p in summary.providers) == 7


async def test_cost_per_provider_per_local_day(store: TaskStore, clock: FakeClock) -> None:
    # Europe/Berlin: 23:30 UTC on 18 Nov is already 19 Nov there.
    await make_task(store, clock, provider=OPENAI, tokens=(1_000_000, 0),
                    created=datetime(2026, 11, 18, 23, 30, tzinfo=UTC))
    await make_task(store, clock, provider=OPENAI, tokens=(2_000_000, 0),
                    created=datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    await make_task(store, clock, provider=CLAUDE, tokens=(4_000_000, 0),
                    created=datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    await make_task(store, clock, provider=CLAUDE, tokens=(4_000_000, 0),
                    created=datetime(2026, 11, 10, 10, 0, tzinfo=UTC))  # before the week
    daily = await store.daily_cost(date(2026, 11, 20), 7)
    assert daily.days == [date(2026, 11, 14) + timedelta(days=i) for i in range(7)]
    assert daily.series["openai"] == pytest.approx([0, 0, 0, 0, 0, 2.5, 5.0])
    assert daily.series["anthropic"] == pytest.approx([0, 0, 0, 0, 0, 0, 1.0])
    one = await store.daily_cost(date(2026, 11, 20), 1)
    assert one.series["openai"] == pytest.approx([5.0])


def test_local_days_across_a_change_of_clocks() -> None:
    from zoneinfo import ZoneInfo

    bounds = day_bounds(date(2026, 10, 25), 1, ZoneInfo("Europe/Berlin"))
    (day, start), (_, end) = bounds
    assert day == date(2026, 10, 25)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=25)
