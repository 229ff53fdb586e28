"""/healthz and /metrics (issue 18): served over real HTTP by the monitoring server on a
real store; ``taskops worker`` and ``taskops run`` serve them as processes."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from taskops import metrics
from taskops.monitoring import Monitor
from taskops.storage.domain import EventKind, TaskDraft, TaskStatus
from taskops.storage.models import TaskRow
from taskops.storage.store import TaskStore
from tests.e2e.harness import ADMIN_ID
from tests.e2e.test_process import TASKOPS, process_env
from tests.factories import make_settings
from tests.fakegram import FakeTelegram
from tests.fakegram.fixtures import fakegram
from tests.faults import postgres_refusing

__all__ = ["fakegram"]

#: label values every series may have (bounded: no ids, names, chats)
STATUSES = {s.value for s in TaskStatus}
BOUNDED: dict[str, set[str] | None] = {
    "status": STATUSES,
    "outcome": {"ok", "429", "error", "sent", "retried", "dropped", "unconfirmed"},
    "method": set(metrics.TELEGRAM_METHODS) | {"other"}, "lock": {"triggers"},
    "kind": {k.value for k in EventKind} | {"transient", "other"}}


async def serve(store: TaskStore, tmp_path: Path, url: str) -> Monitor:
    monitor = Monitor(store, make_settings(tmp_path, url), probe_every=0.5)
    await monitor.start("127.0.0.1", 0)
    return monitor


async def scrape(monitor: Monitor) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"http://127.0.0.1:{monitor.port}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
            for label, value in sample.labels.items():
                if not sample.name.startswith("taskops_") or label in ("le",):
                    continue
                allowed = BOUNDED.get(label, set())
                assert allowed is None or value in allowed, (sample.name, label, value)
    return found


@pytest.fixture
async def monitored(db_url: str, store: TaskStore, tmp_path: Path) -> AsyncIterator[Monitor]:
    monitor = await serve(store, tmp_path, db_url)
    try:
        yield monitor
    finally:
        await monitor.stop()
        metrics.enable(False)


async def random_workload(store: TaskStore, rng: random.Random, n: int) -> None:
    for i in range(n):
        task = await store.create_task(TaskDraft(name=f"w{i}", prompt="p"))
        ending = rng.choice(["run", "complete", "fail", "kill", "pause"])
        if ending == "complete":
            await store.finish_task(task.id, "STATUS: completed\nSUMMARY:\ndone")
        elif ending == "pause":
            await store.finish_task(task.id, "STATUS: question\nSUMMARY:\nwhich one?")
        elif ending == "fail":
            await store.fail_task(task.id, "boom")
        elif ending == "kill":
            await store.kill_task(task.id, "Ann")


@settings(max_examples=5, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 25))
async def test_metrics_parse_and_task_gauges_equal_the_counts(
        monitored: Monitor, store: TaskStore, seed: int, n: int) -> None:
    before = await scrape(monitored)
    await random_workload(store, random.Random(seed), n)
    found = await scrape(monitored)
    counts = await store.status_counts()
    async with store.db.read() as conn:
        scanned = dict((await conn.execute(
            select(TaskRow.status, func.count()).group_by(TaskRow.status))).all())
    for status in TaskStatus:
        gauge = found["taskops_tasks"][(("status", status.value),)]
        assert gauge == counts[status] == scanned.get(status.value, 0), status
    changes = found.get("taskops_status_changes_total", {})
    changed_before = sum(before.get("taskops_status_changes_total", {}).values())
    assert sum(changes.values()) - changed_before >= n
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total",
                 "process_open_fds",
                 "taskops_store_statement_seconds_count", "taskops_store_up"):
        assert name in found, name
    assert found["taskops_store_up"][()] == 1


async def test_healthz_says_503_while_the_store_is_away_and_200_after(
        own_postgres_url: str, tmp_path: Path) -> None:
    settings_ = make_settings(tmp_path, own_postgres_url)
    store = await TaskStore.open(settings_)
    monitor = Monitor(store, settings_)  # the production intervals
    await monitor.start("127.0.0.1", 0)
    url = f"http://127.0.0.1:{monitor.port}/healthz"
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.get(url)
            assert answer.status_code == 200
            body = answer.json()
            assert body["status"] == "ok"
            assert body["store"]["reachable"] is True
            assert body["role"] == "worker"
            assert body["feed_lag_seconds"] == 0.0
            async with postgres_refusing(own_postgres_url):
                away = time.monotonic()
                while (answer := await client.get(url)).status_code != 503:
                    assert time.monotonic() - away < 10, answer.text
                    await asyncio.sleep(0.2)
                assert answer.json()["store"]["reachable"] is False
                await asyncio.sleep(3)
                assert (await client.get(url)).status_code == 503
            back = time.monotonic()
            while (answer := await client.get(url)).status_code != 200:
                assert time.monotonic() - back < 15, answer.text
                await asyncio.sleep(0.2)
            for path, status in (("/nope", 404), ("/metrics?x=1", 200)):
                got = await client.get(f"http://127.0.0.1:{monitor.port}{path}")
                assert got.status_code == status
            assert (await client.post(url)).status_code == 405
    finally:
        await monitor.stop()
        metrics.enable(False)
        await store.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_healthy(port: int, proc: asyncio.subprocess.Process) -> dict[str, object]:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            assert proc.returncode is None
            try:
                answer = await client.get(f"http://127.0.0.1:{port}/healthz")
            except httpx.TransportError:
                await asyncio.sleep(0.3)
                continue
            if answer.status_code == 200:
                metrics_text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                assert "taskops_tasks{" in metrics_text
                return dict(answer.json())
            await asyncio.sleep(0.3)
    raise AssertionError("no healthy answer within 60 s")


@pytest.mark.parametrize("command", ["worker", "run"])
async def test_run_and_worker_serve_healthz(fakegram: FakeTelegram, tmp_path: Path,
                                            command: str) -> None:
    port = free_port()
    config = tmp_path / "taskops.toml"
    config.write_text(f'[telegram]\nbase_url = "{fakegram.bot_base_url}"\n'
                      f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "t.db"}"\n'
                      f'[monitoring]\nport = {port}\n')
    fakegram.private_chat(fakegram.add_user(ADMIN_ID, "Ann"))
    if command == "worker":
        migrate = await asyncio.create_subprocess_exec(
            *TASKOPS, "migrate", "--config", str(config), cwd=tmp_path, env=process_env({}))
        assert await migrate.wait() == 0
    proc = await asyncio.create_subprocess_exec(
        *TASKOPS, command, "--config", str(config), cwd=tmp_path,
        env=process_env({"TASKOPS_TELEGRAM_TOKEN": fakegram.token,
                         "TASKOPS_ADMIN_IDS": str(ADMIN_ID)}),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        body = await wait_healthy(port, proc)
        if command == "run":
            # Push runs in the cluster's leader only: its lag shows once this process
            # has been elected (at once, alone on SQLite) and started push.
            deadline = time.monotonic() + 60
            while body["push_lag_seconds"] is None and time.monotonic() < deadline:
                await asyncio.sleep(0.3)
                body = await wait_healthy(port, proc)
        assert body["role"] == "worker"
        assert body["status"] == "ok"
        assert (body["push_lag_seconds"] is None) == (command == "worker")
    finally:
        if proc.returncode is None:
            proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
