"""The ``fakegram`` fixture, the test-side helpers, and the hand-driving REPL."""

from __future__ import annotations

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import NetworkError

from tests.fakegram import FakeTelegram
from tests.fakegram.__main__ import execute
from tests.fakegram.fixtures import fakegram_fixture  # noqa: F401
from tests.fakegram_tests.helpers import raw_call


async def test_fixture_gives_a_started_server(fakegram: FakeTelegram) -> None:
    assert fakegram.url.startswith("http://127.0.0.1:")
    assert fakegram.bot_base_url == f"{fakegram.url}/bot"
    ann = fakegram.add_user(1001, "Ann", username="ann")
    dm = fakegram.private_chat(ann)
    assert dm.id == ann.id
    assert fakegram.private_chat(ann) is dm
    async with Bot(fakegram.token, base_url=fakegram.bot_base_url) as bot:
        msg = await bot.send_message(
            dm.id,
            "pick",
            reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]]),
        )
        qid = await fakegram.press_button(ann, dm, msg.message_id, "A")
        await bot.answer_callback_query(qid, "done")
        query_id, text, show_alert, _at = fakegram.callback_answers[0]
        assert (query_id, text, show_alert) == (qid, "done", False)
        with pytest.raises(NetworkError, match="Not Implemented"):
            await bot.get_chat(dm.id)
    assert fakegram.violations[-1].error_code == 501


async def test_unknown_users_and_chats_are_test_errors(fakegram: FakeTelegram) -> None:
    with pytest.raises(KeyError, match="add_user"):
        fakegram.private_chat(5)
    ann = fakegram.add_user(1, "Ann")
    bob = fakegram.add_user(2, "Bob")
    with pytest.raises(ValueError, match="negative"):
        fakegram.add_group(5, "bad", [ann])
    with pytest.raises(ValueError, match="not the user"):
        await fakegram.send_text(bob, fakegram.private_chat(ann), "hi")
    group = fakegram.add_group(-5, "G", [ann], admins=[bob], supergroup=False)
    assert group.type == "group"
    assert {m.id for m in group.members} == {1, 2}
    msg = await fakegram.send_text(bob, group, "/start@taskops_bot now")
    assert msg.entities == [{"offset": 0, "length": 18, "type": "bot_command"}]
    with pytest.raises(AssertionError, match="never true"):
        await fakegram.wait_for(lambda: False, timeout=0.02, message="never true")

    async def eventually() -> bool:
        return True

    await fakegram.wait_for(eventually)
    status, body = await raw_call(fakegram, "getMe")
    assert status == 200
    assert body["result"]["is_bot"] is True


async def test_repl_commands() -> None:
    async with FakeTelegram("1:A") as server:
        assert "say <user_id>" in await execute(server, "help")
        assert await execute(server, "user 1 Ann") == "user 1 added"
        assert await execute(server, "user 2 Bob") == "user 2 added"
        assert await execute(server, "say 1 1 hello") == "sent #1"
        assert await execute(server, "group -10 Ops 1 2") == "group -10 added"
        hidden = await execute(server, "say 2 -10 just chatting")
        assert hidden.endswith("(hidden by privacy mode)")
        async with Bot("1:A", base_url=server.bot_base_url) as bot:
            await bot.send_message(
                1,
                "menu",
                reply_markup=InlineKeyboardMarkup(
                    [[InlineKeyboardButton("Go", callback_data="g")]]
                ),
            )
        assert (await execute(server, "press 1 1 2 Go")).startswith("pressed")
        shown = await execute(server, "show 1")
        assert shown.splitlines() == ["#1 Ann(1): hello", "#2 bot: menu", "    [Go]"]
        assert await execute(server, "reply 1 1 2 sure") == "sent #3"
        assert await execute(server, "nonsense") == "unknown command; type help"
        updates = server.pending_updates
        assert [next(k for k in u if k != "update_id") for u in updates] == [
            "message",
            "callback_query",
            "message",
        ]
