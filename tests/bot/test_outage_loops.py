"""bot.outage.repeat: the push loops' shape — a failing step never spins, a store fault
is waited out and logged once, and the loop goes on after either."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest

from taskops.bot.outage import repeat
from taskops.storage.faults import StoreUnavailable
from taskops.storage.store import TaskStore


def runs(n: int) -> Callable[[], bool]:
    left = iter(range(n))
    return lambda: next(left, None) is not None


async def test_a_step_that_keeps_failing_waits_between_tries_and_logs_once(
        store: TaskStore, caplog: pytest.LogCaptureFixture) -> None:
    steps = waits = 0

    async def step() -> None:
        nonlocal steps
        steps += 1
        if steps < 4:
            raise ValueError("boom")

    async def wait() -> None:
        nonlocal waits
        waits += 1

    with caplog.at_level(logging.INFO):
        await repeat(store, "test loop", step, wait, going=runs(6))
    assert (steps, waits) == (6, 6)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == ["test loop failed; trying again"]
    assert errors[0].exc_info is not None  # the first failure keeps its traceback


async def test_a_store_fault_is_waited_out_and_logged_once(
        store: TaskStore, caplog: pytest.LogCaptureFixture) -> None:
    steps = waits = 0

    async def step() -> None:
        nonlocal steps
        steps += 1
        if steps <= 2:
            raise StoreUnavailable(time.monotonic(), ConnectionRefusedError("refused"))

    async def wait() -> None:
        nonlocal waits
        waits += 1
        await asyncio.sleep(0)

    with caplog.at_level(logging.INFO):
        await repeat(store, "test loop", step, wait, going=runs(3))
    # Two faulted steps retried after the store's pause, not after wait(); then one pass.
    assert (steps, waits) == (3, 1)
    said = [r.getMessage() for r in caplog.records if r.name == "taskops.bot.outage"]
    assert len([m for m in said if "the task store is unavailable" in m]) == 1
    assert len([m for m in said if "answers again" in m]) == 1
