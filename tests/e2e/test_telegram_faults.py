"""The console when Telegram itself does not take an answer: one line in the log."""

from __future__ import annotations

import logging

import pytest

from tests.e2e.harness import Console
from tests.factories import make_task


async def test_an_answer_telegram_keeps_refusing_is_one_warning(
        console: Console, caplog: pytest.LogCaptureFixture) -> None:
    await make_task(console.store, console.clock, name="job")
    console.server.fail("sendMessage", "429", count=20, retry_after=1)
    caplog.set_level(logging.INFO)
    await console.server.send_text(console.admin, console.server.private_chat(console.admin),
                                   "/tasks")
    await console.server.wait_for(lambda: any(
        "Telegram did not take the answer" in r.getMessage() for r in caplog.records),
        timeout=30)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
