"""getUpdates (offset, limit, timeout, allowed_updates, conflicts), webhooks, privacy mode."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from telegram import Bot
from telegram.error import Conflict

from tests.fakegram_tests.helpers import (  # noqa: F401
    World,
    bot_fixture,
    flood_fixture,
    make_bot,
    raw_call,
    w_fixture,
)


async def test_offset_confirms_and_limit_caps(bot: Bot, w: World) -> None:
    for i in range(5):
        await w.server.send_text(w.ann, w.dm, f"m{i}")
    first = await bot.get_updates(limit=2)
    assert [u.message.text for u in first if u.message] == ["m0", "m1"]
    again = await bot.get_updates(limit=2)  # nothing confirmed yet
    assert [u.update_id for u in again] == [u.update_id for u in first]
    rest = await bot.get_updates(offset=first[-1].update_id + 1)
    assert [u.message.text for u in rest if u.message] == ["m2", "m3", "m4"]
    assert len(w.server.pending_updates) == 3
    last = await bot.get_updates(offset=-1)  # negative: keep only the last one
    assert [u.message.text for u in last if u.message] == ["m4"]
    assert len(w.server.pending_updates) == 1
    assert await bot.get_updates(offset=last[0].update_id + 1) == ()
    status, body = await raw_call(w.server, "getUpdates", limit=0)
    assert (status, body) == (200, {"ok": True, "result": []})


async def test_long_poll_waits_for_an_update(bot: Bot, w: World) -> None:
    start = time.monotonic()
    assert await bot.get_updates(timeout=0.2) == ()  # type: ignore[arg-type]
    assert time.monotonic() - start >= 0.19

    async def later() -> None:
        await asyncio.sleep(0.1)
        await w.server.send_text(w.ann, w.dm, "wake up")

    task = asyncio.create_task(later())
    start = time.monotonic()
    updates = await bot.get_updates(timeout=5)
    assert time.monotonic() - start < 2
    assert updates[0].message is not None
    assert updates[0].message.text == "wake up"
    await task


async def test_allowed_updates_filter_is_remembered(bot: Bot, w: World) -> None:
    msg = await bot.send_message(w.dm.id, "menu")
    await bot.get_updates(allowed_updates=["callback_query"])
    await w.server.send_text(w.ann, w.dm, "ignored")
    await w.server.press(w.ann, w.dm, msg.message_id, "x")
    updates = await bot.get_updates()  # no allowed_updates: the last setting stays
    assert [u.callback_query is not None for u in updates] == [True]
    await bot.get_updates(offset=updates[-1].update_id + 1, allowed_updates=[])  # back to default
    await w.server.send_text(w.ann, w.dm, "seen")
    updates = await bot.get_updates()
    assert [u.message.text for u in updates if u.message] == ["seen"]


async def test_a_newer_getupdates_terminates_the_older_one(bot: Bot, w: World) -> None:
    async with make_bot(w.server) as other:
        older = asyncio.create_task(bot.get_updates(timeout=5))
        await w.server.wait_for(lambda: len(w.server.calls_of("getMe")) >= 2)
        await asyncio.sleep(0.05)
        newer = asyncio.create_task(other.get_updates(timeout=0.3))  # type: ignore[arg-type]
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await older
        assert await newer == ()
    v = w.server.violations[-1]
    assert (v.error_code, v.description) == (
        409,
        "Conflict: terminated by other getUpdates request; make sure that only one bot "
        "instance is running",
    )


@pytest_asyncio.fixture(name="receiver")
async def receiver_fixture() -> AsyncIterator[tuple[str, list[dict[str, Any]], list[int]]]:
    """A webhook endpoint: records each delivery; answers the statuses in ``plan`` first."""
    got: list[dict[str, Any]] = []
    plan: list[int] = []

    async def hook(request: web.Request) -> web.Response:
        got.append({"headers": dict(request.headers), "body": json.loads(await request.text())})
        return web.Response(status=plan.pop(0) if plan else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/hook", got, plan
    finally:
        await runner.cleanup()


async def test_webhook_delivery_with_secret_and_retries(
    bot: Bot, w: World, receiver: tuple[str, list[dict[str, Any]], list[int]]
) -> None:
    url, got, plan = receiver
    await w.server.send_text(w.ann, w.dm, "before")
    assert await bot.set_webhook(url, secret_token="s3cr3t-Token_1", drop_pending_updates=True)
    assert w.server.calls[-1].response == {
        "ok": True,
        "result": True,
        "description": "Webhook was set",
    }
    with pytest.raises(Conflict, match="webhook is active"):
        await bot.get_updates()
    plan.extend([500, 502])
    await w.server.send_text(w.ann, w.dm, "hello hook")
    await w.server.wait_for(lambda: len(got) >= 3)
    assert [g["body"]["message"]["text"] for g in got] == ["hello hook"] * 3
    assert got[0]["headers"]["X-Telegram-Bot-Api-Secret-Token"] == "s3cr3t-Token_1"
    assert got[0]["headers"]["Content-Type"] == "application/json"
    await w.server.wait_for(lambda: not w.server.pending_updates)
    assert [status for _, status in w.server.webhook_deliveries] == [500, 502, 200]
    info = await bot.get_webhook_info()
    assert info.url == url
    assert info.pending_update_count == 0
    assert info.last_error_message == "Wrong response from the webhook: 502"
    assert await bot.delete_webhook()
    assert w.server.calls[-1].response == {
        "ok": True,
        "result": True,
        "description": "Webhook was deleted",
    }
    assert (await bot.get_webhook_info()).url == ""
    await bot.get_updates()  # polling works again


async def test_webhook_pending_count_while_failing(
    bot: Bot, w: World, receiver: tuple[str, list[dict[str, Any]], list[int]]
) -> None:
    url, got, plan = receiver
    plan.extend([500] * 1000)
    await bot.set_webhook(url)
    await w.server.send_text(w.ann, w.dm, "a")
    await w.server.send_text(w.ann, w.dm, "b")
    await w.server.wait_for(lambda: len(got) >= 2)
    info = await bot.get_webhook_info()
    assert info.pending_update_count == 2
    assert info.last_error_date is not None
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert (await bot.get_webhook_info()).pending_update_count == 0
    assert {g["body"]["message"]["text"] for g in got} == {"a"}  # in order: "b" waits for "a"


async def test_group_privacy_mode(bot: Bot, w: World) -> None:
    sent = await bot.send_message(w.group.id, "Enter a value:")
    cases = [
        ("hello all", False),
        ("/tasks status:failed", True),
        ("/tasks@taskops_bot", True),
        ("/tasks@other_bot", False),
        ("hey @taskops_bot", True),
    ]
    for text, seen in cases:
        msg = await w.server.send_text(w.bob, w.group, text)
        assert msg.delivered is seen, text
    reply = await w.server.reply_to(w.bob, w.group, sent.message_id, "42")
    assert reply.delivered
    updates = await bot.get_updates()
    texts = [u.message.text for u in updates if u.message]
    assert texts == ["/tasks status:failed", "/tasks@taskops_bot", "hey @taskops_bot", "42"]
    assert updates[-1].message is not None
    assert updates[-1].message.reply_to_message is not None
    assert updates[-1].message.reply_to_message.message_id == sent.message_id
    command = updates[1].message
    assert command is not None
    assert command.entities[0].type == "bot_command"
    assert command.entities[0].length == len("/tasks@taskops_bot")
    assert len(w.server.messages(w.group)) == 7  # everything is in the chat
    me = await bot.get_me()
    assert me.can_read_all_group_messages is False
