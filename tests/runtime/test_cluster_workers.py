"""Several ``taskops worker`` processes on one PostgreSQL database: claims never overlap,
and the tasks of a worker killed with -9 are taken up by the others once its lease
(``[runtime] lease_seconds``) has run out, from their journal (no side effect twice)."""

from __future__ import annotations

import asyncio
import random
import signal
import sys
import time
from pathlib import Path

import pytest

from taskops.storage.db import utcnow
from taskops.storage.domain import EventKind, TaskDraft, TaskStatus
from taskops.storage.store import TaskStore
from tests.runtime.conftest import MakeStore, eventually
from tests.runtime.crash_harness import Findings, check, script, unfinished, worker_files

LEASE = 2.0


async def _spawn(config: Path, env: dict[str, str], cwd: Path,
                 name: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "taskops.cli", "worker", "--config", str(config), "--name", name,
        cwd=cwd, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_three_workers_share_tasks_and_take_over_a_dead_ones(
        make_store: MakeStore, tmp_path: Path) -> None:
    store = await make_store(clock_=utcnow)  # the worker processes keep real time
    config, env, sidefx = worker_files(tmp_path, store.settings.database.url, concurrency=4)
    config.write_text(config.read_text() + f"lease_seconds = {LEASE}\n", encoding="utf-8")
    rng = random.Random(14)
    scripts = {}
    for n in range(12):
        chosen = script(f"c{n}", 6, rng)
        task = await store.create_task(TaskDraft(name=f"cluster {n}", prompt=chosen.prompt))
        scripts[task.id] = chosen
    quick = [(await store.create_task(TaskDraft(name=f"quick {n}",
                                                prompt="!say once\n!end completed ok"))).id
             for n in range(120)]
    procs = {name: await _spawn(config, env, tmp_path, name) for name in ("w1", "w2", "w3")}
    try:
        # Kill -9 the first worker once it holds tasks in flight.
        async with asyncio.timeout(300):  # a hang guard: processes start slowly under load
            while True:
                held = [c for c in await store.work.claims() if c.worker_id.startswith("w1:")
                        and c.task_id in scripts]
                if held:
                    break
                await asyncio.sleep(0.02)
        procs["w1"].send_signal(signal.SIGKILL)
        await procs["w1"].wait()
        killed_at = time.time()
        leases = {c.task_id: c.lease_until for c in await store.work.claims()
                  if c.worker_id.startswith("w1:")}
        assert leases
        async def all_ended() -> bool:
            return not await unfinished(store, [*scripts, *quick])

        await eventually(all_ended, timeout=600)
    finally:
        for proc in procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            await asyncio.wait_for(proc.wait(), 120)
    findings = Findings(tasks=len(scripts))
    await check(store, scripts, sidefx, [], findings)
    assert findings.problems == []
    # The dead worker's tasks went on elsewhere, and not before its lease ran out (the
    # workers are named, so no one may judge it dead from its pid).
    for task_id, lease_until in leases.items():
        journal = await store.task_journal(task_id)
        resumed = [e for e in journal if e.kind is EventKind.RESUMED]
        assert resumed, f"task#{task_id} was not taken up again"
        assert lease_until is not None
        assert resumed[0].at >= lease_until
        assert resumed[0].at.timestamp() < killed_at + LEASE + 30
    # Claims never overlapped: each quick task said its one line once, and ended once.
    for task_id in quick:
        journal = await store.task_journal(task_id)
        assert [e.kind for e in journal].count(EventKind.TEXT) == 1
        assert [e.kind for e in journal].count(EventKind.FINAL) == 1
        assert (await store.get_task(task_id)).status is TaskStatus.COMPLETED



async def _members(store: TaskStore, prefix: str) -> list[str]:
    return [m.name for m in await store.cluster.members() if m.name.startswith(prefix)]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_kill_reaches_another_process_without_polling(make_store: MakeStore,
                                                              tmp_path: Path) -> None:
    store = await make_store(clock_=utcnow)
    config, env, _ = worker_files(tmp_path, store.settings.database.url, concurrency=4)
    # Polling every ten minutes: only the notification can stop the run in time.
    config.write_text(config.read_text().replace("poll_interval_seconds = 0.2",
                                                 "poll_interval_seconds = 600"), encoding="utf-8")
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "taskops.cli", "worker", "--config", str(config), "--name", "far",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    assert worker.stderr is not None
    try:
        async def listening() -> bool:
            return bool(await _members(store, "taskops worker far:"))

        async def in_step() -> bool:
            return EventKind.TEXT in [e.kind for e in await store.task_journal(task.id)]

        await eventually(listening, 300)
        task = await store.create_task(TaskDraft(
            name="k", prompt="!say working\n!wait 900\n!say never\n!end completed never"))
        await eventually(in_step, 300)
        await asyncio.sleep(0.5)  # past the worker's first look at its holdings
        killed = await store.kill_task(task.id, by="Ann")
        async with asyncio.timeout(200):  # a third of the polling interval
            while True:
                line = (await worker.stderr.readline()).decode()
                assert line, "the worker exited early"
                if f"task#{task.id} stopped (killed)" in line:
                    break
        assert (await store.get_task(task.id)).event_count == killed.event_count
    finally:
        worker.send_signal(signal.SIGTERM)
        await asyncio.wait_for(worker.communicate(), 120)
