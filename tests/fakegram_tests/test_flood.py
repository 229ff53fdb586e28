"""Flood limits: 429 + retry_after, nothing performed, each limit separately switchable."""

from __future__ import annotations

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import RetryAfter

from tests.fakegram import FloodLimits, ManualClock
from tests.fakegram.flood import FloodControl
from tests.fakegram_tests.helpers import (  # noqa: F401
    World,
    bot_fixture,
    flood_fixture,
    seconds,
    w_fixture,
)


@pytest.fixture(name="flood")
def flood_limits() -> FloodLimits:
    return FloodLimits()  # the defaults: 5 burst + 1/s per chat, 20/min per group, 30/s overall


async def test_per_chat_bucket(bot: Bot, w: World) -> None:
    for i in range(5):
        await bot.send_message(w.dm.id, f"burst {i}")
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(w.dm.id, "one too many")
    assert seconds(info.value.retry_after) == 1
    v = w.server.violations[-1]
    assert (v.method, v.error_code, v.description) == (
        "sendMessage",
        429,
        "Too Many Requests: retry after 1",
    )
    assert w.server.calls[-1].response == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    assert len(w.server.messages(w.dm)) == 5  # the refused message was not sent
    assert w.server.flood_violations == [v]
    w.clock.advance(1.0)
    await bot.send_message(w.dm.id, "refilled")
    with pytest.raises(RetryAfter):
        await bot.send_message(w.dm.id, "empty again")
    w.clock.advance(10.0)  # refills up to the burst only
    for i in range(5):
        await bot.send_message(w.dm.id, f"again {i}")
    with pytest.raises(RetryAfter):
        await bot.send_message(w.dm.id, "x")
    # other chats have their own bucket
    other = w.server.private_chat(w.bob)
    await bot.send_message(other.id, "fine")


async def test_edits_and_documents_count(bot: Bot, w: World) -> None:
    msg = await bot.send_message(w.dm.id, "v0")
    for i in range(3):
        await msg.edit_text(f"v{i + 1}")
    await bot.send_document(w.dm.id, b"x", filename="x.txt")
    with pytest.raises(RetryAfter):
        await bot.edit_message_reply_markup(
            w.dm.id,
            msg.message_id,
            reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("a", callback_data="a")]]),
        )
    stored = w.server.messages(w.dm)[0]
    assert stored.text == "v3"
    assert stored.reply_markup is None  # not performed
    with pytest.raises(RetryAfter):
        await bot.send_photo(w.dm.id, b"\x89PNG img")
    # deleting, answering and chat actions are not counted
    await bot.send_chat_action(w.dm.id, "typing")
    assert await bot.delete_message(w.dm.id, msg.message_id)


async def test_edits_not_counted_when_switched_off(w: World) -> None:
    control = FloodControl(FloodLimits(count_edits=False), w.clock)
    for _ in range(50):
        control.charge(1, False, edit=True)
    for _ in range(5):
        control.charge(1, False)


async def test_group_limit_20_per_minute(bot: Bot, w: World) -> None:
    for i in range(20):
        await bot.send_message(w.group.id, f"m{i}")
        w.clock.advance(1.0)  # keeps the per-chat bucket full
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(w.group.id, "21st")
    # the first message of the window was sent 20 s ago: it leaves the window in 40 s
    assert seconds(info.value.retry_after) == 40
    assert len(w.server.messages(w.group)) == 20
    w.clock.advance(40.0)
    await bot.send_message(w.group.id, "window moved")


async def test_global_limit_30_per_second(w: World) -> None:
    clock = ManualClock()
    control = FloodControl(FloodLimits(per_chat_burst=None), clock)
    for chat_id in range(30):
        control.charge(chat_id, False)
    with pytest.raises(Exception, match="retry after 1") as info:
        control.charge(99, False)
    assert getattr(info.value, "retry_after", None) == 1
    clock.advance(1.0)
    control.charge(99, False)


async def test_global_limit_over_http(bot: Bot, w: World) -> None:
    users = [w.server.add_user(2000 + i, f"U{i}") for i in range(31)]
    chats = [w.server.private_chat(u) for u in users]
    for chat in chats[:30]:
        await bot.send_message(chat.id, "hi")
    with pytest.raises(RetryAfter):
        await bot.send_message(chats[30].id, "hi")
    assert w.server.messages(chats[30]) == []


async def test_each_limit_can_be_switched_off(w: World) -> None:
    clock = ManualClock()
    off = FloodControl(FloodLimits.off(), clock)
    for _ in range(1000):
        off.charge(-100, True)
    no_chat = FloodControl(FloodLimits().without_per_chat(), clock)
    for _ in range(20):
        no_chat.charge(-100, True)
    with pytest.raises(Exception, match="retry after"):
        no_chat.charge(-100, True)
    no_group = FloodControl(FloodLimits(per_chat_burst=None, per_group_per_minute=None), clock)
    for _ in range(30):
        no_group.charge(-100, True)
    with pytest.raises(Exception, match="retry after"):
        no_group.charge(-100, True)
