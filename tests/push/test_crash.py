"""kill -9 of `taskops run` in the middle of a burst: after a restart every change arrives,
at most the one message in flight per chat twice, and no flood limit is exceeded."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import sys
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from taskops.bot.push.subscription import NotifySettings
from taskops.storage.db import migrate
from taskops.storage.domain import TaskDraft, TaskStatus, Trigger
from taskops.storage.store import TaskStore
from tests.e2e.test_process import process_env
from tests.factories import make_settings
from tests.fakegram import FakeTelegram
from tests.push.helpers import SINGLE_HEAD

TASKOPS = [sys.executable, "-m", "taskops.cli", "run", "--config"]
ADMINS = [1001, 1002, 1003, 1004, 1005]
BURST = 40


class Bots:
    """Every `taskops run` a test starts, each in a process group of its own, so the test
    can always reap what it started: one whose start timed out was never handed back to
    the test and kept running after it (an orphan polling a server long gone)."""

    def __init__(self) -> None:
        self.started: list[asyncio.subprocess.Process] = []

    async def start(self, config: Path, server: FakeTelegram,
                    log: Path) -> asyncio.subprocess.Process:
        calls = len(server.calls_of("getUpdates"))
        with log.open("ab") as stderr:
            proc = await asyncio.create_subprocess_exec(
                *TASKOPS, str(config), cwd=config.parent, stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr, start_new_session=True,
                env=process_env({"TASKOPS_TELEGRAM_TOKEN": server.token,
                                 "TASKOPS_ADMIN_IDS": ",".join(map(str, ADMINS))}))
        self.started.append(proc)
        await server.wait_for(lambda: len(server.calls_of("getUpdates")) > calls, timeout=30,
                              message="the bot did not start polling")
        return proc

    async def reap(self) -> None:
        """Kill what is still running of every group started, and wait for it."""
        for proc in self.started:
            if proc.returncode is None:
                # The whole group, whatever the process started with it; only while the
                # process is not yet reaped, so its id cannot be anyone else's group.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()


@pytest_asyncio.fixture
async def bots() -> AsyncIterator[Bots]:
    started = Bots()
    try:
        yield started
    finally:
        await started.reap()


def delivered(server: FakeTelegram) -> dict[int, list[int]]:
    """Task ids notified per chat, in order, repeats included."""
    seen: dict[int, list[int]] = collections.defaultdict(list)
    for chat_id in ADMINS:
        for message in server.messages(chat_id):
            if message.from_bot and SINGLE_HEAD.match(message.text or ""):
                seen[chat_id].append(int((message.text or "").split(" · #")[1].split(" ")[0]))
    return seen


async def test_kill_9_mid_burst_and_restart_delivers_every_change_once(
        fakegram: FakeTelegram, bots: Bots, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    await migrate(url)
    # Every change as its own message (no digests), so each one can be counted.
    settings = make_settings(tmp_path, url, {
        "telegram": {"base_url": fakegram.bot_base_url},
        "notifications": {"digest_threshold": 1000}})
    assert settings.source is not None
    config = settings.source
    log = tmp_path / "taskops.log"
    for admin in ADMINS:
        fakegram.private_chat(fakegram.add_user(admin, f"Admin {admin}"))
    store = await TaskStore.open(settings)
    triggers = list(Trigger)
    try:
        # One chat per trigger, so the chats drain side by side.
        for admin, trigger in zip(ADMINS, triggers, strict=True):
            wants = NotifySettings(statuses=frozenset({TaskStatus.FAILED}),
                                   triggers=frozenset({trigger}))
            await store.push.subscribe(admin, wants.to_json(), admin)
        expected: dict[int, list[int]] = collections.defaultdict(list)
        proc = await bots.start(config, fakegram, log)
        for i in range(BURST):
            task = await store.create_task(TaskDraft(name=f"crash {i}", prompt="p",
                                                     trigger=triggers[i % 5]))
            await store.kill_task(task.id, by="test")
            expected[ADMINS[i % 5]].append(task.id)
        await fakegram.wait_for(lambda: sum(map(len, delivered(fakegram).values())) >= 12,
                                timeout=30)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        before = {c: list(ids) for c, ids in delivered(fakegram).items()}
        assert sum(map(len, before.values())) < BURST, "the burst was over before the kill"
        proc = await bots.start(config, fakegram, log)
        await fakegram.wait_for(
            lambda: all(set(delivered(fakegram)[c]) == set(expected[c]) for c in ADMINS),
            timeout=60, message="not every change arrived after the restart")
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            raise AssertionError(f"SIGTERM did not stop the bot: {log.read_text()[-3000:]}") \
                from None
        if proc.returncode != 0:
            # A stop that overran its deadline exits 1, naming what it waited for. Bounded
            # stopping is tested in tests/e2e/test_process.py; this test is about delivery,
            # so an overrun is reported, not failed.
            overrun = [line for line in log.read_text().splitlines() if "pending:" in line]
            assert proc.returncode == 1, log.read_text()[-3000:]
            assert overrun, log.read_text()[-3000:]
            warnings.warn(f"the bot's stop overran: {overrun[-1]}", stacklevel=1)
    finally:
        await store.close()
    seen = delivered(fakegram)
    for chat_id in ADMINS:
        counts = collections.Counter(seen[chat_id])
        repeats = sum(n - 1 for n in counts.values())
        assert repeats <= 1, (chat_id, seen[chat_id], log.read_text()[-3000:])
        assert sorted(set(seen[chat_id])) == sorted(expected[chat_id])
    assert fakegram.flood_violations == [], log.read_text()[-3000:]
