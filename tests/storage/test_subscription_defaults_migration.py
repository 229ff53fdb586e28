"""Migration 0009: subscriptions saved with the old default settings (completions on) move
to the quiet default; every other choice stays — on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from taskops.bot.push.subscription import NotifySettings
from taskops.storage.db import migrate
from taskops.storage.domain import Trigger
from taskops.storage.models import SubscriptionRow
from tests import postgres

quiet = importlib.import_module(
    "taskops.storage.migrations.versions.0009_quiet_subscription_defaults")

TRIGGERS = sorted(t.value for t in Trigger)
OLD = {"statuses": ["completed", "failed", "paused"], "triggers": TRIGGERS, "stuck": True}


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of this test's own (no schema yet)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    try:
        server = postgres.ensure_server()
    except postgres.NoServer as error:
        pytest.exit(str(error), returncode=1)
    with postgres.database(server, "taskops_mig") as url:
        yield url


async def settings_after_upgrade(url: str, saved: dict[int, Any]) -> dict[int, Any]:
    await migrate(url, "0008")
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(SubscriptionRow), [
                {"chat_id": chat_id, "settings": settings, "cursor": "", "muted_until": None,
                 "created_by": 1, "created_at": datetime(2026, 11, 30, tzinfo=UTC)}
                for chat_id, settings in saved.items()])
        await migrate(url)
        async with engine.connect() as conn:
            rows = await conn.execute(select(SubscriptionRow.chat_id, SubscriptionRow.settings))
            return {row.chat_id: row.settings for row in rows}
    finally:
        await engine.dispose()


async def test_only_the_old_default_moves_to_the_quiet_default(fresh_url: str) -> None:
    deliberate = {**OLD, "muted_groups": {}}  # completions turned on after the quiet default
    saved = {
        1: OLD,
        -100: {"stuck": True, "triggers": TRIGGERS[::-1],
               "statuses": ["paused", "completed", "failed"]},  # the same, in another order
        2: deliberate,
        3: {**OLD, "stuck": False},
        4: {**OLD, "triggers": ["cronjob", "user"]},
        5: {**OLD, "statuses": ["completed", "failed", "paused", "running"]},
        6: {**OLD, "statuses": ["failed", "paused"]},
        7: {},
    }
    after = await settings_after_upgrade(fresh_url, saved)
    quiet_default = NotifySettings().to_json()
    assert after[1] == quiet_default
    assert after[-100] == quiet_default
    for chat_id in (2, 3, 4, 5, 6, 7):
        assert after[chat_id] == saved[chat_id], chat_id


def test_the_migration_writes_todays_default() -> None:
    assert NotifySettings().to_json() == quiet.NEW_DEFAULT
    assert sorted(t.value for t in Trigger) == quiet.TRIGGERS
