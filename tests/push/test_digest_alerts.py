"""A digest is the alert of each failure, loop and question it carries: 🙋 acks them all
for everyone in the chat, their lifecycles show under their lines, and in a group the
unacked ones are re-announced once, together."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.harness import Console, buttons, command, press, running_console
from tests.fakegram import FakeMessage, FakeTelegram
from tests.push.helpers import (
    bot_messages,
    is_digest,
    notices,
    press_for_reply,
    push,
    running_tasks,
    subscribe,
    wait_delivered,
)


async def test_a_digest_is_an_alert_for_each_task_that_needs_a_person(
        fakegram: FakeTelegram, tmp_path: Path) -> None:
    sections = {"notifications": {"escalate_after_minutes": 10}}
    async with running_console(fakegram, tmp_path, sections=sections) as console:
        await _digest_alerts(console)


async def _digest_alerts(console: Console) -> None:
    server = console.server
    group = server.add_group(-100700, "Ops", members=[console.admin, console.other_admin])
    await subscribe(console, chat=group)
    ids = await running_tasks(console.store, 8)
    failed, paused = ids[:6], ids[6:]
    for task_id in failed:
        await console.store.fail_task(task_id, "upstream <down>")
    for task_id in paused:
        await console.store.finish_task(task_id, "STATUS: question\nSUMMARY: which one?")
    await wait_delivered(console, group.id)
    [digest] = [m for m in notices(console, group) if is_digest(m)]
    carried = await console.store.push.alerts_of_view(
        (await console.store.console.find(group.id, digest.message_id, "digest")).key)
    in_digest = sorted(a.task_id for a in carried)
    assert len(in_digest) >= 5  # the first changes of a burst may go alone
    assert buttons(digest)[0] == "🙋 I'm on it"
    assert all(a.group_key is None and a.message_id == digest.message_id for a in carried)

    # In a group the digest stays for everyone: Open (and the list) reply to it.
    before = digest.text
    label = next(b for b in buttons(digest) if b.startswith("🔴 #"))
    detail = await press_for_reply(console, digest, label, user=console.other_admin)
    assert detail.reply_to is not None
    assert detail.reply_to.message_id == digest.message_id
    assert detail.text.startswith(f"{label} burst ")
    listed = await press_for_reply(console, digest, "📋 Show in the list")
    assert listed.text.startswith("Tasks ·")
    assert digest.text == before

    # Lifecycles under the tasks' lines: answered, then completed (no message of its own).
    question = next(i for i in paused if i in in_digest)
    await console.store.resume_task(question, "the first", by="Ann")
    # (a group's pushes are paced to its 20 messages a minute: allow for the wait)
    await server.wait_for(lambda: "↳ 💬 answered by Ann" in digest.text, timeout=20)
    await console.store.finish_task(question, "STATUS: completed\nSUMMARY: done")
    await server.wait_for(lambda: "↳ 💬 answered by Ann → 🟢 completed" in digest.text,
                          timeout=20)
    # A restart from the task's screen is told too (as on a single alert).
    restarted = next(i for i in failed if i in in_digest)
    detail = await command(console, f"/task@taskops_bot {restarted}", chat=group)
    await press(console, detail, "🔁 Edit & restart")
    await press(console, detail, "Save & restart")
    [new_id] = await console.store.restarted_as(restarted)
    await server.wait_for(lambda: f"↳ 🔁 restarted by Ann as #{new_id}" in digest.text,
                          timeout=20)
    # Nobody on it: re-announced once, one message for the whole digest, replying to it.
    escalation = push(console).escalation
    console.clock.advance(11 * 60)

    def re_announced() -> list[FakeMessage]:
        return [m for m in bot_messages(console, group)
                if (m.text or "").startswith("⏰") and m.reply_to is not None
                and m.reply_to.message_id == digest.message_id]

    # (the periodic check may be the one that sends it, paced by the group's budget)
    await escalation.check()
    await server.wait_for(re_announced, timeout=30)
    assert await escalation.check() == 0
    [again] = re_announced()
    # (the answered and the restarted ones are resolved: nobody needs to be on them)
    waiting = [i for i in in_digest if i not in (question, restarted)]
    assert f"{len(waiting)} alerts of the digest above" in again.text
    assert all(f"#{i} burst" in again.text for i in waiting)
    assert f"#{question} " not in again.text

    # 🙋 on the re-announcement: every alert of the digest is Olaf's, seen on the digest.
    answer = await press(console, again, "🙋 I'm on it", user=console.other_admin,
                         expect_edit=False)
    assert "on it" in answer.text
    await server.wait_for(lambda: "🙋 Olaf is on it" in digest.text, timeout=20)
    assert "🙋 I'm on it" not in buttons(digest)
    assert {a.task_id for a in await console.store.push.alerts_of_view(carried[0].view_key)
            if a.acked_by == "Olaf"} == set(waiting)
    answer = await press(console, again, "🙋 I'm on it", expect_edit=False)
    assert answer.text == "Olaf is already on it."

    await wait_delivered(console, group.id)
    assert [m for m in notices(console, group) if is_digest(m)] == [digest]
    assert len(digest.text) <= 4096
    assert server.flood_violations == []


async def test_a_digest_in_a_private_chat_has_ack_and_no_re_announcement(
        fakegram: FakeTelegram, tmp_path: Path) -> None:
    sections = {"notifications": {"escalate_after_minutes": 10}}
    async with running_console(fakegram, tmp_path, sections=sections) as console:
        dm = fakegram.private_chat(console.admin)
        await subscribe(console)
        ids = await running_tasks(console.store, 6)
        for task_id in ids:
            await console.store.fail_task(task_id, "boom")
        await wait_delivered(console, dm.id)
        [digest] = [m for m in notices(console, dm) if is_digest(m)]
        console.clock.advance(11 * 60)
        assert await push(console).escalation.check() == 0
        await press(console, digest, "🙋 I'm on it")
        assert "🙋 Ann is on it" in digest.text
        assert "🙋 I'm on it" not in buttons(digest)


async def test_a_digest_of_hundreds_of_alerts_stays_within_telegrams_limits(
        console: Console) -> None:
    group = console.server.add_group(-100701, "Ops", members=[console.admin])
    await subscribe(console, chat=group)
    ids = await running_tasks(console.store, 300)
    for task_id in ids:
        await console.store.fail_task(task_id, "x" * 300)
    await wait_delivered(console, group.id, timeout=60)
    digests = [m for m in notices(console, group) if is_digest(m)]
    assert digests
    for digest in digests:
        assert buttons(digest)[0] == "🙋 I'm on it"
        await press(console, digest, "🙋 I'm on it")
        assert "🙋 Ann is on it" in digest.text
        assert len(digest.text) <= 4096
    # Every carried alert was acked by the presses, and each task has one alert.
    carried = [a for i in ids for a in await console.store.push.alerts_following([i])]
    assert len({a.task_id for a in carried}) == len(carried)
    assert all(a.acked_by == "Ann" for a in carried if a.group_key is None)
    assert console.server.flood_violations == []
