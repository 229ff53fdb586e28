"""Button presses and answerCallbackQuery: once, in time, with Telegram's error otherwise."""

from __future__ import annotations

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.error import BadRequest

from tests.fakegram_tests.helpers import World, bot_fixture, flood_fixture, w_fixture  # noqa: F401

TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"


async def send_menu(bot: Bot, chat_id: int) -> int:
    markup = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("▶ Next", callback_data="p:2"),
                InlineKeyboardButton("🔄 Refresh", callback_data="r"),
            ],
            [InlineKeyboardButton("Docs", url="https://example.com/docs")],
        ]
    )
    msg = await bot.send_message(chat_id, "menu", reply_markup=markup)
    return msg.message_id


async def test_press_button_delivers_a_callback_query(bot: Bot, w: World) -> None:
    mid = await send_menu(bot, w.dm.id)
    qid = await w.server.press_button(w.ann, w.dm, mid, "▶")  # prefix match
    updates = await bot.get_updates(timeout=0)
    assert len(updates) == 1
    query = updates[0].callback_query
    assert query is not None
    assert query.id == qid
    assert query.data == "p:2"
    assert query.from_user.id == w.ann.id
    assert query.message is not None
    assert query.message.message_id == mid
    assert isinstance(query.message, Message)
    assert query.message.reply_markup is not None
    assert query.chat_instance
    assert await query.answer("Loading…", show_alert=True) is True
    assert w.server.callback_answers[0].query_id == qid
    assert w.server.callback_answers[0].text == "Loading…"
    assert w.server.callback_answers[0].show_alert is True


async def test_press_button_lookup_errors(bot: Bot, w: World) -> None:
    mid = await send_menu(bot, w.dm.id)
    with pytest.raises(LookupError, match="no button"):
        await w.server.press_button(w.ann, w.dm, mid, "Nope")
    with pytest.raises(LookupError, match="not a callback button"):
        await w.server.press_button(w.ann, w.dm, mid, "Docs")
    with pytest.raises(LookupError):
        await w.server.press(w.ann, w.dm, 999, "x")
    with pytest.raises(ValueError, match="not a member"):
        await w.server.press(w.server.add_user(7, "Eve"), w.group, mid, "x")
    # any data can be pressed, to model stale or forged buttons
    qid = await w.server.press(w.ann, w.dm, mid, "forged:data")
    assert w.server.pending_updates[-1]["callback_query"]["id"] == qid


async def test_answer_twice_unknown_or_too_late(bot: Bot, w: World) -> None:
    mid = await send_menu(bot, w.dm.id)
    first = await w.server.press(w.ann, w.dm, mid, "r")
    assert await bot.answer_callback_query(first)
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(first)
    assert w.server.violations[-1].description == TOO_OLD
    with pytest.raises(BadRequest):
        await bot.answer_callback_query("123456789")
    assert w.server.violations[-1].description == TOO_OLD

    in_time = await w.server.press(w.ann, w.dm, mid, "r")
    w.clock.advance(15.0)
    assert await bot.answer_callback_query(in_time)  # exactly at the timeout is still fine
    late = await w.server.press(w.ann, w.dm, mid, "r")
    w.clock.advance(15.01)
    with pytest.raises(BadRequest):
        await bot.answer_callback_query(late)
    assert w.server.violations[-1].description == TOO_OLD
    assert [a.query_id for a in w.server.callback_answers] == [first, in_time]


async def test_answer_text_limit(bot: Bot, w: World) -> None:
    mid = await send_menu(bot, w.dm.id)
    ok = await w.server.press(w.ann, w.dm, mid, "r")
    assert await bot.answer_callback_query(ok, "x" * 200)
    too_long = await w.server.press(w.ann, w.dm, mid, "r")
    with pytest.raises(BadRequest):
        await bot.answer_callback_query(too_long, "x" * 201)
    assert w.server.violations[-1].description == "Bad Request: MESSAGE_TOO_LONG"
    assert await bot.answer_callback_query(too_long)  # the failed answer did not use it up


async def test_press_shows_the_current_version_of_the_message(bot: Bot, w: World) -> None:
    mid = await send_menu(bot, w.dm.id)
    await bot.edit_message_text("menu v2", w.dm.id, mid)
    await w.server.press(w.ann, w.dm, mid, "r")
    update = w.server.pending_updates[-1]["callback_query"]
    assert update["message"]["text"] == "menu v2"
    assert "reply_markup" not in update["message"]  # the edit removed the keyboard
    assert update["message"]["edit_date"] == int(w.clock.now)
