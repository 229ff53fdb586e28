"""Fixtures for the runtime: stores with tuned settings, a running worker, waiting helpers."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from taskops.runtime.providers import Providers
from taskops.runtime.worker import Worker
from taskops.storage.domain import EventKind, Task, TaskDraft, TaskEvent, TaskStatus
from taskops.storage.store import TaskStore
from tests.conftest import reset_database
from tests.factories import FakeClock, make_settings

Sections = Mapping[str, Mapping[str, Any]]
MakeStore = Callable[..., Awaitable[TaskStore]]

#: what every runtime test store starts from; tests add their own sections on top
BASE_SECTIONS: dict[str, dict[str, Any]] = {
    "ui": {"timezone": "UTC"},
    "runtime": {"poll_interval_seconds": 0.05, "concurrency": 8},
}


def merged(sections: Sections | None) -> dict[str, dict[str, Any]]:
    out = {name: dict(values) for name, values in BASE_SECTIONS.items()}
    for name, values in (sections or {}).items():
        out.setdefault(name, {}).update(values)
    return out


@pytest.fixture
async def make_store(db_url: str, tmp_path: Path,
                     clock: FakeClock) -> AsyncIterator[MakeStore]:
    """Open stores on one fresh database (the first call resets it), closed at the end."""
    opened: list[TaskStore] = []

    async def make(sections: Sections | None = None, *, clock_: Any = clock,
                   **options: Any) -> TaskStore:
        settings = make_settings(tmp_path, db_url, merged(sections))
        store = await TaskStore.open(settings, clock=clock_, **options)
        if not opened:
            await reset_database(store)
            await store.rebuild_counts()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


@asynccontextmanager
async def running_worker(store: TaskStore, **options: Any) -> AsyncIterator[Worker]:
    """A worker on ``store``, checking every 10 ms, stopped (and awaited) on exit."""
    options.setdefault("check_interval", 0.01)
    stop = asyncio.Event()
    worker = Worker(store, store.settings, **options)
    job = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(job, 20)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    """Wait until ``check()`` is true; fail after ``timeout`` seconds (a hang, not a
    timing assertion)."""
    async with asyncio.timeout(timeout):
        for _ in itertools.count():
            if await check():
                return
            await asyncio.sleep(0.005)


async def until_written(store: TaskStore, task_id: int, kind: EventKind,
                        count: int = 1) -> None:
    """Wait until the task has at least ``count`` events of ``kind``."""
    async def written() -> bool:
        return (await kinds(store, task_id)).count(kind) >= count

    await eventually(written)


async def until_gone(worker: Worker, task_id: int) -> None:
    """Wait until the worker no longer runs the task."""
    async def gone() -> bool:
        return task_id not in worker.runs

    await eventually(gone)


async def wait_status(store: TaskStore, task_id: int, *statuses: TaskStatus,
                      timeout: float = 20.0) -> Task:
    async def reached() -> bool:
        return (await store.get_task(task_id)).status in statuses

    await eventually(reached, timeout)
    return await store.get_task(task_id)


async def wait_ended(store: TaskStore, task_id: int, timeout: float = 20.0) -> Task:
    return await wait_status(store, task_id, TaskStatus.COMPLETED, TaskStatus.FAILED,
                             timeout=timeout)


async def events(store: TaskStore, task_id: int) -> list[TaskEvent]:
    return list((await store.list_events(task_id, limit=10_000)).events)


async def kinds(store: TaskStore, task_id: int) -> list[EventKind]:
    return [e.kind for e in await events(store, task_id)]


async def submit(store: TaskStore, prompt: str, name: str = "t", **draft: Any) -> Task:
    return await store.create_task(TaskDraft(name=name, prompt=prompt, **draft))


async def wait_in_step(worker: Worker, task_id: int) -> None:
    """Wait until the worker runs the task (its run exists and has begun)."""
    async def running() -> bool:
        run = worker.runs.get(task_id)
        return run is not None and run.task.id == task_id

    await eventually(running)


def providers_with_fast_retries(store: TaskStore) -> Providers:
    from taskops.config import ProviderKind
    from taskops.runtime.openai_chat import OpenAIProvider

    return Providers(store.settings, factories={
        ProviderKind.OPENAI: lambda config: OpenAIProvider(config, retry_backoff_seconds=0.01)})
