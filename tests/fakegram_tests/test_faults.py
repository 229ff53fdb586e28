"""Injected faults, and the HTTP protocol: tokens, method names, encodings."""

from __future__ import annotations

import time

import pytest
from telegram import Bot
from telegram.error import InvalidToken, NetworkError, RetryAfter, TimedOut

from tests.fakegram_tests.helpers import (  # noqa: F401
    TOKEN,
    World,
    bot_fixture,
    flood_fixture,
    make_bot,
    raw_call,
    seconds,
    w_fixture,
)


async def test_fault_429_then_normal(bot: Bot, w: World) -> None:
    w.server.fail("sendMessage", "429", count=2, retry_after=7)
    for _ in range(2):
        with pytest.raises(RetryAfter) as info:
            await bot.send_message(w.dm.id, "x")
        assert seconds(info.value.retry_after) == 7
    await bot.send_message(w.dm.id, "third time lucky")
    assert [m.text for m in w.server.messages(w.dm)] == ["third time lucky"]
    assert [v.injected for v in w.server.violations] == [True, True]
    assert w.server.flood_violations == []


async def test_fault_500(bot: Bot, w: World) -> None:
    w.server.fail("editMessageText", "500")
    msg = await bot.send_message(w.dm.id, "v1")
    with pytest.raises(NetworkError, match="Internal Server Error"):
        await msg.edit_text("v2")
    assert w.server.messages(w.dm)[0].text == "v1"
    await msg.edit_text("v2")


async def test_fault_slow(w: World) -> None:
    w.server.fail("sendMessage", "slow", delay=0.3)
    async with make_bot(w.server, read_timeout=0.1) as impatient:
        with pytest.raises(TimedOut):
            await impatient.send_message(w.dm.id, "x")
    w.server.fail("sendMessage", "slow", delay=0.15)
    async with make_bot(w.server) as patient:
        start = time.monotonic()
        await patient.send_message(w.dm.id, "y")
        assert time.monotonic() - start >= 0.14
    # the timed-out request was still performed, as a slow Telegram would
    await w.server.wait_for(lambda: len(w.server.messages(w.dm)) == 2)


async def test_fault_drop_before_and_after(bot: Bot, w: World) -> None:
    w.server.fail("sendMessage", "drop")
    with pytest.raises(NetworkError):
        await bot.send_message(w.dm.id, "lost")
    assert w.server.messages(w.dm) == []
    w.server.fail("sendMessage", "drop_after")
    with pytest.raises(NetworkError):
        await bot.send_message(w.dm.id, "sent but unanswered")
    assert [m.text for m in w.server.messages(w.dm)] == ["sent but unanswered"]
    await bot.send_message(w.dm.id, "fine")
    assert [c.status for c in w.server.calls_of("sendMessage")] == [0, 0, 200]


async def test_fail_validates_its_arguments(w: World) -> None:
    with pytest.raises(ValueError, match="fault kind"):
        w.server.fail("sendMessage", "boom")
    with pytest.raises(ValueError, match="unknown Bot API method"):
        w.server.fail("sendMesage", "429")


async def test_tokens_and_unknown_methods(w: World) -> None:
    status, body = await raw_call(w.server, "getMe", token="123456:WRONG")
    assert (status, body) == (401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    status, body = await raw_call(w.server, "noSuchMethod")
    assert (status, body) == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
    with pytest.raises(InvalidToken):
        async with Bot("123456:WRONG", base_url=w.server.bot_base_url):
            pass


async def test_method_names_and_encodings(w: World) -> None:
    status, body = await raw_call(w.server, "GETME", http_method="GET")
    assert status == 200
    assert body["result"]["username"] == "taskops_bot"
    status, body = await raw_call(
        w.server,
        "sendmessage",
        json_body={
            "chat_id": w.dm.id,
            "text": "<b>json</b>",
            "parse_mode": "HTML",
            "reply_markup": {"inline_keyboard": [[{"text": "a", "callback_data": "a"}]]},
        },
    )
    assert status == 200
    assert body["result"]["entities"] == [{"offset": 0, "length": 4, "type": "bold"}]
    status, body = await raw_call(
        w.server, "sendMessage", http_method="GET", query={"chat_id": str(w.dm.id), "text": "query"}
    )
    assert (status, body["result"]["text"]) == (200, "query")
    assert [c.method for c in w.server.calls] == ["getMe", "sendMessage", "sendMessage"]
    assert w.server.calls[1].params["reply_markup"] == {
        "inline_keyboard": [[{"text": "a", "callback_data": "a"}]]
    }


async def test_form_params_are_decoded_in_calls(bot: Bot, w: World) -> None:
    await bot.send_message(w.dm.id, "x", parse_mode="HTML")
    call = await w.server.wait_for_call("sendMessage")
    assert call.params == {"chat_id": w.dm.id, "text": "x", "parse_mode": "HTML"}
    assert call.status == 200
    assert call.response is not None
    assert call.response["result"]["text"] == "x"
    assert await bot.close() is True
    assert await bot.log_out() is True
    with pytest.raises(AssertionError, match="was not called 2 time"):
        await w.server.wait_for_call("sendMessage", n=2, timeout=0.05)
    assert w.server.token == TOKEN
