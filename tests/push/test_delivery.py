"""Delivery guarantees: 429 and 500 from Telegram, and a restart, lose nothing."""

from __future__ import annotations

from pathlib import Path

from taskops.storage.store import TaskStore
from tests.e2e.harness import Console, running_console
from tests.factories import make_task
from tests.fakegram import FakeTelegram
from tests.push.helpers import notices, notified_ids, subscribe, wait_delivered


async def test_429_is_honoured_with_its_retry_after_and_nothing_is_lost(
        console: Console) -> None:
    server = console.server
    dm = server.private_chat(console.admin)
    await subscribe(console)
    # More 429s in a row than the Application's rate limiter retries by itself.
    server.fail("sendMessage", "429", count=5, retry_after=1)
    task = await make_task(console.store, console.clock, final="STATUS: failed\nSUMMARY: x")
    await wait_delivered(console, dm.id, timeout=30)
    assert [notified_ids(m) for m in notices(console, dm)] == [[task.id]]
    sends = server.calls_of("sendMessage")
    refused = [c for c in sends if c.status == 429]
    assert len(refused) == 5
    for earlier, later in zip(refused, sends[sends.index(refused[0]) + 1:], strict=False):
        assert later.at - earlier.at >= 0.95, "retry_after (1 s) not respected"
    assert server.flood_violations == []


async def test_500s_are_retried_with_backoff_and_nothing_repeats(console: Console) -> None:
    server = console.server
    dm = server.private_chat(console.admin)
    await subscribe(console)
    server.fail("sendMessage", "500", count=3)
    tasks = [await make_task(console.store, console.clock, name=f"t{i}",
                             final="STATUS: failed\nSUMMARY: x") for i in range(3)]
    await wait_delivered(console, dm.id, timeout=30)
    ids = [i for m in notices(console, dm) for i in notified_ids(m)]
    assert ids == [t.id for t in tasks]
    failures = [c.at for c in server.calls_of("sendMessage") if c.status == 500]
    assert len(failures) == 3
    # backing off: after the first 500 (which may have arrived) the push side records it,
    # then asks Telegram with probes 0.5 s, 1 s, 2 s apart before the one repeat
    assert failures[1] - failures[0] >= 0.45
    assert failures[2] - failures[1] >= 0.95
    assert server.flood_violations == []


async def test_changes_while_the_bot_is_down_arrive_after_a_restart(
        fakegram: FakeTelegram, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'console.db'}"
    async with running_console(fakegram, tmp_path) as console:
        dm = fakegram.private_chat(console.admin)
        await subscribe(console)
        first = await make_task(console.store, console.clock, final="STATUS: failed\nSUMMARY: 1")
        await wait_delivered(console, dm.id)
        waiting = await make_task(console.store, console.clock, name="later")
        settings, clock = console.settings, console.clock
    # No bot runs: another process writes the change.
    store = await TaskStore.open(settings, clock=clock)
    await store.fail_task(waiting.id, "while down")
    await store.close()
    async with running_console(fakegram, tmp_path, db_url=url) as again:
        await wait_delivered(again, dm.id)
        ids = [i for m in notices(again, dm) for i in notified_ids(m)]
        assert ids == [first.id, waiting.id]
        assert fakegram.flood_violations == []
