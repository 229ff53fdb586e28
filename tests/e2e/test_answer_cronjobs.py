"""/answer, the 💬 Answer button, and /cronjobs."""

from __future__ import annotations

from pathlib import Path

from taskops.storage.domain import EventKind, TaskDraft, TaskStatus, Trigger
from tests.e2e.harness import command, press, running_console
from tests.factories import make_task
from tests.fakegram import FakeTelegram


async def test_answer_by_command_and_button(fakegram: FakeTelegram, tmp_path: Path) -> None:
    async with running_console(fakegram, tmp_path) as console:
        task = await make_task(console.store, console.clock, name="asks <things>",
                               final="STATUS: question\nSUMMARY:\nWhich **branch**?")
        reply = await command(console, f"/answer {task.id} use main & dev")
        assert reply.text == f"💬 Answer sent to #{task.id} asks <things>: the task runs again."
        resumed = await console.store.get_task(task.id)
        assert resumed.status is TaskStatus.RUNNING
        events = (await console.store.list_events(task.id, limit=50)).events
        assert events[-1].kind is EventKind.ANSWER
        assert events[-1].payload["text"] == "use main & dev"
        again = await command(console, f"/answer {task.id} twice")
        assert again.text.startswith("⚠️ Task #")
        usage = await command(console, "/answer 12")
        assert usage.text == "⚠️ Usage: /answer 123 your answer"
        # Paused again: the detail offers 💬 Answer, which asks by reply.
        await console.store.finish_task(task.id, "STATUS: question\nSUMMARY:\nAnd the tag?")
        detail = await command(console, f"/task {task.id}")
        await press(console, detail, "💬 Answer", expect_edit=False)
        prompt = console.server.last_bot_message(detail.chat)
        assert "And the tag?" in prompt.text
        edits = len(detail.edits)
        await console.server.reply_to(console.admin, detail.chat, prompt.message_id, "v1.2")
        await console.server.wait_for(lambda: len(detail.edits) > edits)
        assert "● Live" in detail.text
        assert (await console.store.get_task(task.id)).status is TaskStatus.RUNNING
        assert console.server.violations == []


async def test_an_answer_after_the_deadline_says_the_task_failed(fakegram: FakeTelegram,
                                                                 tmp_path: Path) -> None:
    async with running_console(fakegram, tmp_path) as console:
        task = await make_task(console.store, console.clock, name="slow <one>",
                               final="STATUS: question\nSUMMARY:\nGo on?")
        console.clock.advance(task.max_duration_minutes * 60 + 1)  # paused time counts
        reply = await command(console, f"/answer {task.id} yes")
        assert reply.text == (f"⛔ #{task.id} slow <one>: the answer came after its max "
                              "duration ran out, so the task failed (Max duration exceeded).")
        assert (await console.store.get_task(task.id)).status is TaskStatus.FAILED


async def test_cronjobs_lists_next_and_last_run(fakegram: FakeTelegram, tmp_path: Path) -> None:
    sections = {"cronjobs": [
        {"name": "nightly <sweep>", "schedule": "0 3 * * *", "prompt": "sweep",
         "timezone": "Europe/Berlin"},
        {"name": "weekly", "schedule": "0 9 * * 0", "prompt": "report", "enabled": False},
    ]}
    async with running_console(fakegram, tmp_path, sections=sections) as console:
        empty = await command(console, "/cronjobs")
        assert "nightly <sweep>" in empty.text
        assert "Never run yet" in empty.text
        assert "Next run: 21 Nov, 03:00" in empty.text
        assert "Disabled" in empty.text
        ids = await console.store.cronjobs.sync()
        task = await console.store.cronjobs.fire(TaskDraft(
            name="nightly <sweep>", prompt="sweep", trigger=Trigger.CRONJOB,
            trigger_source_id=ids["nightly <sweep>"]), console.clock(),
            cronjob_id=ids["nightly <sweep>"])
        assert task is not None
        listing = await command(console, "/cronjobs")
        assert f"#{task.id} ⚪ Running" in listing.text
