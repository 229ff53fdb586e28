"""pytest fixtures; import them explicitly: ``from tests.fakegram.fixtures import fakegram``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from .server import FakeTelegram

TOKEN = "123456:TEST-token_for-fakegram"


@pytest_asyncio.fixture(name="fakegram")
async def fakegram_fixture() -> AsyncIterator[FakeTelegram]:
    """A started fake Telegram with default flood limits; stopped after the test."""
    server = FakeTelegram(token=TOKEN, bot_username="taskops_bot")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


fakegram = fakegram_fixture  # import either name; the fixture is called ``fakegram``
