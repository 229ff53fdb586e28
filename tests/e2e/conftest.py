from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from tests.e2e.harness import Console, running_console
from tests.fakegram import FakeTelegram
from tests.fakegram.fixtures import fakegram

__all__ = ["console", "fakegram"]


@pytest_asyncio.fixture
async def console(fakegram: FakeTelegram, tmp_path: Path) -> AsyncIterator[Console]:
    async with running_console(fakegram, tmp_path) as running:
        yield running
