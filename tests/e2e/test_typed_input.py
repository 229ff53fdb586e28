"""Bad typed input never goes unanswered: each command or reply gets exactly one clear line
and nothing is logged at ERROR (issue 15 found a traceback and silence for each)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.e2e.harness import Console, command, press, running_console
from tests.factories import make_task
from tests.fakegram import FakeTelegram

CASES = [
    ("/tasks page:²", "⚠️ '²' is not a page number: use 1 to 999,999,999."),
    ("/tasks page:" + "9" * 5000, "⚠️ '" + "9" * 39 + "…' is not a page number: use 1 to "
                                  "999,999,999."),
    ("/task ²", "⚠️ Usage: /task 123"),
    ("/kill_task ²", "⚠️ Usage: /kill_task 123"),
    ("/answer ² x", "⚠️ Usage: /answer 123 your answer"),
    ("/tasks to:9999-12-31", "⚠️ 9999-12-31 is out of range: use a day from 0001-01-02 to "
                             "9999-12-30."),
    ("/tasks from:0001-01-01", "⚠️ 0001-01-01 is out of range: use a day from 0001-01-02 to "
                               "9999-12-30."),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
async def test_bad_command_input_gets_one_clear_line(console: Console, text: str, expected: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    chat = console.server.private_chat(console.admin)
    reply = await command(console, text)
    assert reply.text == expected
    assert "\n" not in reply.text
    assert len([m for m in console.server.messages(chat) if m.from_bot]) == 1
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_edge_days_that_are_accepted_list_in_a_far_time_zone(
        fakegram: FakeTelegram, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with running_console(fakegram, tmp_path,
                               sections={"ui": {"timezone": "Pacific/Kiritimati"}}) as console:
        await make_task(console.store, console.clock, final="done")
        for text in ("/tasks from:0001-01-02", "/tasks to:9999-12-30"):
            reply = await command(console, text)
            assert "1 task" in reply.text or "#1" in reply.text
        for text in ("/tasks to:9999-12-31", "/tasks from:0001-01-01"):
            reply = await command(console, text)
            assert reply.text.startswith("⚠️ ")
            assert "out of range" in reply.text
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_max_duration_of_a_superscript_digit_is_refused_clearly(console: Console) -> None:
    task = await make_task(console.store, console.clock, final="STATUS: failed\nSUMMARY: no")
    message = await command(console, f"/task {task.id}")
    await press(console, message, "🔁 Edit & restart")
    await press(console, message, "✏️ Max duration", expect_edit=False)
    prompt = console.server.last_bot_message(message.chat)
    edits = len(message.edits)
    await console.server.reply_to(console.admin, message.chat, prompt.message_id, "²")
    await console.server.wait_for(lambda: len(message.edits) > edits)
    assert "⚠️ Max duration must be a whole number of minutes from 1 to 1440." in message.text
    assert "invalid literal" not in message.text
