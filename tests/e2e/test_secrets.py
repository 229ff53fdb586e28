"""Secrets never leave, end to end (issue 18).

The console, the worker and the store run in-process against the fake Telegram server,
configured with every kind of secret: the bot token, a database password that needs
%-encoding, a webhook secret and a provider's API key. A scripted run echoes them the way
agents, tools and providers do (whole, %-encoded, in a ``Bearer`` header, cut short in a
provider's 401 text, split across two messages) and fails with such an error; an admin
subscribed to every status gets its notifications and opens the task. Nothing of any
secret is then in the store's rows, in any request to Telegram, or in the log. The
command line is run as a process: a broken database URL, an unreachable database, a task
named with a key.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import sqlite3
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from taskops.bot.context import deps_of
from taskops.bot.push.service import PushService
from taskops.bot.push.subscription import NotifySettings
from taskops.logs import RedactFilter
from taskops.runtime.service import run_runtime
from taskops.storage.domain import TaskDraft, TaskStatus
from tests.e2e.harness import command, running_console
from tests.e2e.test_process import run_cli
from tests.fakegram import FakeTelegram
from tests.test_redaction import leaked

PASSWORD = "S3cr@t/pw#Rq8"
WEBHOOK = "hook-Secret_Zq0123456789"
API_KEY = "sk-proj-E2eKeyAbcdef0123456789XYZ"
KEY_ENV = "TASKOPS_TEST_PROVIDER_KEY"
TABLES = ("tasks", "task_events", "task_names", "console_state", "subscriptions", "audit_log")


def secrets(token: str) -> list[str]:
    return [token, PASSWORD, WEBHOOK, API_KEY]


def script(token: str) -> str:
    half = len(API_KEY) // 2
    return "\n".join([
        "Secret probe.",
        f"!say connecting with postgresql://ops:{quote(PASSWORD, safe='')}@db/x and {token}",
        f'!tool http {{"headers": {{"Authorization": "Bearer {API_KEY}"}}}} -> 200 {WEBHOOK}',
        f"!say first half {API_KEY[:half]}",
        f"!say second half {API_KEY[half:]}",
        f'!tool http {{"url": "https://api.example.com"}} !! 401 Invalid API key: '
        f"Bearer {API_KEY[:14]}…",
        f"!end failed Invalid API key: Bearer {API_KEY[:12]}… (password {PASSWORD})",
    ])


def assert_clean(where: str, output: str, token: str) -> None:
    for secret in secrets(token):
        assert leaked(output, secret) == [], f"{where} leaks {secret!r}: {output[-2000:]}"


async def test_no_secret_reaches_the_store_telegram_or_the_log(
        fakegram: FakeTelegram, tmp_path: Path, own_postgres_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, API_KEY)
    url = make_url(own_postgres_url).set(password=PASSWORD).render_as_string(
        hide_password=False)
    sections = {"telegram": {"webhook_secret": WEBHOOK},
                "providers.openai": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1",
                                     "api_key_env": KEY_ENV, "models": ["gpt-4o"]}}
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # httpx's request lines carry the token in the URL
    try:
        async with running_console(fakegram, tmp_path, db_url=url,
                                   sections=sections) as console:
            store = console.store
            await store.push.subscribe(console.admin.id, NotifySettings(
                statuses=frozenset(TaskStatus)).to_json(), console.admin.id)
            service = deps_of(console.app).push
            assert isinstance(service, PushService)
            service.poke()
            stop = asyncio.Event()
            runtime = asyncio.create_task(run_runtime(store, console.settings, stop))
            try:
                task = await store.create_task(TaskDraft(name=f"probe {API_KEY}",
                                                         prompt=script(fakegram.token)))
                for _ in range(300):
                    current = await store.find_task(task.id)
                    if current is not None and current.status is TaskStatus.FAILED:
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError("the probe did not fail")
                await fakegram.wait_for(lambda: any(
                    "failed" in (m.text or "") for m in fakegram.messages(console.admin.id)
                    if m.from_bot), timeout=30)
                await command(console, f"/task {task.id}")
            finally:
                stop.set()
                await asyncio.wait_for(runtime, 60)
            async with store.db.engines.write.connect() as conn:
                rows = [json.dumps([*row], default=str, ensure_ascii=False) for table in TABLES
                        for row in (await conn.execute(text(f"SELECT * FROM {table}"))).all()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    stored = "\n".join(rows)
    assert "Invalid API key" in stored
    assert "first half" in stored
    assert_clean("the store", stored, fakegram.token)
    requests = "\n".join(json.dumps(c.params, default=str, ensure_ascii=False)
                         for c in fakegram.calls)
    assert "Invalid API key" in requests
    assert_clean("a request to Telegram", requests, fakegram.token)
    assert "getUpdates" in log.getvalue() or "HTTP Request" in log.getvalue()
    assert_clean("the log", log.getvalue(), fakegram.token)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_the_command_line_never_prints_a_secret(tmp_path: Path) -> None:
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    env = {"TASKOPS_TELEGRAM_TOKEN": token, KEY_ENV: API_KEY}
    config = tmp_path / "taskops.toml"
    base = (f'[telegram]\nwebhook_secret = "{WEBHOOK}"\n[providers.openai]\nkind = "openai"\n'
            f'base_url = "http://127.0.0.1:9/v1"\napi_key_env = "{KEY_ENV}"\n'
            'models = ["gpt-4o"]\n')
    encoded = quote(PASSWORD, safe="")
    # a database URL that does not parse: the error names the key, not the value
    for broken in (f"::postgres:{encoded}…@@", f"postgresql://ops:{encoded}@db:port/x",
                   f"mysql://ops:{encoded}@db/x"):
        config.write_text(base + f'[database]\nurl = "{broken}"\n')
        code, out, err = await run_cli("check-config", "--config", str(config), env=env,
                                       cwd=tmp_path)
        assert code == 2
        assert err.startswith("config: [database] url: ")
        assert_clean("a config error", out + err, token)
    # an unreachable database: one line, no traceback, no password; the traceback is
    # logged at DEBUG (and redacted there too)
    unreachable = f"postgresql+asyncpg://ops:{encoded}@127.0.0.1:{closed_port()}/taskops"
    config.write_text(base + f'[database]\nurl = "{unreachable}"\n')
    for cli in (["migrate"], ["submit", "--name", "x", "--prompt", "y"], ["worker"]):
        code, out, err = await run_cli(*cli, "--config", str(config), env=env, cwd=tmp_path)
        assert code == 1, err
        assert err.splitlines() == [err.strip()], err
        assert err.startswith("taskops: cannot reach the database at postgresql+asyncpg://ops:***@")
        assert_clean("an unreachable database", out + err, token)
    code, out, err = await run_cli("migrate", "--debug", "--config", str(config), env=env,
                                   cwd=tmp_path)
    assert code == 1
    assert "Traceback" in err
    assert_clean("a traceback at DEBUG", out + err, token)
    # a task named with a key: stored and printed without it
    db = tmp_path / "t.db"
    config.write_text(base + f'[database]\nurl = "sqlite+aiosqlite:///{db}"\n')
    code, out, err = await run_cli("submit", "--name", f"uses {API_KEY}", "--prompt",
                                   f"Bearer {API_KEY} and {token}", "--config", str(config),
                                   env=env, cwd=tmp_path)
    assert code == 0, err
    with sqlite3.connect(db) as conn:
        name, prompt = conn.execute("SELECT name, prompt FROM tasks").fetchone()
    assert (name, prompt) == ("uses ***", "Bearer *** and ***")
    code, out, err = await run_cli("check-config", "--config", str(config), env=env,
                                   cwd=tmp_path)
    assert_clean("check-config", out + err, token)
