"""Subscriptions and single status-change notifications, end to end."""

from __future__ import annotations

import logging

import pytest

from taskops.storage.domain import EventKind, ProviderChoice, TaskStatus, Trigger
from tests.e2e.harness import Console, buttons, command, press
from tests.factories import make_task
from tests.push.helpers import (
    bot_messages,
    notices,
    notified_ids,
    subscribe,
    wait_delivered,
)

HOSTILE = '<b>x</b> & "q" </blockquote>'


async def test_failure_pause_and_completion_notify_subscribed_chats_only(
        console: Console) -> None:
    server = console.server
    mine = server.private_chat(console.admin)
    theirs = server.private_chat(console.other_admin)
    settings = await subscribe(console)
    assert "Statuses: Failed, Paused\n" in settings.text  # completions are opt-in
    assert "✅ 🔴 Failed" in buttons(settings)
    await press(console, settings, "▫️ 🟢 Completed")
    assert "Statuses: Failed, Paused, Completed" in settings.text
    before_theirs = len(bot_messages(console, theirs))
    failed = await make_task(console.store, console.clock, name=f"fails {HOSTILE}",
                             provider=ProviderChoice("openai", "gpt-4o"), tokens=(1200, 300),
                             run_seconds=75, final=f"STATUS: failed\nSUMMARY: boom {HOSTILE}")
    paused = await make_task(console.store, console.clock, name="asks",
                             final="STATUS: question\nSUMMARY: Which **branch**?")
    done = await make_task(console.store, console.clock, name="works", trigger=Trigger.CRONJOB,
                           final="STATUS: completed\nSUMMARY:\n# Done\nall " + "x" * 2000)
    await wait_delivered(console, mine.id)
    sent = notices(console, mine)
    assert [notified_ids(m)[0] for m in sent] == [failed.id, paused.id, done.id]
    fail_text, pause_text, done_text = (m.text for m in sent)
    assert fail_text.startswith(f"🔴 Task failed · #{failed.id} fails {HOSTILE}")
    assert "User · openai – gpt-4o" in fail_text
    assert "⏱ 1m 15s · 1,500 tok (1,200 in · 300 out)" in fail_text
    assert f"boom {HOSTILE}" in fail_text
    assert pause_text.startswith(f"🟠 Task paused — it asks a question · #{paused.id} asks")
    assert "Which branch?" in pause_text
    assert done_text.startswith(f"🟢 Task completed · #{done.id} works")
    assert "Cronjob · " in done_text
    assert "(1,5" in done_text  # the summary is cut short, saying how much
    assert buttons(sent[0]) == ["🙋 I'm on it", "🔎 Open", "🔁 Restart", "🔇 1 h", "🔇 8 h"]
    assert buttons(sent[1]) == ["🙋 I'm on it", "🔎 Open", "💬 Answer"]
    assert len(bot_messages(console, theirs)) == before_theirs
    assert server.violations == []


async def test_running_means_started_or_resumed_with_kill_and_open(console: Console) -> None:
    chat = console.server.private_chat(console.admin)
    settings = await subscribe(console)
    await press(console, settings, "▫️ ⚪ Running")
    assert "Statuses: Failed, Paused, Running" in settings.text
    created = await make_task(console.store, console.clock, name="never started",
                              started=False)
    task = await make_task(console.store, console.clock, name="runs")
    await wait_delivered(console, chat.id)
    started = notices(console, chat)
    assert [notified_ids(m) for m in started] == [[task.id]]  # creation alone is not news
    assert started[0].text.startswith(f"⚪ Task started · #{task.id} runs")
    assert buttons(started[0]) == ["🔎 Open", "🛑 Kill"]
    await console.store.finish_task(task.id, "STATUS: question\nSUMMARY: ok?")
    await console.store.resume_task(task.id, "yes", by="Ann")
    await wait_delivered(console, chat.id)
    resumed = notices(console, chat)[-1]
    assert resumed.text.startswith(f"⚪ Task resumed · #{task.id} runs")
    assert "Answered by Ann" in resumed.text
    # Open shows the task in the notification's message; Kill goes through the confirmation.
    await press(console, resumed, "🔎 Open")
    assert "● Live" in resumed.text
    assert "◀ Back to tasks" in buttons(resumed)
    await press(console, resumed, "🛑 Kill")
    assert resumed.text.startswith("Kill running task?")
    answer = await press(console, resumed, "🛑 Kill")
    assert answer.text == "Task killed successfully."
    assert (await console.store.get_task(task.id)).status is TaskStatus.FAILED
    assert created.id not in [i for m in notices(console, chat) for i in notified_ids(m)]
    assert console.server.flood_violations == []


async def test_status_trigger_and_stuck_toggles_filter(console: Console) -> None:
    chat = console.server.private_chat(console.admin)
    settings = await subscribe(console)
    await press(console, settings, "✅ Cronjob")
    await press(console, settings, "✅ ⏳ Stuck tasks")
    assert "Statuses: Failed, Paused\n" in settings.text
    assert "Triggers: User, Agent, Heartbeat, Consolidation" in settings.text
    assert "Stuck tasks: not announced" in settings.text
    await make_task(console.store, console.clock, name="done", final="done")
    await make_task(console.store, console.clock, name="cron fails", trigger=Trigger.CRONJOB,
                    final="STATUS: failed\nSUMMARY: x")
    wanted = await make_task(console.store, console.clock, name="agent fails",
                             trigger=Trigger.AGENT, final="STATUS: failed\nSUMMARY: x")
    await wait_delivered(console, chat.id)
    assert [notified_ids(m) for m in notices(console, chat)] == [[wanted.id]]
    sub = await console.store.push.get(chat.id)
    assert sub is not None
    assert sub.settings["statuses"] == ["failed", "paused"]


async def test_mute_for_an_hour_until_unmuted_and_unmute(console: Console) -> None:
    chat = console.server.private_chat(console.admin)
    settings = await subscribe(console)
    answer = await press(console, settings, "🔕 1 h")
    assert answer.text == "Muted."
    assert "🔕 Muted until 20 Nov, 14:00" in settings.text  # 12:00 UTC is 13:00 in Berlin
    assert buttons(settings)[-2:] == ["🔔 Unmute", "🗑 Unsubscribe"]
    await make_task(console.store, console.clock, final="STATUS: failed\nSUMMARY: muted")
    await wait_delivered(console, chat.id)
    assert notices(console, chat) == []
    console.clock.advance(2 * 3600)  # the hour is over
    after = await make_task(console.store, console.clock, final="STATUS: failed\nSUMMARY: x")
    await wait_delivered(console, chat.id)
    assert [notified_ids(m) for m in notices(console, chat)] == [[after.id]]
    message = await command(console, "/notifications")
    await press(console, message, "🔕 Until unmuted")
    assert "Muted until unmuted." in message.text
    console.clock.advance(365 * 86400)
    await make_task(console.store, console.clock, final="STATUS: failed\nSUMMARY: still muted")
    await wait_delivered(console, chat.id)
    assert len(notices(console, chat)) == 1
    await press(console, message, "🔔 Unmute")
    assert "Muted" not in message.text
    last = await make_task(console.store, console.clock, final="STATUS: failed\nSUMMARY: x")
    await wait_delivered(console, chat.id)
    assert notified_ids(notices(console, chat)[-1]) == [last.id]


async def test_groups_subscribe_and_only_admins_change_settings(console: Console) -> None:
    server = console.server
    group = server.add_group(-100700, "Ops", members=[console.admin, console.other_admin,
                                                      console.stranger])
    settings = await subscribe(console, chat=group)
    assert "This chat is now subscribed" in settings.text
    again = await command(console, "/subscribe@taskops_bot", chat=group,
                          user=console.other_admin)
    assert "already subscribed" in again.text
    # A stranger's press is answered with nothing and changes nothing.
    data = next(d for row in settings.buttons for label, d in row if label == "🗑 Unsubscribe")
    query = await server.press(console.stranger, group, settings.message_id, data)
    await server.wait_for(lambda: any(a.query_id == query for a in server.callback_answers))
    assert await console.store.push.get(group.id) is not None
    # The stranger cannot subscribe a chat either.
    await server.send_text(console.stranger, group, "/unsubscribe@taskops_bot")
    failed = await make_task(console.store, console.clock, final="STATUS: failed\nSUMMARY: x")
    await wait_delivered(console, group.id)
    assert [notified_ids(m) for m in notices(console, group)] == [[failed.id]]
    await press(console, settings, "🗑 Unsubscribe", user=console.other_admin)
    assert "unsubscribed" in settings.text
    assert await console.store.push.get(group.id) is None
    reply = await command(console, "/notifications@taskops_bot", chat=group)
    assert reply.text == "This chat is not subscribed. /subscribe to get task notifications here."
    log = await console.store.console.audit_log()
    assert [entry.action for entry in log[:2]] == ["unsubscribe", "subscribe"]
    assert server.flood_violations == []


async def test_unsubscribe_command(console: Console) -> None:
    chat = console.server.private_chat(console.admin)
    await subscribe(console)
    reply = await command(console, "/unsubscribe")
    assert reply.text.startswith("🔕 This chat is unsubscribed")
    await make_task(console.store, console.clock, final="STATUS: failed\nSUMMARY: x")
    await make_task(console.store, console.clock, final="STATUS: failed\nSUMMARY: y")
    again = await command(console, "/unsubscribe")
    assert again.text.startswith("This chat is not subscribed")
    assert notices(console, chat) == []
    assert "/subscribe" in (await command(console, "/help")).text


@pytest.mark.parametrize("gone", ["blocked", "deleted"])
async def test_a_chat_that_blocked_the_bot_or_was_deleted_is_unsubscribed(
        console: Console, gone: str, caplog: pytest.LogCaptureFixture) -> None:
    server = console.server
    group = server.add_group(-100800, "Gone", members=[console.admin])
    chat = server.private_chat(console.admin) if gone == "blocked" else group
    await subscribe(console, chat=None if gone == "blocked" else group)
    if gone == "blocked":
        server.block(chat)
    else:
        server.delete_chat(chat)
    caplog.set_level(logging.WARNING, logger="taskops.bot.push")
    await make_task(console.store, console.clock, final="STATUS: failed\nSUMMARY: x")
    await server.wait_for(lambda: _unsubscribed(console, chat.id))
    assert f"chat {chat.id} unsubscribed" in caplog.text
    assert server.flood_violations == []


async def _unsubscribed(console: Console, chat_id: int) -> bool:
    return await console.store.push.get(chat_id) is None


async def test_other_events_are_not_notifications(console: Console) -> None:
    chat = console.server.private_chat(console.admin)
    await subscribe(console)
    task = await make_task(console.store, console.clock)
    for i in range(5):
        await console.store.append_event(task.id, EventKind.TEXT, {"text": f"step {i}"})
    await wait_delivered(console, chat.id)
    assert notices(console, chat) == []
