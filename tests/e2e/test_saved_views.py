"""Saved views: 📌 saves a list's filters and sort per chat; one tap under /tasks and in
/views; rename and delete; the built-in views."""

from __future__ import annotations

from datetime import timedelta

from taskops.storage.domain import ListFilters, Sort, SortField, TaskStatus, Trigger
from tests.e2e.harness import Console, buttons, command, press, task_ids
from tests.factories import make_task


async def reply_and_wait(console: Console, text: str, chat: object) -> object:
    prompt = console.server.last_bot_message(chat)
    before = len(console.server.messages(chat))
    await console.server.reply_to(console.admin, chat, prompt.message_id, text)
    await console.server.wait_for(lambda: len(console.server.messages(chat)) > before + 1)
    return console.server.last_bot_message(chat)


async def test_save_open_rename_delete_a_view(console: Console) -> None:
    store, clock = console.store, console.clock
    for i in range(4):
        await make_task(store, clock, name=f"sync {i}", trigger=Trigger.CRONJOB,
                        final="STATUS: failed\nSUMMARY: x", tokens=(10 * i, 1))
    await make_task(store, clock, name="other", final="done")
    message = await command(console, "/tasks status:failed trigger:cronjob sort:-tokens")
    await press(console, message, "📌", expect_edit=False)
    ask = console.server.last_bot_message(message.chat)
    assert ask.text.startswith("Name this view (Failed · Cronjob · sorted by Tokens ▼)")
    done = await reply_and_wait(console, "cron <fails>", message.chat)
    assert done.text == "📌 View “cron <fails>” saved: one tap under /tasks and in /views."
    assert "cron <fails>" in buttons(message)
    # One tap from a fresh /tasks.
    fresh = await command(console, "/tasks")
    assert buttons(fresh)[-4:] == ["📌", "cron <fails>", "🔴 Failed 1h", "⋯ Views"]
    await press(console, fresh, "cron <fails>")
    expected = await store.list_tasks(ListFilters(status=TaskStatus.FAILED,
                                                  trigger=Trigger.CRONJOB),
                                      Sort(SortField.TOKENS, True))
    assert task_ids(fresh) == [t.id for t in expected.tasks]
    # A second view of the same name is refused with one line.
    await press(console, fresh, "📌", expect_edit=False)
    taken = await reply_and_wait(console, "cron <fails>", fresh.chat)
    assert taken.text == "⚠️ This chat already has a view named “cron <fails>”: pick another name."
    # /views: rename, then delete.
    views = await command(console, "/views")
    assert "📌 cron <fails> — Failed · Cronjob · sorted by Tokens ▼" in views.text
    assert "Failed · last hour — Failed · last 1h · sorted by Created ▼" in views.text
    await press(console, views, "✏️", expect_edit=False)
    await reply_and_wait(console, "cron", views.chat)
    await console.server.wait_for(lambda: "📌 cron — " in views.text)
    await press(console, views, "🗑")
    assert "No saved views yet" in views.text
    assert await store.console.saved_views(views.chat.id) == []
    # Another chat has its own views.
    other = await command(console, "/views", user=console.other_admin)
    assert "No saved views yet" in other.text
    assert console.server.violations == []


async def test_built_in_views(console: Console) -> None:
    store, clock = console.store, console.clock
    old = await make_task(store, clock, name="old run")
    clock.advance(600)
    await make_task(store, clock, name="new run")
    await make_task(store, clock, name="asks", final="STATUS: question\nSUMMARY: ?")
    clock.set(clock() - timedelta(days=3))
    await make_task(store, clock, name="failed long ago", final="STATUS: failed\nSUMMARY: x")
    clock.set(clock() + timedelta(days=3) - timedelta(minutes=61))
    # An hour and a minute ago: the same day, outside the last hour.
    await make_task(store, clock, name="failed before", final="STATUS: failed\nSUMMARY: x")
    clock.advance(61 * 60)
    recent = await make_task(store, clock, name="failed now", final="STATUS: failed\nSUMMARY: x")
    message = await command(console, "/views")
    await press(console, message, "Running longest")
    assert message.text.startswith("Tasks · Running · sorted by Duration ▼")
    assert task_ids(message)[0] == old.id
    assert buttons(message)[-4:] == ["📌", "🔴 Failed 1h", "🟠 Waiting", "⚪ Longest"]
    await press(console, message, "🟠 Waiting")
    assert message.text.startswith("Tasks · Paused")
    await press(console, message, "🔴 Failed 1h")
    assert task_ids(message) == [recent.id]
