"""Task detail, kill and Edit & restart, end to end through the fake Telegram server."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from taskops.storage import rules
from taskops.storage.domain import EventKind, ProviderChoice, TaskStatus, Trigger
from tests.e2e.harness import (
    Console,
    buttons,
    command,
    press,
    row_number,
    running_console,
)
from tests.factories import make_task
from tests.fakegram import FakeTelegram

HOSTILE = '<script>alert("x")</script> & </blockquote> <b>bold?</b> \u202eRTL 🚀'


async def rich_task(console: Console, huge: int = 20_000) -> int:
    store, clock = console.store, console.clock
    task = await make_task(store, clock, name=f"Rich {HOSTILE}", prompt=f"Do it {HOSTILE}\n" * 50)
    big = "x" * huge
    events = [
        (EventKind.THINKING, {"text": f"secret thoughts {HOSTILE}"}),
        (EventKind.TOOL_CALL, {"tool": "shell", "arguments": {"cmd": f"ls {HOSTILE}", "big": big},
                               "result": big, "is_error": False, "duration_ms": 558}),
        (EventKind.TOOL_CALL, {"tool": "read_file", "arguments": {"path": "/nope"},
                               "result": "ENOENT", "is_error": True, "duration_ms": 1500}),
        (EventKind.TEXT, {"text": f"**Found** `{HOSTILE}` and [a link](https://example.org)\n\n"
                                  f"- one\n- two\n\n> quote {HOSTILE}\n\n" + big}),
        (EventKind.PROGRESS, {"text": "Still working"}),
    ]
    for i in range(12):
        kind, payload = events[i % len(events)]
        await store.append_event(task.id, kind, payload)
    await store.finish_task(task.id, f"STATUS: question\nSUMMARY:\n**Which** {HOSTILE}?")
    await store.resume_task(task.id, f"this one {HOSTILE}", by="Ann")
    await store.finish_task(task.id, f"STATUS: completed\nSUMMARY:\n# Done\n{HOSTILE}\n" + big)
    return task.id


def event_range(text: str) -> tuple[int, int, int] | None:
    match = re.search(r"Events (\d+)–(\d+) of (\d+)", text)
    return tuple(int(g) for g in match.groups()) if match else None  # type: ignore[return-value]


async def test_every_event_kind_renders_and_pages_cover_each_event_once(
        console: Console) -> None:
    task_id = await rich_task(console)
    task = await console.store.get_task(task_id)
    message = await command(console, f"/task {task_id}")
    assert message.text.startswith(f"🟢 #{task_id} Rich {HOSTILE}"[:20])
    assert "Do it <script>" in message.text  # the prompt, escaped and shown
    covered: list[int] = []
    while True:
        shown = event_range(message.text)
        assert shown is not None, message.text
        covered += list(range(shown[0], shown[1] + 1))
        assert shown[2] == task.event_count
        if "Later ▶" not in buttons(message):
            break
        await press(console, message, "Later ▶")
    assert covered == list(range(1, task.event_count + 1))
    texts = " ".join([message.text] + [e.text or "" for e in message.edits])
    for marker in ("🔧 shell 558ms", "❗ Error", "read_file 1.5s", "🧠 Thinking",
                   "(19,300 more characters)", "⏳ Still working", "💬 Answer from Ann",
                   "❓ Question", "✅ Completed", "📨 Result"):
        assert marker in texts, marker
    assert "secret thoughts" not in texts  # thinking collapsed by default
    assert console.server.violations == []


async def test_thinking_toggle_and_full_log(console: Console) -> None:
    task_id = await rich_task(console, huge=100)
    message = await command(console, f"/task {task_id}")
    await press(console, message, "🧠 Show thinking")
    assert "secret thoughts <script>" in message.text
    await press(console, message, "🧠 Hide thinking")
    assert "secret thoughts" not in message.text
    await press(console, message, "📄 Full log", expect_edit=False)
    await console.server.wait_for(lambda: console.server.last_bot_message(message.chat)
                                  .document is not None)
    name, data = console.server.last_bot_message(message.chat).document
    assert name == f"task-{task_id}.md"
    log = data.decode()
    task = await console.store.get_task(task_id)
    assert log.count("\n### ") == task.event_count
    assert "secret thoughts <script>" in log
    assert "STATUS: question" in log
    assert "Killed" not in log


async def test_back_restores_the_list_state(console: Console) -> None:
    for i in range(15):
        await make_task(console.store, console.clock, name=f"t{i}", final="done")
    message = await command(console, "/tasks sort:name")
    await press(console, message, "▶")
    list_text = message.text
    await press(console, message, row_number(message, 6))
    assert message.text.startswith("🟢 #6 t5 · Completed")
    assert "Back to tasks" in " ".join(buttons(message))
    await press(console, message, "◀ Back to tasks")
    assert message.text == list_text


async def test_kill_from_detail_and_command(console: Console) -> None:
    running = await make_task(console.store, console.clock, name="loopy")
    message = await command(console, f"/task {running.id}")
    assert "● Live" in message.text
    await press(console, message, "🛑 Kill")
    assert message.text.startswith("Kill running task?")
    answer = await press(console, message, "🛑 Kill")
    assert answer.text == "Task killed successfully."
    assert "● Live" not in message.text
    assert "🔴" in message.text
    assert "Killed by Ann from Telegram" in message.text
    other = await make_task(console.store, console.clock, name="other")
    confirm = await command(console, f"/kill_task {other.id}")
    assert confirm.text.startswith("Kill running task?\nThis will immediately abort the task.")
    await press(console, confirm, "🛑 Kill")
    assert (await console.store.get_task(other.id)).status is TaskStatus.FAILED
    done = await command(console, f"/kill_task {other.id}")
    assert done.text == ("⚠️ Cannot kill task with status 'failed'. Only running tasks can be "
                         "killed.")
    bad = await command(console, "/kill_task abc")
    assert bad.text == "⚠️ Usage: /kill_task 123"


async def test_kill_racing_completion_and_two_admins(console: Console) -> None:
    task = await make_task(console.store, console.clock)
    first = await command(console, f"/kill_task {task.id}")
    await console.store.finish_task(task.id, "done")  # completes before the press
    answer = await press(console, first, "🛑 Kill")
    assert answer.text == ("Cannot kill task with status 'completed'. Only running tasks can "
                           "be killed.")
    assert answer.show_alert
    assert (await console.store.get_task(task.id)).status is TaskStatus.COMPLETED
    # Two admins press Kill on their own confirmations at the same moment: one kill.
    task = await make_task(console.store, console.clock)
    mine = await command(console, f"/kill_task {task.id}")
    theirs = await command(console, f"/kill_task {task.id}", user=console.other_admin)
    server = console.server
    queries = await asyncio.gather(
        server.press_button(console.admin, mine.chat, mine.message_id, "🛑 Kill"),
        server.press_button(console.other_admin, theirs.chat, theirs.message_id, "🛑 Kill"))
    await server.wait_for(lambda: {a.query_id for a in server.callback_answers} >= set(queries))
    texts = sorted(a.text or "" for a in server.callback_answers if a.query_id in queries)
    assert texts == ["Cannot kill task with status 'failed'. Only running tasks can be killed.",
                     "Task killed successfully."]
    events = (await console.store.list_events(task.id, limit=100)).events
    assert [e.kind for e in events].count(EventKind.FINAL) == 1


async def test_restart_disabled_for_running_and_paused(console: Console) -> None:
    running = await make_task(console.store, console.clock)
    paused = await make_task(console.store, console.clock, final="STATUS: question\nSUMMARY: ?")
    for task, reason in ((running, "Kill the task before restarting it."),
                         (paused, "Paused tasks cannot be restarted — resume them instead.")):
        message = await command(console, f"/task {task.id}")
        answer = await press(console, message, "🔁 Edit & restart", expect_edit=False)
        assert (answer.text, answer.show_alert) == (reason, True)


async def reply(console: Console, message_chat: object, text: str) -> None:
    prompt = console.server.last_bot_message(message_chat)
    assert prompt is not None
    await console.server.reply_to(console.admin, message_chat, prompt.message_id, text)


async def test_restart_form_edits_validates_and_saves_once(console: Console) -> None:
    original = await make_task(console.store, console.clock, name="nightly sweep",
                               prompt="sweep it", trigger=Trigger.CRONJOB,
                               final="STATUS: failed\nSUMMARY: no")
    message = await command(console, f"/task {original.id}")
    await press(console, message, "🔁 Edit & restart")
    assert message.text.startswith("Edit & restart task")
    assert "Provider / Model: Use task default" in message.text
    assert ("🟠 The original task was triggered by cronjob. The restarted run is stored as a "
            "user-triggered task and will not be re-attached to its original schedule."
            ) in message.text
    chat = message.chat
    for field, bad, error, good in (
            ("✏️ Name", "x" * 201, "A name must be 1–200 characters.", "renamed <run>"),
            ("✏️ Prompt", " ", "The prompt must not be empty.", "new prompt & more"),
            ("✏️ Max duration", "0", "Max duration must be a whole number of minutes from 1 "
                                     "to 1440.", "90")):
        await press(console, message, field, expect_edit=False)
        edits = len(message.edits)
        await reply(console, chat, bad)
        await console.server.wait_for(lambda e=edits: len(message.edits) > e)
        assert f"⚠️ {error}" in message.text
        edits = len(message.edits)
        await reply(console, chat, good)
        await console.server.wait_for(lambda e=edits: len(message.edits) > e)
        assert "⚠️" not in message.text
    await press(console, message, "✏️ Provider / Model")
    await press(console, message, "openai – gpt-4o") if "openai – gpt-4o" in buttons(message) \
        else await press(console, message, "scripted – scripted")
    assert "Name: renamed <run>" in message.text
    assert "Max duration (minutes): 90" in message.text
    server = console.server
    save = next(data for row in message.buttons for label, data in row
                if label == "Save & restart")
    queries = await asyncio.gather(server.press(console.admin, chat, message.message_id, save),
                                   server.press(console.admin, chat, message.message_id, save))
    await server.wait_for(lambda: {a.query_id for a in server.callback_answers} >= set(queries))
    await server.wait_for(lambda: "● Live" in (message.text or "") or "#" in message.text)
    restarted = await console.store.restarted_as(original.id)
    assert len(restarted) == 1
    new = await console.store.get_task(restarted[0])
    assert (new.name, new.prompt, new.max_duration_minutes, new.trigger) == (
        "renamed <run>", "new prompt & more", 90, Trigger.USER)
    await server.wait_for(lambda: f"Restarted from #{original.id}" in message.text)
    assert (await console.store.get_task(original.id)).name == "nightly sweep"
    await press(console, message, f"↩ #{original.id}")
    assert f"Restarted as #{new.id}" in message.text


async def test_cancel_returns_to_the_original(console: Console) -> None:
    original = await make_task(console.store, console.clock, final="done",
                               provider=ProviderChoice("openai", "gpt-4o"))
    message = await command(console, f"/task {original.id}")
    detail = message.text
    await press(console, message, "🔁 Edit & restart")
    assert "Provider / Model: openai – gpt-4o" in message.text
    assert "🟠" not in message.text
    await press(console, message, "Cancel")
    assert message.text == detail
    assert await console.store.restarted_as(original.id) == []


async def test_the_draft_survives_a_restart(fakegram: FakeTelegram, tmp_path: Path) -> None:
    async with running_console(fakegram, tmp_path) as console:
        original = await make_task(console.store, console.clock, name="keep", final="done")
        message = await command(console, f"/task {original.id}")
        await press(console, message, "🔁 Edit & restart")
        await press(console, message, "✏️ Name", expect_edit=False)
        prompt = console.server.last_bot_message(message.chat)
    url = f"sqlite+aiosqlite:///{tmp_path / 'console.db'}"
    async with running_console(fakegram, tmp_path, db_url=url) as again:
        edits = len(message.edits)
        await again.server.reply_to(again.admin, message.chat, prompt.message_id, "kept draft")
        await again.server.wait_for(lambda: len(message.edits) > edits)
        assert "Name: kept draft" in message.text
        await press(again, message, "Save & restart")
        new = await again.store.get_task((await again.store.restarted_as(original.id))[0])
        assert new.name == "kept draft"


async def test_unknown_task_command(console: Console) -> None:
    message = await command(console, "/task 424242")
    assert message.text == "⚠️ Task #424242 not found."
    message = await command(console, "/task")
    assert message.text == "⚠️ Usage: /task 123"


async def test_the_timeline_shows_where_a_run_was_resumed(console: Console) -> None:
    store, clock = console.store, console.clock
    task = await make_task(store, clock, name="deploy")
    start = await store.append_event(task.id, EventKind.TOOL_START,
                                     {"tool": "deploy", "arguments": {"env": "prod"}})
    assert start is not None
    await store.append_event(task.id, EventKind.RESUMED, rules.resumed_payload(
        worker="w2", interrupted=["deploy"], repeated=[]))
    await store.append_event(task.id, EventKind.TOOL_CALL, {
        "tool": "deploy", "arguments": {"env": "prod"}, "result": rules.INTERRUPTED_RESULT,
        "is_error": True, "duration_ms": None, "call": start.seq, "interrupted": True})
    message = await command(console, f"/task {task.id}")
    lines = message.text.splitlines()
    resumed = [line for line in lines if line.startswith("↻ ")]
    assert len(resumed) == 1
    assert resumed[0].startswith("↻ Resumed after a restart — cut off, not run again: deploy · ")
    assert sum("deploy" in line and "❗ Error" in line for line in lines) == 1  # once
    assert "interrupted by a restart" in message.text


async def test_restart_shows_the_prompt_whole_and_copyable(console: Console) -> None:
    prompt = ("Compile the Q3 report: pull the cost export, compare it with Q2 per service "
              "& <list> the three biggest increases.\n!end failed nope")
    original = await make_task(console.store, console.clock, name="Q3 report", prompt=prompt,
                               final="STATUS: failed\nSUMMARY: cost export missing")
    message = await command(console, f"/task {original.id}")
    assert message.text.startswith(f"🔴 #{original.id} Q3 report · Failed\n❌ cost export "
                                   "missing")
    await press(console, message, "🔁 Edit & restart")
    assert prompt in message.text
    assert any(e["type"] == "pre" for e in message.entities)
    copy = [b for row in message.reply_markup["inline_keyboard"] for b in row
            if "copy_text" in b]
    assert copy == [{"text": "📋 Copy prompt", "copy_text": {"text": prompt}}]
    await press(console, message, "✏️ Prompt", expect_edit=False)
    ask = console.server.last_bot_message(message.chat)
    assert prompt in ask.text  # copy from the question itself, change a word, send
    edits = len(message.edits)
    await console.server.reply_to(console.admin, message.chat, ask.message_id,
                                  prompt.replace("Q2", "Q1"))
    await console.server.wait_for(lambda: len(message.edits) > edits)
    await press(console, message, "Save & restart")
    new = await console.store.get_task((await console.store.restarted_as(original.id))[0])
    assert new.prompt == prompt.replace("Q2", "Q1")


async def test_a_long_prompt_has_no_copy_button_but_shows_whole(console: Console) -> None:
    prompt = "word " * 400 + "end"
    original = await make_task(console.store, console.clock, prompt=prompt, final="done")
    message = await command(console, f"/task {original.id}")
    await press(console, message, "🔁 Edit & restart")
    assert prompt.strip() in message.text
    assert not any("copy_text" in b for row in message.reply_markup["inline_keyboard"]
                   for b in row)
