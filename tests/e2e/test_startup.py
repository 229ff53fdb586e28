"""`taskops run` and `check-config` before the console is up: what is missing or wrong is one
line on stderr, and a failed start leaves the store as it was."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.e2e.harness import ADMIN_ID
from tests.e2e.test_process import run_cli
from tests.fakegram import FakeTelegram


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(tmp_path: Path, base_url: str) -> Path:
    config = tmp_path / "taskops.toml"
    config.write_text(f'[telegram]\nbase_url = "{base_url}"\n'
                      f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "t.db"}"\n')
    return config


async def run_and_fail(fakegram: FakeTelegram, tmp_path: Path, base_url: str,
                       token: str | None = None) -> str:
    config = write_config(tmp_path, base_url)
    code, _, err = await run_cli(
        "run", "--demo", "--config", str(config), cwd=tmp_path,
        env={"TASKOPS_TELEGRAM_TOKEN": token or fakegram.token,
             "TASKOPS_ADMIN_IDS": str(ADMIN_ID)})
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    # --demo seeds only once the console runs: nothing was written for a failed start.
    code, out, err = await run_cli("submit", "--name", "n", "--prompt", "p",
                                   "--config", str(config), env={}, cwd=tmp_path)
    assert (code, out.strip()) == (0, "1"), err
    return lines[0]


async def test_an_unreachable_bot_api_is_one_line(fakegram: FakeTelegram,
                                                  tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/bot"
    line = await run_and_fail(fakegram, tmp_path, url)
    assert line.startswith(f"taskops: cannot reach the Bot API at {url}: "), line


async def test_a_server_that_is_no_bot_api_is_named_as_such(fakegram: FakeTelegram,
                                                             tmp_path: Path) -> None:
    url = f"{fakegram.url}/elsewhere/bot"
    line = await run_and_fail(fakegram, tmp_path, url)
    assert line == (f"taskops: {url} is not a Bot API server (its answer to getMe is not "
                    "JSON); check [telegram] base_url")


async def test_a_rejected_token_is_one_line_without_the_token(fakegram: FakeTelegram,
                                                              tmp_path: Path) -> None:
    line = await run_and_fail(fakegram, tmp_path, fakegram.bot_base_url, token="42:WRONG-token")
    assert line == (f"taskops: the Bot API at {fakegram.bot_base_url} rejected the bot token "
                    "(Unauthorized); check TASKOPS_TELEGRAM_TOKEN")


@pytest.mark.parametrize(("base_url", "problem"), [
    ("http://127.0.0.1:8081", "must end in /bot"),
    ("http://127.0.0.1:8081/bot/", "must end in /bot"),
    ("http://127.0.0.1:70000/bot", "the port must be a number from 1 to 65535"),
    ("http://127.0.0.1:80a/bot", "the port must be a number from 1 to 65535"),
    ("http://127.0.0.1:8081/bot?x=1", "must have no query or fragment"),
    ("127.0.0.1:8081/bot", "must be an http(s) URL"),
])
async def test_check_config_rejects_a_base_url_run_cannot_use(tmp_path: Path, base_url: str,
                                                              problem: str) -> None:
    config = write_config(tmp_path, base_url)
    code, _, err = await run_cli("check-config", "--config", str(config), env={}, cwd=tmp_path)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"config: [telegram] base_url: {problem}"), err
    assert lines[0].endswith(f"got {base_url!r}"), err


async def test_check_config_names_what_run_needs(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[telegram]\nmode = "webhook"\nwebhook_url = "https://bot.example.com/hook"\n')
    code, out, err = await run_cli("check-config", env={}, cwd=tmp_path)
    assert code == 3
    assert "[telegram]" in out
    assert err.strip().splitlines() == [
        "taskops: no Telegram bot token: set TASKOPS_TELEGRAM_TOKEN "
        "(or [telegram] token in the config file)",
        "taskops: no admins: set TASKOPS_ADMIN_IDS to the Telegram user ids allowed to use "
        "the console (or [telegram] admin_ids)",
        'taskops: no webhook secret: set [telegram] webhook_secret, which Telegram sends with '
        'every update, when mode is "webhook"',
        "taskops: the config is valid, but `taskops run` needs the above "
        "(worker, migrate, submit and seed-demo do not)"]
    code, _, err = await run_cli("check-config", cwd=tmp_path, env={
        "TASKOPS_TELEGRAM_TOKEN": "123456:test-token-of-a-real-length", "TASKOPS_ADMIN_IDS": "7"})
    assert code == 3
    assert err.startswith("taskops: no webhook secret")
    (tmp_path / "config.toml").write_text("")
    code, _, err = await run_cli("check-config", cwd=tmp_path, env={
        "TASKOPS_TELEGRAM_TOKEN": "123456:test-token-of-a-real-length", "TASKOPS_ADMIN_IDS": "7"})
    assert (code, err) == (0, "")
