"""Two `taskops run` in webhook mode behind one load balancer (issue 14, docs/deploy.md).

Telegram posts every update to the one webhook URL; the balancer hands it to whichever
process answers. Both processes answer updates; only the leader pushes. kill -9 of the
leader: the next update is answered by the other process through the balancer, which
takes the lead and pushes what changed since, each change once (at most one repeat per
fail-over).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio
from aiohttp import web

from taskops.bot.push.subscription import NotifySettings
from taskops.storage.db import migrate
from taskops.storage.domain import TaskDraft, TaskStatus
from taskops.storage.store import TaskStore
from tests.e2e.test_process import process_env
from tests.factories import make_settings
from tests.fakegram import FakeTelegram
from tests.push.helpers import SINGLE_HEAD

ADMIN = 1001
SECRET = "pair-Secret_0123456789"
HEADER = "X-Telegram-Bot-Api-Secret-Token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Balancer:
    """A load balancer as deployed in front of the webhook: each update goes to the first
    backend that takes the connection, starting with a different one each time."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self.port = free_port()
        self.served: collections.Counter[int] = collections.Counter()
        self._next = 0
        self._runner: web.AppRunner | None = None
        self._client = httpx.AsyncClient(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/telegram"

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("content-type", HEADER.lower())}
        self._next += 1
        order = self.backends[self._next % 2:] + self.backends[:self._next % 2]
        for port in order:
            try:
                answer = await self._client.post(f"http://127.0.0.1:{port}/telegram",
                                                 content=body, headers=headers)
            except httpx.TransportError:
                continue
            self.served[port] += 1
            return web.Response(status=answer.status_code, body=answer.content)
        return web.Response(status=502)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/telegram", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        await self._client.aclose()
        if self._runner is not None:
            await self._runner.cleanup()


@pytest_asyncio.fixture
async def processes() -> AsyncIterator[list[asyncio.subprocess.Process]]:
    started: list[asyncio.subprocess.Process] = []
    try:
        yield started
    finally:
        for proc in started:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()


def told(server: FakeTelegram) -> list[int]:
    """Task ids notified to the admin, in order, repeats included."""
    return [int((m.text or "").split(" · #")[1].split(" ")[0])
            for m in server.messages(ADMIN)
            if m.from_bot and SINGLE_HEAD.match(m.text or "")]


async def test_two_webhook_processes_answer_and_fail_over(
        fakegram: FakeTelegram, tmp_path: Path,
        processes: list[asyncio.subprocess.Process]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'pair.db'}"
    await migrate(url)
    ports = [free_port(), free_port()]
    balancer = Balancer(ports)
    await balancer.start()
    dm = fakegram.private_chat(fakegram.add_user(ADMIN, "Ann"))
    configs = []
    for name, port in zip("ab", ports, strict=True):
        home = tmp_path / name
        home.mkdir()
        settings = make_settings(home, url, {
            "telegram": {"base_url": fakegram.bot_base_url, "mode": "webhook",
                         "webhook_url": balancer.url, "webhook_port": port,
                         "webhook_listen": "127.0.0.1", "webhook_secret": SECRET},
            "notifications": {"digest_threshold": 1000}})
        assert settings.source is not None
        configs.append(settings.source)
    store = await TaskStore.open(make_settings(tmp_path, url))
    log = tmp_path / "taskops.log"
    try:
        await store.push.subscribe(
            ADMIN, NotifySettings(statuses=frozenset({TaskStatus.FAILED})).to_json(), ADMIN)
        for name, config in zip("ab", configs, strict=True):
            hooks = len(fakegram.calls_of("setWebhook"))
            with log.open("ab") as stderr:
                processes.append(await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "taskops.cli", "run", "--config", str(config),
                    "--name", f"run-{name}", cwd=config.parent, start_new_session=True,
                    stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
                    env=process_env({"TASKOPS_TELEGRAM_TOKEN": fakegram.token,
                                     "TASKOPS_ADMIN_IDS": str(ADMIN)})))
            await fakegram.wait_for(lambda n=hooks: len(fakegram.calls_of("setWebhook")) > n,
                                    timeout=30, message=f"run-{name} did not set the webhook")
        first, second = processes
        # Both processes answer what the balancer hands them.
        for i in range(4):
            await fakegram.send_text(fakegram.world.users[ADMIN], dm, "/start")
            await fakegram.wait_for(
                lambda n=i: len([m for m in fakegram.messages(dm) if m.from_bot]) > n,
                timeout=15, message="/start was not answered")
        assert set(balancer.served) == set(ports), balancer.served
        # The leader (the first started) pushes; the standby does not repeat it.
        before = await store.create_task(TaskDraft(name="before", prompt="p"))
        await store.kill_task(before.id, by="test")
        await fakegram.wait_for(lambda: before.id in told(fakegram), timeout=15,
                                message=f"no push before the kill\n{log.read_text()[-3000:]}")
        first.send_signal(signal.SIGKILL)
        await first.wait()
        # The next update reaches the survivor through the balancer.
        answered = len([m for m in fakegram.messages(dm) if m.from_bot])
        await fakegram.send_text(fakegram.world.users[ADMIN], dm, "/tasks")
        await fakegram.wait_for(
            lambda: len([m for m in fakegram.messages(dm) if m.from_bot]) > answered,
            timeout=15, message="/tasks was not answered after the kill")
        after = await store.create_task(TaskDraft(name="after", prompt="p"))
        await store.kill_task(after.id, by="test")
        # The survivor takes the lead (within 15 s) and pushes what changed since.
        await fakegram.wait_for(lambda: after.id in told(fakegram), timeout=30,
                                message=f"no push after the kill\n{log.read_text()[-3000:]}")
        await asyncio.sleep(1.0)
        counts = collections.Counter(told(fakegram))
        assert set(counts) == {before.id, after.id}, counts
        assert sum(counts.values()) - len(counts) <= 1, counts  # one fail-over, one repeat
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 20) == 0, log.read_text()[-3000:]
    finally:
        await store.close()
        await balancer.stop()
