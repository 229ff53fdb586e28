"""The push side while the store is away: its loops wait quietly and carry on after."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.e2e.harness import running_console
from tests.factories import make_task
from tests.fakegram import FakeTelegram
from tests.faults import postgres_refusing
from tests.push.helpers import notices, notified_ids, subscribe, wait_delivered


async def test_push_waits_for_a_refusing_database_and_delivers_after(
        fakegram: FakeTelegram, tmp_path: Path, own_postgres_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    async with running_console(fakegram, tmp_path, db_url=own_postgres_url) as console:
        dm = fakegram.private_chat(console.admin)
        await subscribe(console)
        first = await make_task(console.store, console.clock, name="before",
                                final="STATUS: failed\nSUMMARY: x")
        await wait_delivered(console, dm.id)
        caplog.set_level(logging.INFO)
        async with postgres_refusing(console.settings.database.url):
            # The loops poll every second: wait until they have met the fault, and a
            # few of their retries.
            await fakegram.wait_for(lambda: not console.store.health.available, timeout=15)
            await fakegram.wait_for(lambda: console.store.health.read.failures >= 4,
                                    timeout=15)
        after = await make_task(console.store, console.clock, name="after",
                                final="STATUS: failed\nSUMMARY: y")
        await wait_delivered(console, dm.id)
        assert [notified_ids(m) for m in notices(console, dm)] == [[first.id], [after.id]]
    records = [r for r in caplog.records if r.name.startswith("taskops")]
    assert [r.getMessage() for r in records if r.levelno >= logging.ERROR] == []
    waits = [r.getMessage() for r in records
             if r.levelno == logging.WARNING and "waiting for it" in r.getMessage()]
    # One line per loop when the fault starts, not one per try.
    loops = [w.split(":", 1)[0] for w in waits]
    assert loops
    assert len(loops) == len(set(loops)), waits
