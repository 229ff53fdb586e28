"""`taskops run` as a real process against the fake Telegram server."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import ADMIN_ID
from tests.fakegram import FakeTelegram

TASKOPS = [sys.executable, "-m", "taskops.cli"]
ROOT = Path(__file__).resolve().parents[2]


def process_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKOPS_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


async def run_cli(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *TASKOPS, *args, env=process_env(env), cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_run_answers_an_admin_and_stops_cleanly(
        fakegram: FakeTelegram, tmp_path: Path, stop_signal: signal.Signals) -> None:
    config = tmp_path / "taskops.toml"
    config.write_text(f'[telegram]\nbase_url = "{fakegram.bot_base_url}"\n'
                      f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "t.db"}"\n')
    admin = fakegram.add_user(ADMIN_ID, "Ann")
    dm = fakegram.private_chat(admin)
    proc = await asyncio.create_subprocess_exec(
        *TASKOPS, "run", "--config", str(config), cwd=tmp_path,
        env=process_env({"TASKOPS_TELEGRAM_TOKEN": fakegram.token,
                         "TASKOPS_ADMIN_IDS": str(ADMIN_ID)}),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        # Queued before the bot polls; delivered by its first getUpdates.
        await fakegram.send_text(admin, dm, "/start")
        await fakegram.wait_for(lambda: fakegram.last_bot_message(dm) is not None, timeout=30)
        proc.send_signal(stop_signal)
        _, err = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stderr = err.decode()
    assert proc.returncode == 0, stderr
    assert "taskops running as @taskops_bot" in stderr
    assert stderr.rstrip().endswith("stopped")
    assert fakegram.token not in stderr
    assert fakegram.token.split(":")[1] not in stderr


async def test_without_a_token_run_exits_2_with_one_line(tmp_path: Path) -> None:
    code, _out, err = await run_cli("run", env={"TASKOPS_ADMIN_IDS": "1"}, cwd=tmp_path)
    assert code == 2
    assert err.strip().splitlines() == [
        "taskops: no Telegram bot token: set TASKOPS_TELEGRAM_TOKEN "
        "(or [telegram] token in the config file)"]


@pytest.mark.parametrize(("toml", "expected"), [
    ('[ui]\ntimezone = "Mars/Base"\n', "[ui] timezone"),
    ("[ui]\npage_size = 50\n", "[ui] page_size"),
    ('[database]\nurl = "mysql://x"\n', "[database] url"),
    ("[tasks]\nmax_duration_minutes = -5\n", "[tasks] max_duration_minutes"),
    ("[nope]\n", "[nope]"),
])
async def test_bad_config_exits_2_naming_the_key(tmp_path: Path, toml: str,
                                                 expected: str) -> None:
    (tmp_path / "config.toml").write_text(toml)
    code, _, err = await run_cli("check-config", env={}, cwd=tmp_path)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert expected in lines[0], err


async def test_check_config_masks_secrets(tmp_path: Path) -> None:
    code, out, _ = await run_cli("check-config", cwd=tmp_path, env={
        "TASKOPS_TELEGRAM_TOKEN": "999:SECRET-TOKEN-VALUE", "TASKOPS_ADMIN_IDS": "1",
        "TASKOPS_DATABASE_URL": "postgresql://u:hunter2pass@db/taskops"})
    assert code == 0
    assert "SECRET-TOKEN-VALUE" not in out
    assert "hunter2pass" not in out
    assert "[telegram]" in out


async def test_check_config_warns_of_a_secret_too_short_to_redact(tmp_path: Path) -> None:
    code, _, err = await run_cli("check-config", cwd=tmp_path, env={
        "TASKOPS_TELEGRAM_TOKEN": "999:SECRET-TOKEN-VALUE", "TASKOPS_ADMIN_IDS": "1",
        "TASKOPS_DATABASE_URL": "postgresql://u:pw1@db/taskops"})
    assert code == 0, err
    assert err.strip() == (
        "taskops: warning: the [database] url's password is shorter than 6 characters: a "
        "secret that short cannot be told from ordinary text, so logs and messages do not "
        "redact it; use a longer one")


async def test_migrate_submit_and_seed(tmp_path: Path) -> None:
    env = {"TASKOPS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}
    code, out, err = await run_cli("migrate", env=env, cwd=tmp_path)
    assert code == 0, err
    code, out, err = await run_cli("submit", "--name", "n <b>", "--prompt", "p", env=env,
                                   cwd=tmp_path)
    assert code == 0, err
    assert out.strip() == "1"
    code, out, err = await run_cli("submit", "--name", "x", "--prompt", "p", "--provider",
                                   "openai", "--model", "gpt-4o", "--trigger", "cronjob",
                                   "--parent-chat", "42", env=env, cwd=tmp_path)
    assert (code, out.strip()) == (0, "2"), err
    code, out, err = await run_cli("submit", "--name", "x", "--prompt", " ", env=env,
                                   cwd=tmp_path)
    assert code == 2
    assert err.strip() == "taskops: A task prompt must not be empty."
    code, out, err = await run_cli("seed-demo", "--tasks", "50", "--seed", "3", env=env,
                                   cwd=tmp_path)
    assert code == 0, err
    assert out.startswith("seeded 50 tasks")


# A process whose stop hangs (here: a task that ignores cancellation, as a library call
# stuck in a retry sleep would) is ended at the stop deadline, naming what it waited for.
HANGING_STOP = """
import asyncio, logging, sys
import taskops.cli as cli
cli.STOP_DEADLINE_SECONDS = float(sys.argv[1])
logging.basicConfig(level=logging.INFO)

async def stuck_in_cleanup():
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass

async def main():
    stop = cli._stop_on_signals()
    asyncio.create_task(stuck_in_cleanup(), name="stuck-cleanup")
    print("ready", flush=True)
    await stop.wait()
    await asyncio.Event().wait()  # the stop never finishes

asyncio.run(main())
"""


@pytest.mark.parametrize(("deadline", "signals"), [(0.5, 1), (60.0, 2)])
async def test_a_stop_that_hangs_ends_at_the_deadline_or_a_second_signal(
        tmp_path: Path, deadline: float, signals: int) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HANGING_STOP, str(deadline), env=process_env({}), cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"ready\n"
        for _ in range(signals):
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.2)
        _, err = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stderr = err.decode()
    assert proc.returncode == 1, stderr
    why = "a second signal" if signals == 2 else "stopping took longer than"
    assert why in stderr, stderr
    assert "stuck-cleanup at <string>:10" in stderr, stderr
