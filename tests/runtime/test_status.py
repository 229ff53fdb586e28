"""``taskops status``: leader, standbys, workers with their leases and running counts, and
the push cursors' lag, as the store sees them."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from taskops.storage.domain import EventKind, TaskDraft
from taskops.storage.leader import CONSOLE
from tests.factories import FakeClock
from tests.runtime.conftest import MakeStore

ROOT = Path(__file__).resolve().parents[2]
TIMING = {"ping": 0.2, "lease": 0.5, "server_timeout": 2.0, "standby_poll": 0.2}


async def test_status_shows_leader_workers_and_cursor_lag(make_store: MakeStore,
                                                          clock: FakeClock) -> None:
    store = await make_store()
    other = await make_store()
    first = await store.create_task(TaskDraft(name="a", prompt="p"))
    await store.create_task(TaskDraft(name="b", prompt="p"))
    await store.create_task(TaskDraft(name="waiting", prompt="p"))
    assert [t.id for t in await store.work.claim_new("w1", 2, lease_seconds=30)] == [
        first.id, first.id + 1]
    await store.push.subscribe(1001, {}, created_by=1)
    # On PostgreSQL a new cursor sits at the server-wide horizon, which other databases'
    # open transactions may hold back: count from what it shows now.
    before = next(c.events for c in (await store.cluster.status()).cursors
                  if c.name == "chat 1001")
    await store.append_event(first.id, EventKind.TEXT, {"text": "news"})
    stop = asyncio.Event()
    leading = asyncio.Event()

    async def lead() -> None:
        leading.set()
        await asyncio.Event().wait()

    a = asyncio.create_task(store.cluster.leadership(CONSOLE, "lead-a", **TIMING).run(stop, lead))
    await asyncio.wait_for(leading.wait(), 120)
    b_leadership = other.cluster.leadership(CONSOLE, "stand-b", **TIMING)
    b = asyncio.create_task(b_leadership.run(stop, lead))
    try:
        clock.advance(40)  # w1 stopped renewing: its lease ran out
        status = await store.cluster.status()
        text = status.describe()
        assert status.workers[0].worker_id == "w1"
        assert status.workers[0].running == 2
        assert "EXPIRED" in text
        assert status.new_tasks == 1
        chat = next(c for c in status.cursors if c.name == "chat 1001")
        assert chat.events == before + 1
        assert "chat 1001" in text
        if status.engine == "postgresql":
            async def standing_by() -> bool:
                return any(m.role == "standby" for m in await store.cluster.members())

            async with asyncio.timeout(120):
                while not await standing_by():  # noqa: ASYNC110 - another task's state
                    await asyncio.sleep(0.05)
            text = (await store.cluster.status()).describe()
            assert "leader:   lead-a" in text
            assert "standby:  stand-b" in text
            assert status.workers[0].connected is False  # w1 has no connection of its own
        else:
            assert "holds the console's file lock" in text
    finally:
        stop.set()
        await asyncio.gather(a, b)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_the_status_command_prints_the_cluster(make_store: MakeStore,
                                                     tmp_path: Path) -> None:
    store = await make_store()
    config = tmp_path / "status.toml"
    config.write_text(f'[database]\nurl = "{store.settings.database.url}"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKOPS_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "taskops.cli", "status", "--config", str(config), cwd=tmp_path,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 300)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert text.startswith("taskops cluster: postgresql")
    assert "leader:   none" in text
    assert "workers:  0" in text
