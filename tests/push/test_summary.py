"""The shift summary at [notifications] summary_at, and /usage [7d|30d] on demand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest_asyncio

from taskops.storage.domain import ProviderChoice
from tests.e2e.harness import Console, command, running_console
from tests.factories import make_task
from tests.fakegram import FakeMessage, FakeTelegram
from tests.push.helpers import bot_messages, push, subscribe

OPENAI = ProviderChoice("openai", "gpt-4o")
#: 08:05 in Europe/Berlin (the tests' [ui] timezone)
DUE = datetime(2026, 11, 20, 7, 5, tzinfo=UTC)


@pytest_asyncio.fixture
async def summarising(fakegram: FakeTelegram, tmp_path: Path) -> AsyncIterator[Console]:
    sections = {"notifications": {"summary_at": "08:00"}}
    async with running_console(fakegram, tmp_path, sections=sections) as console:
        yield console


async def a_day_of_tasks(console: Console) -> None:
    clock = console.clock
    for day in range(3):
        await make_task(console.store, clock, name="nightly <report>", provider=OPENAI,
                        tokens=(1_000_000, 100_000), created=DUE - timedelta(days=day, hours=2),
                        final="STATUS: failed\nSUMMARY: no data")
    await make_task(console.store, clock, name="disk check", created=DUE - timedelta(hours=1),
                    final="all fine")
    clock.set(DUE)


def summaries(console: Console, chat: object) -> list[FakeMessage]:
    return [m for m in bot_messages(console, chat)
            if (m.text or "").startswith("📊 Shift summary")]


def charts(console: Console, chat: object) -> list[FakeMessage]:
    return [m for m in bot_messages(console, chat) if m.photo is not None]


async def test_each_chat_gets_the_shift_summary_once_at_its_time(summarising: Console) -> None:
    console = summarising
    server = console.server
    dm = server.private_chat(console.admin)
    group = server.add_group(-100700, "Ops", members=[console.admin])
    other = server.private_chat(console.other_admin)
    await subscribe(console)
    await subscribe(console, chat=group)
    await subscribe(console, chat=other, user=console.other_admin)
    await console.store.push.set_muted(other.id, DUE + timedelta(hours=8))
    await a_day_of_tasks(console)
    summary = push(console).summary
    console.clock.set(DUE - timedelta(minutes=10))
    assert await summary.check() == 0  # not yet 08:00
    console.clock.set(DUE)
    # Two passes at once (as two processes around a fail-over): each chat gets it once.
    assert sum(await asyncio.gather(summary.check(), summary.check())) == 2
    assert await summary.check() == 0
    for chat in (dm, group):
        [text] = summaries(console, chat)
        [chart] = charts(console, chat)
        assert chart.message_id > text.message_id
        assert chart.photo is not None
        assert chart.photo.startswith(b"\x89PNG")
        assert chart.caption is not None
        assert chart.caption.startswith("📈 Cost per provider per day · last 7 days")
        lines = text.text.splitlines()
        assert "2 tasks: 🟢 1 completed · 🔴 1 failed" in lines
        assert "🔴 1× nightly <report>" in lines  # escaped on the way, shown as typed
        assert any(line.startswith("openai · 1 task · 1.1M tok (1M in · 100k out) · $3.50")
                   for line in lines), lines
    assert summaries(console, other) == []  # muted
    assert server.violations == []
    # Past the hour's catch-up nothing more; the next day at 08:00 again.
    console.clock.set(DUE + timedelta(hours=2))
    assert await summary.check() == 0
    console.clock.set(DUE + timedelta(days=1))
    assert await summary.check() == 3  # the mute is over by then
    assert len(summaries(console, dm)) == 2


async def test_no_summary_unless_configured(console: Console) -> None:
    await subscribe(console)
    console.clock.set(DUE)
    assert await push(console).summary.check() == 0


async def usage(console: Console, text: str) -> tuple[FakeMessage, FakeMessage]:
    """Send /usage …; its table and its chart (both may be there before the first is
    looked at: they are picked by kind, not by order of arrival)."""
    dm = console.server.private_chat(console.admin)
    before = len(charts(console, dm))
    await console.server.send_text(console.admin, dm, text)
    await console.server.wait_for(lambda: len(charts(console, dm)) > before)
    tables = [m for m in bot_messages(console, dm) if (m.text or "").startswith("📊 Usage")]
    return tables[-1], charts(console, dm)[-1]


async def test_usage_sends_the_table_and_the_chart(console: Console) -> None:
    await a_day_of_tasks(console)
    text, chart = await usage(console, "/usage")
    assert chart.message_id > text.message_id
    assert text.text.startswith("📊 Usage · last 7 days")
    assert "4 tasks: 🟢 1 completed · 🔴 3 failed" in text.text.splitlines()
    assert "🔴 3× nightly <report>" in text.text.splitlines()
    assert chart.photo is not None
    assert chart.photo.startswith(b"\x89PNG")
    month, chart = await usage(console, "/usage 30D")
    assert month.text.startswith("📊 Usage · last 30 days")
    assert (chart.caption or "").startswith("📈 Cost per provider per day · last 30 days")
    for wrong in ("/usage 1y", "/usage 7d 30d"):
        refused = await command(console, wrong)
        assert refused.text == "⚠️ Usage: /usage, /usage 7d or /usage 30d"
    assert console.server.violations == []
