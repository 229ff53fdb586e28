"""Fixtures shared by the fake Telegram's own tests (imported explicitly by each module)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from telegram import Bot
from telegram.request import HTTPXRequest

from tests.fakegram import FakeChat, FakeTelegram, FakeUser, FloodLimits, ManualClock

TOKEN = "123456:TEST-fake"


@dataclass
class World:
    server: FakeTelegram
    clock: ManualClock
    ann: FakeUser
    bob: FakeUser
    dm: FakeChat
    group: FakeChat


def make_bot(server: FakeTelegram, read_timeout: float | None = None) -> Bot:
    request = HTTPXRequest(read_timeout=read_timeout) if read_timeout is not None else None
    return Bot(
        server.token,
        base_url=server.bot_base_url,
        base_file_url=server.file_base_url,
        request=request,
    )


@pytest.fixture(name="flood")
def flood_fixture() -> FloodLimits:
    """Flood limits of the ``w`` fixture; off unless a module overrides this fixture."""
    return FloodLimits.off()


@pytest_asyncio.fixture(name="w")
async def w_fixture(flood: FloodLimits, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    # PTB 22 warns (an error under filterwarnings=error) when it builds a RetryAfter with int
    # seconds, unless it is told to use timedelta already
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    clock = ManualClock()
    server = FakeTelegram(TOKEN, "taskops_bot", flood=flood, clock=clock, webhook_retry_delay=0.05)
    await server.start()
    ann = server.add_user(1001, "Ann", username="ann")
    bob = server.add_user(1002, "Bob", username="bob")
    dm = server.private_chat(ann)
    group = server.add_group(-1001234567890, "Ops", [ann, bob], admins=[ann])
    try:
        yield World(server, clock, ann, bob, dm, group)
    finally:
        await server.stop()


@pytest_asyncio.fixture(name="bot")
async def bot_fixture(w: World) -> AsyncIterator[Bot]:
    async with make_bot(w.server) as b:
        yield b


async def raw_call(
    server: FakeTelegram,
    method: str,
    *,
    token: str | None = None,
    json_body: Any = None,
    query: dict[str, str] | None = None,
    http_method: str = "POST",
    **form: Any,
) -> tuple[int, dict[str, Any]]:
    """Call the fake without PTB: form-encoded by default, or a JSON body / a GET query."""
    url = f"{server.url}/bot{token or server.token}/{method}"
    async with aiohttp.ClientSession() as session:
        kwargs: dict[str, Any] = {"params": query}
        if json_body is not None:
            kwargs["json"] = json_body
        elif form:
            kwargs["data"] = {k: v if isinstance(v, str) else str(v) for k, v in form.items()}
        async with session.request(http_method, url, **kwargs) as resp:
            return resp.status, await resp.json()


def seconds(value: int | timedelta) -> float:
    """A PTB time period (int or timedelta, depending on PTB_TIMEDELTA) in seconds."""
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
