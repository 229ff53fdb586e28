from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.e2e.harness import Console, running_console
from tests.fakegram import FakeTelegram
from tests.fakegram.fixtures import fakegram

__all__ = ["console", "fakegram"]


@pytest_asyncio.fixture
async def console(fakegram: FakeTelegram, tmp_path: Path) -> AsyncIterator[Console]:
    async with running_console(fakegram, tmp_path) as running:
        yield running


@pytest.fixture(autouse=True)
def no_flood_violations(fakegram: FakeTelegram) -> Iterator[None]:
    """Whatever a push test does, the fake server never had to refuse for flooding."""
    yield
    assert fakegram.flood_violations == [], fakegram.flood_violations[:5]
