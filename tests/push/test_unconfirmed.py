"""A notification Telegram may have delivered without confirming it (a dropped connection
after the send, an answer later than the client waits, a 5xx): at most one repeat, marked
as such, and nothing lost (issue 16)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from taskops.bot.flood import sent_again
from taskops.bot.render import render
from taskops.storage import push_store
from tests.e2e.harness import Console, running_console
from tests.factories import make_task
from tests.fakegram import FakeMessage, FakeTelegram
from tests.push.helpers import bot_messages, notices, notified_ids, subscribe, wait_delivered

MARK = render("sent_again")


def texts(messages: list[FakeMessage]) -> list[str]:
    return [m.text or "" for m in messages]


def marked(message: FakeMessage) -> bool:
    return (message.text or "").endswith(MARK.replace("<i>", "").replace("</i>", ""))


async def test_a_send_performed_without_an_answer_is_repeated_once_and_marked(
        console: Console) -> None:
    server = console.server
    dm = server.private_chat(console.admin)
    await subscribe(console)
    before = len(bot_messages(console, dm))
    # Every send performed, none answered: the original, then (after Telegram answers a
    # probe again) the one repeat; the third never goes.
    server.fail("sendMessage", "drop_after", count=10)
    task = await make_task(console.store, console.clock, final="STATUS: failed\nSUMMARY: x")
    await server.wait_for(lambda: len(bot_messages(console, dm)) >= before + 2, timeout=20)
    await wait_delivered(console, dm.id, timeout=20)
    sent = notices(console, dm)
    assert [notified_ids(m) for m in sent] == [[task.id], [task.id]]
    assert not marked(sent[0])
    assert marked(sent[1])
    server.clear_faults()
    later = await make_task(console.store, console.clock, name="later",
                            final="STATUS: failed\nSUMMARY: y")
    await wait_delivered(console, dm.id, timeout=20)
    sent = notices(console, dm)
    assert [notified_ids(m) for m in sent] == [[task.id], [task.id], [later.id]]
    assert not marked(sent[2])


async def test_an_answer_later_than_the_client_waits_is_repeated_once(
        console: Console) -> None:
    server = console.server
    dm = server.private_chat(console.admin)
    await subscribe(console)
    # Performed after 6.5 s: the client gave up after 5 s.
    server.fail("sendMessage", "slow", count=1, delay=6.5)
    task = await make_task(console.store, console.clock, final="STATUS: failed\nSUMMARY: x")
    await server.wait_for(lambda: len(notices(console, dm)) >= 2, timeout=30)
    await wait_delivered(console, dm.id, timeout=20)
    sent = notices(console, dm)
    assert [notified_ids(m) for m in sent] == [[task.id], [task.id]]
    assert sum(marked(m) for m in sent) == 1


async def test_a_probe_telegram_leaves_hanging_does_not_hold_back_the_repeat(
        console: Console, caplog: pytest.LogCaptureFixture) -> None:
    server = console.server
    dm = server.private_chat(console.admin)
    await subscribe(console)
    # The send is performed after 6.5 s (the client gave up after 5 s); the first three
    # probes are left hanging far longer; then Telegram answers again.
    server.fail("sendMessage", "slow", count=1, delay=6.5, chat_id=dm.id)
    server.fail("sendMessage", "slow", count=3, delay=60, chat_id=dm.id)
    caplog.set_level(logging.INFO)
    task = await make_task(console.store, console.clock, final="STATUS: failed\nSUMMARY: x")
    await server.wait_for(lambda: len(notices(console, dm)) >= 2, timeout=40)
    sent = notices(console, dm)
    assert [notified_ids(m) for m in sent] == [[task.id], [task.id]]
    assert marked(sent[1])
    # Asked while the earlier ones still hung: the repeat did not wait for each probe to
    # time out in turn (then all three had, before it went).
    gave_up = [r for r in caplog.records if "Telegram not answering yet" in r.getMessage()]
    assert len(gave_up) < 3


async def test_429s_and_unperformed_500s_repeat_nothing(console: Console) -> None:
    server = console.server
    dm = server.private_chat(console.admin)
    await subscribe(console)
    server.fail("sendMessage", "429", count=2, retry_after=1)
    server.fail("sendMessage", "500", count=3)
    tasks = [await make_task(console.store, console.clock, name=f"t{i}",
                             final="STATUS: failed\nSUMMARY: x") for i in range(3)]
    await wait_delivered(console, dm.id, timeout=40)
    sent = notices(console, dm)
    # A 500 may have been performed: the message that met it is sent again, marked, once
    # the probes are answered; nothing is lost and nothing arrives unmarked twice.
    assert sorted({i for m in sent for i in notified_ids(m)}) == [t.id for t in tasks]
    assert len(sent) == 3
    assert len(set(texts(sent))) == 3


async def test_a_restart_before_the_repeat_sends_the_marked_repeat_only(
        fakegram: FakeTelegram, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'console.db'}"
    async with running_console(fakegram, tmp_path) as console:
        dm = fakegram.private_chat(console.admin)
        await subscribe(console)
        fakegram.fail("sendMessage", "drop_after", count=1)
        fakegram.fail("sendMessage", "500", count=1000)  # the probes are not answered
        task = await make_task(console.store, console.clock, final="STATUS: failed\nSUMMARY: x")
        key = push_store.delivery_key(dm.id)

        async def recorded() -> bool:
            record = await console.store.console.get(key)
            return record is not None and bool(record.body.get("unconfirmed"))

        await fakegram.wait_for(recorded, timeout=20)
    fakegram.clear_faults()
    async with running_console(fakegram, tmp_path, db_url=url) as again:
        await wait_delivered(again, dm.id, timeout=20)
        sent = notices(again, dm)
        assert [notified_ids(m) for m in sent] == [[task.id], [task.id]]
        assert not marked(sent[0])
        assert marked(sent[1])


def test_the_mark_is_left_off_a_text_it_would_not_fit() -> None:
    long = "x" * 4090
    assert sent_again(long) == long
    assert sent_again("short").startswith("short\n\n")
