"""A graceful restart of the console (`taskops run` stopped and started again): every alert
once per chat, a re-announcement once, and an ack pressed to the new process on an alert
the old one sent shown on it (issue 12)."""

from __future__ import annotations

from pathlib import Path

from taskops.bot.push.options import PushOptions
from taskops.bot.render import render
from taskops.storage.db import migrate
from tests.e2e.harness import Console, press, running_console
from tests.factories import FakeClock, make_task
from tests.fakegram import FakeMessage, FakeTelegram
from tests.push.helpers import (
    bot_messages,
    notices,
    notified_ids,
    push,
    subscribe,
    wait_delivered,
)

GROUP = -100_912
SECTIONS = {"notifications": {"escalate_after_minutes": 10}}
#: a stop here waits far longer for a delivery under way than the default (2 s): the test
#: must not depend on how quickly a loaded machine ends one
PATIENT = PushOptions(stop_grace_seconds=30.0)
MARK = render("sent_again").replace("<i>", "").replace("</i>", "")


def re_announcements(console: Console, chat: object) -> list[FakeMessage]:
    return [m for m in bot_messages(console, chat) if (m.text or "").startswith("⏰")]


async def test_a_stop_lets_the_alert_under_way_end_so_no_process_repeats_it(
        fakegram: FakeTelegram, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'console.db'}"
    await migrate(url)
    clock = FakeClock()
    async with running_console(fakegram, tmp_path, db_url=url, sections=SECTIONS,
                               clock=clock, push_options=PATIENT) as console:
        group = fakegram.add_group(GROUP, "Ops", members=[console.admin, console.other_admin])
        dm = fakegram.private_chat(console.admin)
        await subscribe(console, chat=group)
        await subscribe(console)
        # Telegram takes its time with the group's alert; the stop comes while it is sent.
        fakegram.fail("sendMessage", "slow", delay=0.5, chat_id=group.id)
        acked = await make_task(console.store, clock, name="nightly",
                                final="STATUS: failed\nSUMMARY: x")
        await fakegram.wait_for(lambda: fakegram.faults_pending() == 0,
                                message="the group's alert was not sent")
    # Performed by Telegram, whatever the old process did after it asked.
    await fakegram.wait_for(lambda: len(notices(console, group)) >= 1)
    async with running_console(fakegram, tmp_path, db_url=url, sections=SECTIONS,
                               clock=clock) as again:
        await wait_delivered(again, group.id, dm.id)
        for chat in (group, dm):
            assert [notified_ids(m) for m in notices(again, chat)] == [[acked.id]], chat
        # The alert the old process sent, acked to this one: everyone sees who is on it.
        [alert] = notices(again, group)
        await press(again, alert, "🙋 I'm on it", user=again.other_admin)
        assert "🙋 Olaf is on it" in (alert.text or "")
        unacked = await make_task(again.store, clock, name="backup",
                                  final="STATUS: failed\nSUMMARY: y")
        await wait_delivered(again, group.id, dm.id)
        # Nobody is on the second one: re-announced once, in the group only.
        clock.advance(11 * 60)
        assert await push(again).escalation.check() == 1
        assert await push(again).escalation.check() == 0
    async with running_console(fakegram, tmp_path, db_url=url, sections=SECTIONS,
                               clock=clock) as third:
        assert await push(third).escalation.check() == 0
        [re_announced] = re_announcements(third, group)
        assert f"#{unacked.id} backup" in (re_announced.text or "")
        assert re_announcements(third, dm) == []
        for chat in (group, dm):
            assert [notified_ids(m) for m in notices(third, chat)] == [[acked.id],
                                                                       [unacked.id]]


async def test_a_stop_that_cannot_wait_for_telegram_s_answer_has_the_next_process_mark_it(
        fakegram: FakeTelegram, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'console.db'}"
    await migrate(url)
    async with running_console(fakegram, tmp_path, db_url=url,
                               push_options=PushOptions(stop_grace_seconds=0.1)) as console:
        dm = fakegram.private_chat(console.admin)
        await subscribe(console)
        # Answered long after the stop gave up waiting: it may have arrived, or not.
        fakegram.fail("sendMessage", "slow", delay=3.0, chat_id=dm.id)
        task = await make_task(console.store, console.clock, final="STATUS: failed\nSUMMARY: x")
        await fakegram.wait_for(lambda: fakegram.faults_pending() == 0,
                                message="the alert was not sent")
    await fakegram.wait_for(lambda: len(notices(console, dm)) >= 1, timeout=10)
    async with running_console(fakegram, tmp_path, db_url=url) as again:
        await wait_delivered(again, dm.id)
        sent = notices(again, dm)
        assert [notified_ids(m) for m in sent] == [[task.id], [task.id]]
        assert [(m.text or "").endswith(MARK) for m in sent] == [False, True]
