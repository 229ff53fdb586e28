"""`taskops worker` and `taskops run` really run tasks (real processes)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from taskops.config import load_settings
from taskops.storage.db import migrate
from taskops.storage.domain import TaskStatus
from taskops.storage.store import TaskStore
from tests.fakegram import FakeTelegram
from tests.fakegram.fixtures import fakegram
from tests.runtime.conftest import submit, wait_ended

__all__ = ["fakegram"]

ROOT = Path(__file__).resolve().parents[2]


def env(extra: dict[str, str] | None = None) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("TASKOPS_")}
    out["PYTHONPATH"] = str(ROOT)
    out.update(extra or {})
    return out


async def stop(proc: asyncio.subprocess.Process) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    return err.decode()


async def test_taskops_worker_runs_submitted_tasks_and_stops_cleanly(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'w.db'}"
    config = tmp_path / "taskops.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[runtime]\npoll_interval_seconds = 0.1\n',
                      encoding="utf-8")
    await migrate(url)
    store = await TaskStore.open(load_settings(str(config), env={}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "taskops.cli", "worker", "--config", str(config), cwd=tmp_path,
        env=env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        task = await submit(store, "!say hi\n!end completed from the worker process")
        done = await wait_ended(store, task.id, timeout=30)
        assert (done.status, done.summary) == (TaskStatus.COMPLETED, "from the worker process")
        stderr = await stop(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await store.close()
    assert proc.returncode == 0, stderr
    assert f"→ task#{task.id} started (scripted/scripted)" in stderr
    assert f"← task#{task.id} finished" in stderr
    assert stderr.rstrip().endswith("stopped")


async def test_taskops_run_starts_the_worker(fakegram: FakeTelegram, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"
    config = tmp_path / "taskops.toml"
    config.write_text(f'[telegram]\nbase_url = "{fakegram.bot_base_url}"\n'
                      f'[database]\nurl = "{url}"\n', encoding="utf-8")
    await migrate(url)
    store = await TaskStore.open(load_settings(str(config), env={}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "taskops.cli", "run", "--config", str(config), cwd=tmp_path,
        env=env({"TASKOPS_TELEGRAM_TOKEN": fakegram.token, "TASKOPS_ADMIN_IDS": "1001"}),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        task = await submit(store, "!end completed ran inside taskops run")
        done = await wait_ended(store, task.id, timeout=30)
        assert done.summary == "ran inside taskops run"
        stderr = await stop(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await store.close()
    assert proc.returncode == 0, stderr
    assert stderr.rstrip().endswith("stopped")
