"""The console when Telegram itself does not take an answer: one line in the log, and a
reply that may not have arrived is sent once more, marked (issue 16)."""

from __future__ import annotations

import logging

import pytest

from taskops.bot.render import render
from tests.e2e.harness import Console
from tests.factories import make_task

#: the last line of a repeated message, as the chat shows it
AGAIN = render("sent_again").replace("<i>", "").replace("</i>", "")


async def test_an_answer_telegram_keeps_refusing_is_one_warning(
        console: Console, caplog: pytest.LogCaptureFixture) -> None:
    await make_task(console.store, console.clock, name="job")
    console.server.fail("sendMessage", "429", count=20, retry_after=1)
    caplog.set_level(logging.INFO)
    await console.server.send_text(console.admin, console.server.private_chat(console.admin),
                                   "/tasks")
    await console.server.wait_for(lambda: any(
        "Telegram did not take the answer" in r.getMessage() for r in caplog.records),
        timeout=30)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_reply_that_met_a_500_is_sent_once_more_marked(console: Console) -> None:
    await make_task(console.store, console.clock, name="job")
    server = console.server
    chat = server.private_chat(console.admin)
    server.fail("sendMessage", "500", count=1, chat_id=chat.id)
    await server.send_text(console.admin, chat, "/tasks")
    await server.wait_for(lambda: any(m.from_bot for m in server.messages(chat)), timeout=10)
    replies = [m for m in server.messages(chat) if m.from_bot]
    assert len(replies) == 1
    assert "job" in (replies[0].text or "")
    assert (replies[0].text or "").endswith(AGAIN)


async def test_a_reply_performed_without_an_answer_is_repeated_at_most_once(
        console: Console, caplog: pytest.LogCaptureFixture) -> None:
    await make_task(console.store, console.clock, name="job")
    server = console.server
    chat = server.private_chat(console.admin)
    server.fail("sendMessage", "drop_after", count=5, chat_id=chat.id)
    caplog.set_level(logging.INFO)
    await server.send_text(console.admin, chat, "/tasks")
    await server.wait_for(lambda: any(
        "Telegram did not take the answer" in r.getMessage() for r in caplog.records),
        timeout=20)
    replies = [m.text or "" for m in server.messages(chat) if m.from_bot]
    assert len(replies) == 2
    assert not replies[0].endswith(AGAIN)
    assert replies[1].endswith(AGAIN)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
