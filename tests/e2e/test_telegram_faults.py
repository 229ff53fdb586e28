"""The console when Telegram itself does not take an answer (issue 16): every reply, edit
and press answer is retried while it is still useful to the admin — 429s after their
retry_after, 5xx with backoff — a reply that may not have arrived is sent once more,
marked, never a third time; what can no longer be useful is one line in the log."""

from __future__ import annotations

import logging

import pytest

from taskops.bot.render import render
from tests.e2e.harness import Console
from tests.factories import make_task
from tests.fakegram import FakeMessage

#: the last line of a repeated message, as the chat shows it
AGAIN = render("sent_again").replace("<i>", "").replace("</i>", "")


async def test_an_answer_telegram_holds_past_its_usefulness_is_one_warning(
        console: Console, caplog: pytest.LogCaptureFixture) -> None:
    await make_task(console.store, console.clock, name="job")
    console.server.fail("sendMessage", "429", count=1, retry_after=600)
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


#: how long a test waits for an answer that meets a run of faults
PATIENCE = 25.0


def bot_texts(console: Console) -> list[str]:
    chat = console.server.private_chat(console.admin)
    return [m.text or "" for m in console.server.messages(chat) if m.from_bot]


async def command(console: Console, text: str) -> FakeMessage:
    """Send a command; the bot's first message in the chat after it."""
    server = console.server
    chat = server.private_chat(console.admin)
    before = len(bot_texts(console))
    await server.send_text(console.admin, chat, text)
    await server.wait_for(lambda: len(bot_texts(console)) > before, timeout=PATIENCE)
    return [m for m in server.messages(chat) if m.from_bot][before]


async def press(console: Console, message: FakeMessage, button: str) -> None:
    """Press a button; wait until the press is answered and the message edited."""
    server = console.server
    edits = len(message.edits)
    query_id = await server.press_button(console.admin, message.chat, message.message_id,
                                         button)
    await server.wait_for(lambda: any(a.query_id == query_id for a in server.callback_answers)
                          and len(message.edits) > edits, timeout=PATIENCE)


async def test_a_reply_waits_out_a_run_of_429s(console: Console) -> None:
    await make_task(console.store, console.clock, name="job")
    server = console.server
    server.fail("sendMessage", "429", count=5, retry_after=1)
    reply = await command(console, "/tasks")
    assert "job" in (reply.text or "")
    assert bot_texts(console) == [reply.text]  # once, and not marked: a 429 sent nothing
    refused = [c for c in server.calls_of("sendMessage") if c.status == 429]
    assert len(refused) == 5
    for before, after in zip(refused, [*refused[1:], server.calls_of("sendMessage")[-1]],
                             strict=True):
        assert after.at - before.at >= 1.0, "sent again before its retry_after"


async def test_a_reply_through_a_run_of_500s_arrives_once_marked(console: Console) -> None:
    await make_task(console.store, console.clock, name="job")
    server = console.server
    server.fail("sendMessage", "500", count=5, chat_id=server.private_chat(console.admin).id)
    reply = await command(console, "/tasks")
    assert "job" in (reply.text or "")
    assert reply.text.endswith(AGAIN)
    assert bot_texts(console) == [reply.text]


async def test_a_press_through_runs_of_500s_and_429s_is_answered_and_edited(
        console: Console) -> None:
    await make_task(console.store, console.clock, name="job")
    server = console.server
    listed = await command(console, "/tasks")
    await make_task(console.store, console.clock, name="newer")
    server.fail("answerCallbackQuery", "500", count=4)
    server.fail("editMessageText", "500", count=4)
    server.fail("editMessageText", "429", count=4, retry_after=1)
    await press(console, listed, "🔄 Refresh")
    assert "newer" in (listed.text or "")
    answers = server.calls_of("answerCallbackQuery")
    assert [c.status for c in answers] == [500] * 4 + [200]
    assert answers[-1].at - answers[0].at < 14  # within Telegram's deadline for an answer
