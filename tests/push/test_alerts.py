"""Quiet defaults, recurring tasks as one message, and alerts with a lifecycle: ack seen by
everyone, screens opened as replies, the lifecycle line, escalation once, mute."""

from __future__ import annotations

from pathlib import Path

from taskops import metrics
from taskops.storage.domain import EventKind, Task, TaskDraft, TaskStatus, Trigger
from tests.e2e.harness import Console, buttons, press, running_console
from tests.factories import make_task
from tests.fakegram import FakeTelegram
from tests.push.helpers import (
    bot_messages,
    notices,
    notified_ids,
    press_for_reply,
    push,
    subscribe,
    wait_delivered,
)


def sent_count() -> float:
    return metrics.REGISTRY.get_sample_value("taskops_notifications_total",
                                             {"outcome": "sent"}) or 0.0


async def cron_run(console: Console, source: int, final: str,
                   name: str = "Minutely disk check") -> Task:
    task = await console.store.create_task(TaskDraft(
        name=name, prompt="p", trigger=Trigger.CRONJOB, trigger_source_id=source))
    await console.store.start_task(task.id)
    console.clock.advance(2)
    return await console.store.finish_task(task.id, final)


async def test_defaults_are_quiet_and_silent_completions_are_never_pushed(
        console: Console) -> None:
    dm = console.server.private_chat(console.admin)
    settings = await subscribe(console)
    assert "Statuses: Failed, Paused\n" in settings.text
    assert "Stuck tasks: announced" in settings.text
    await make_task(console.store, console.clock, name="works", final="STATUS: completed\n"
                    "SUMMARY: fine")
    failed = await make_task(console.store, console.clock, name="breaks",
                             final="STATUS: failed\nSUMMARY: no disk")
    await wait_delivered(console, dm.id)
    assert [notified_ids(m) for m in notices(console, dm)] == [[failed.id]]
    # Completed is opt-in; even then a silent completion is nothing to report.
    await press(console, settings, "▫️ 🟢 Completed")
    await make_task(console.store, console.clock, name="quiet",
                    final="STATUS: silent\nSUMMARY: Disk fine.")
    done = await make_task(console.store, console.clock, name="loud",
                           final="STATUS: completed\nSUMMARY: done")
    await wait_delivered(console, dm.id)
    assert [notified_ids(m) for m in notices(console, dm)] == [[failed.id], [done.id]]
    assert not any("Disk fine" in (m.text or "") for m in bot_messages(console, dm))


async def test_a_recurring_task_updates_one_message(console: Console) -> None:
    dm = console.server.private_chat(console.admin)
    settings = await subscribe(console)
    await press(console, settings, "▫️ 🟢 Completed")
    runs = []
    for _ in range(3):
        runs.append(await cron_run(console, 7, "STATUS: completed\nSUMMARY: ok"))
        await wait_delivered(console, dm.id)
    sent = notices(console, dm)
    assert len(sent) == 1
    assert sent[0].text.startswith("🟢 Minutely disk check · completed ×3 since 13:00")
    assert f"#{runs[-1].id}" in sent[0].text
    # A different ending starts a new message; the same cronjob failing again joins it.
    failed = [await cron_run(console, 7, "STATUS: failed\nSUMMARY: disk full")
              for _ in range(2)]
    await wait_delivered(console, dm.id)
    sent = notices(console, dm)
    assert len(sent) == 2
    assert sent[1].text.startswith("🔴 Minutely disk check · failed ×2 since")
    assert f"#{failed[-1].id}" in sent[1].text


async def test_failures_of_one_name_join_one_message_whoever_started_them(
        fakegram: FakeTelegram, tmp_path: Path) -> None:
    # Each change as it comes (no digests), as reruns by hand come.
    sections = {"notifications": {"digest_threshold": 100}}
    async with running_console(fakegram, tmp_path, sections=sections) as console:
        await _failures_of_one_name(console)


async def _failures_of_one_name(console: Console) -> None:
    dm = console.server.private_chat(console.admin)
    await subscribe(console)
    runs = []
    for _ in range(3):
        runs.append(await make_task(console.store, console.clock, name="Deploy api",
                                    final="STATUS: failed\nSUMMARY: 502 from the registry"))
        await wait_delivered(console, dm.id)
    other = await make_task(console.store, console.clock, name="Rotate keys",
                            final="STATUS: failed\nSUMMARY: vault sealed")
    await wait_delivered(console, dm.id)
    sent = notices(console, dm)
    assert len(sent) == 2
    assert sent[0].text.startswith("🔴 Deploy api · failed ×3 since")
    assert f"#{runs[-1].id}" in sent[0].text  # its buttons act on the newest run
    assert notified_ids(sent[1]) == [other.id]
    # Once someone is on it, a further failure is news: a message of its own.
    await press(console, sent[0], "🙋 I'm on it")
    acked = await make_task(console.store, console.clock, name="deploy API",
                            final="STATUS: failed\nSUMMARY: 502 again")
    await wait_delivered(console, dm.id)
    sent = notices(console, dm)
    assert len(sent) == 3
    assert notified_ids(sent[2]) == [acked.id]
    # Hours later, even unacked, it is a new message (an edit far up the chat is lost).
    console.clock.advance(3 * 3600)
    again = await make_task(console.store, console.clock, name="deploy API",
                            final="STATUS: failed\nSUMMARY: 502 again")
    await wait_delivered(console, dm.id)
    sent = notices(console, dm)
    assert len(sent) == 4
    assert notified_ids(sent[3]) == [again.id]


async def test_failure_card_shows_the_failing_call_and_no_kill_hint(console: Console) -> None:
    dm = console.server.private_chat(console.admin)
    await subscribe(console)
    task = await console.store.create_task(TaskDraft(name="looper", prompt="p"))
    await console.store.start_task(task.id)
    await console.store.append_event(task.id, EventKind.TOOL_CALL, {
        "tool": "shell", "arguments": {"cmd": "df"}, "result": "permission <denied>",
        "is_error": True, "duration_ms": 1200})
    await console.store.fail_task(
        task.id, f"Loop detected (systematic): shell failed 3 times\n"
                 f"Hint: Use /kill_task {task.id} if the task needs to be cleaned up.")
    await wait_delivered(console, dm.id)
    [card] = notices(console, dm)
    assert card.text.startswith(f"🔴 Task failed — loop detected · #{task.id} looper")
    assert "🔧 shell 1.2s ❗ permission <denied>" in card.text
    assert "/kill_task" not in card.text
    assert buttons(card) == ["🙋 I'm on it", "🔎 Open", "🔁 Restart", "🔇 1 h", "🔇 8 h"]


async def test_ack_is_seen_by_everyone_and_screens_open_as_replies(console: Console) -> None:
    server = console.server
    group = server.add_group(-100800, "Ops", members=[console.admin, console.other_admin])
    await subscribe(console, chat=group)
    failed = await make_task(console.store, console.clock, name="deploy",
                             final="STATUS: failed\nSUMMARY: boom")
    await wait_delivered(console, group.id)
    [alert] = notices(console, group)
    answer = await press(console, alert, "🙋 I'm on it", user=console.other_admin)
    assert "on it" in answer.text
    assert "🙋 Olaf is on it" in alert.text
    assert "🙋 I'm on it" not in buttons(alert)
    # Open replies with the task's detail; the alert itself stays.
    before = alert.text
    detail = await press_for_reply(console, alert, "🔎 Open")
    assert detail.reply_to is not None
    assert detail.reply_to.message_id == alert.message_id
    assert detail.text.startswith("🔴 #1 deploy · Failed\n❌ boom")  # #id and error (issue 15)
    assert alert.text == before
    # Restart from the card: the form as a reply, Save — two taps to a new running task.
    form = await press_for_reply(console, alert, "🔁 Restart")
    assert form.reply_to is not None
    assert form.reply_to.message_id == alert.message_id
    await press(console, form, "Save & restart")
    [new_id] = await console.store.restarted_as(failed.id)
    new = await console.store.get_task(new_id)
    assert new.status is TaskStatus.RUNNING
    await server.wait_for(lambda: f"restarted by Ann as #{new.id}" in alert.text)
    await console.store.start_task(new.id)
    await console.store.finish_task(new.id, "STATUS: completed\nSUMMARY: fine now")
    await server.wait_for(
        lambda: f"🔁 restarted by Ann as #{new.id} → 🟢 completed" in alert.text, timeout=20)
    # Its completion was told by the alert: no message of its own, whatever the settings.
    assert [notified_ids(m) for m in notices(console, group)] == [[failed.id]]
    assert server.flood_violations == []


async def test_a_killed_task_is_told_on_its_alert(console: Console) -> None:
    dm = console.server.private_chat(console.admin)
    await subscribe(console)
    task = await make_task(console.store, console.clock, name="asks",
                           final="STATUS: question\nSUMMARY: which branch?")
    await wait_delivered(console, dm.id)
    [alert] = notices(console, dm)
    assert buttons(alert)[:3] == ["🙋 I'm on it", "🔎 Open", "💬 Answer"]
    await console.store.resume_task(task.id, "main", by="Ann")
    await console.store.kill_task(task.id, by="Olaf")
    await console.server.wait_for(
        lambda: "💬 answered by Ann → 🛑 killed by Olaf" in alert.text)
    await wait_delivered(console, dm.id)
    assert len(notices(console, dm)) == 1


async def test_an_unacked_group_alert_is_re_announced_once(fakegram: FakeTelegram,
                                                           tmp_path: Path) -> None:
    async with running_console(fakegram, tmp_path,
                               sections={"notifications": {"escalate_after_minutes": 10}}) \
            as console:
        group = fakegram.add_group(-100900, "Ops", members=[console.admin])
        dm = fakegram.private_chat(console.admin)
        await subscribe(console, chat=group)
        await subscribe(console)
        metrics.enable()
        try:
            sent_before = sent_count()
            failed = await make_task(console.store, console.clock, name="nightly",
                                     final="STATUS: failed\nSUMMARY: x")
            await wait_delivered(console, group.id, dm.id)
            escalation = push(console).escalation
            assert await escalation.check() == 0
            console.clock.advance(11 * 60)
            assert await escalation.check() == 1  # the group only, not the private chat
            assert await escalation.check() == 0  # once
            # Counted once each where every push message is sent: both alerts and the
            # re-announcement.
            assert sent_count() - sent_before == 3
        finally:
            metrics.enable(False)
        [alert] = notices(console, group)
        again = fakegram.last_bot_message(group)
        assert again.text.startswith("⏰ Still nobody on it after 11m 0s")
        assert f"#{failed.id} nightly" in again.text
        assert again.reply_to is not None
        assert again.reply_to.message_id == alert.message_id
        await press(console, again, "🙋 I'm on it", expect_edit=False)
        await fakegram.wait_for(lambda: "🙋 Ann is on it" in alert.text)
        assert fakegram.flood_violations == []


async def test_mute_a_task_name_from_its_alert(console: Console) -> None:
    dm = console.server.private_chat(console.admin)
    await subscribe(console)
    await make_task(console.store, console.clock, name="flaky",
                    final="STATUS: failed\nSUMMARY: x")
    await wait_delivered(console, dm.id)
    [alert] = notices(console, dm)
    answer = await press(console, alert, "🔇 1 h", expect_edit=False)
    assert "for 1 h" in answer.text
    await make_task(console.store, console.clock, name="flaky", final="STATUS: failed\nSUMMARY: y")
    other = await make_task(console.store, console.clock, name="other",
                            final="STATUS: failed\nSUMMARY: z")
    await wait_delivered(console, dm.id)
    assert [notified_ids(m) for m in notices(console, dm)][1:] == [[other.id]]
    console.clock.advance(3601)
    back = await make_task(console.store, console.clock, name="flaky",
                           final="STATUS: failed\nSUMMARY: again")
    await wait_delivered(console, dm.id)
    assert notified_ids(notices(console, dm)[-1]) == [back.id]
