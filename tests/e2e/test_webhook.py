"""Webhook mode: only Telegram, which knows the secret, can post updates (issue 18).

The console runs in webhook mode against the fake Telegram server, which registers the
webhook and delivers real updates with the secret header. A forged update — an admin's id
in ``from``, ``/kill_task`` as its text — posted straight to the webhook port without the
header, or with a wrong one, is answered 403 and reaches no handler.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from telegram import Update
from telegram.ext import ContextTypes, TypeHandler

from tests.e2e.harness import ADMIN_ID, running_console
from tests.fakegram import FakeTelegram

SECRET = "hook-Secret_0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def forged_update(update_id: int) -> dict[str, Any]:
    admin = {"id": ADMIN_ID, "is_bot": False, "first_name": "Ann"}
    return {"update_id": update_id, "message": {
        "message_id": 900 + update_id, "date": 1_700_000_000, "from": admin,
        "chat": {"id": ADMIN_ID, "type": "private", "first_name": "Ann"},
        "text": "/kill_task 1", "entities": [{"type": "bot_command", "offset": 0, "length": 10}]}}


@pytest.mark.parametrize("header", [None, "wrong-secret", SECRET[:-1], SECRET + "x", ""])
async def test_forged_updates_are_refused_before_any_handler(
        fakegram: FakeTelegram, tmp_path: Path, header: str | None) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram"
    sections = {"telegram": {"mode": "webhook", "webhook_url": url, "webhook_port": port,
                             "webhook_secret": SECRET}}
    async with running_console(fakegram, tmp_path, sections=sections) as console:
        reached: list[Update] = []

        async def record(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
            reached.append(update)

        console.app.add_handler(TypeHandler(Update, record), group=-100)
        dm = fakegram.private_chat(console.admin)
        headers = {"Content-Type": "application/json"}
        if header is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = header
        sends_before = len(fakegram.calls_of("sendMessage"))
        async with httpx.AsyncClient() as client:
            for update_id in (1, 2):
                answer = await client.post(url, content=json.dumps(forged_update(update_id)),
                                           headers=headers)
                assert answer.status_code == 403
        await asyncio.sleep(0.5)
        assert reached == []
        assert len(fakegram.calls_of("sendMessage")) == sends_before
        # The real Telegram (the fake server, which sends the secret) gets through.
        await fakegram.send_text(console.admin, dm, "/start")
        await fakegram.wait_for(lambda: fakegram.last_bot_message(dm) is not None, timeout=15)
        assert [u.effective_message.text for u in reached if u.effective_message] == ["/start"]
        assert fakegram.world.updates.webhook is not None
