"""Small builders for settings, clocks and tasks used across the test suite."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from taskops.config import Settings, load_settings
from taskops.storage.domain import (
    EventKind,
    ProviderChoice,
    ResultStatus,
    Task,
    TaskDraft,
    TaskStatus,
    Trigger,
)
from taskops.storage.store import TaskStore


class FakeClock:
    """A controllable clock for the store (tests never sleep to move time)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def set(self, at: datetime) -> None:
        self.now = at

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)


def make_settings(tmp_path: Path, db_url: str,
                  sections: Mapping[str, Any] | None = None,
                  env: Mapping[str, str] | None = None) -> Settings:
    """Write a config file with the given sections and load it like the CLI does.

    A section given as a list of tables is written as ``[[name]]`` (e.g. cronjobs).
    """
    all_sections: dict[str, Any] = {"database": {"url": db_url}}
    for name, values in (sections or {}).items():
        if isinstance(values, list):
            all_sections[name] = values
        else:
            all_sections.setdefault(name, {}).update(values)
    lines: list[str] = []
    for name, values in all_sections.items():
        for table in values if isinstance(values, list) else [values]:
            lines.append(f"[[{name}]]" if isinstance(values, list) else f"[{name}]")
            lines.extend(f"{key} = {_toml_value(value)}" for key, value in table.items())
            lines.append("")
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return load_settings(str(path), env=dict(env or {}))


async def make_task(store: TaskStore, clock: FakeClock, *, name: str = "task",
                    prompt: str = "do it", trigger: Trigger = Trigger.USER,
                    provider: ProviderChoice | None = None, created: datetime | None = None,
                    run_seconds: float | None = None, final: str | None = None,
                    tokens: tuple[int, int] = (0, 0), killed: bool = False,
                    started: bool = True) -> Task:
    """Create a task through the store API and drive it to the requested state."""
    if created is not None:
        clock.set(created)
    task = await store.create_task(TaskDraft(name=name, prompt=prompt, trigger=trigger,
                                             provider=provider or ProviderChoice.default()))
    if not started:
        if killed:
            return await store.kill_task(task.id, by="tester")
        return task
    await store.start_task(task.id)
    if tokens != (0, 0):
        await store.append_event(task.id, EventKind.TEXT, {"text": "working"},
                                 prompt_tokens=tokens[0], completion_tokens=tokens[1])
    if run_seconds is not None:
        clock.advance(run_seconds)
    if killed:
        return await store.kill_task(task.id, by="tester")
    if final is not None:
        return await store.finish_task(task.id, final)
    return await store.get_task(task.id)


def sample_task(**changes: Any) -> Task:
    """A finished task as the store returns it, without a store (for rendering and parsers)."""
    at = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    values: dict[str, Any] = dict(
        id=7, name="nightly report", prompt="do it", status=TaskStatus.FAILED,
        trigger=Trigger.USER, trigger_source_id=None, provider="openai", model="gpt-4o",
        used_default=False, max_duration_minutes=60, parent_session=None,
        restarted_from_id=None, created_at=at, started_at=at, finished_at=at,
        prompt_tokens=10, completion_tokens=5, cost_usd=0.01, tool_call_count=0,
        result_status=ResultStatus.FAILED, summary="boom", error="boom", killed_by=None,
        last_event_at=at, event_count=3)
    values.update(changes)
    return Task(**values)


async def assert_totals_kept(store: TaskStore) -> None:
    """``task_totals`` equals the day counters summed over the days (no zero rows kept
    apart from what the counters sum to)."""
    from sqlalchemy import func, select

    from taskops.storage.models import TaskCountRow, TaskTotalRow
    c, t = TaskCountRow, TaskTotalRow
    async with store.engines.read.connect() as conn:
        summed = {tuple(r[:5]): int(r[5]) for r in await conn.execute(
            select(c.status, c.trigger, c.provider, c.model, c.used_default, func.sum(c.n))
            .group_by(c.status, c.trigger, c.provider, c.model, c.used_default))}
        totals = {tuple(r[:5]): int(r[5]) for r in await conn.execute(
            select(t.status, t.trigger, t.provider, t.model, t.used_default, t.n))}
    assert {k: n for k, n in totals.items() if n} == {k: n for k, n in summed.items() if n}

