"""The runtime as one service: the worker and the triggers (and the demo loop), as run by
``taskops worker`` and inside ``taskops run``."""

from __future__ import annotations

import asyncio

from taskops.config import Settings
from taskops.runtime.demo import run_demo
from taskops.runtime.providers import Providers
from taskops.runtime.triggers import Triggers
from taskops.runtime.worker import Worker
from taskops.storage.store import TaskStore


async def run_runtime(store: TaskStore, settings: Settings, stop: asyncio.Event, *,
                      demo: bool = False, worker_id: str | None = None,
                      triggers: bool = True) -> None:
    """Run until ``stop`` is set; returns once every run has stopped and been released.

    ``triggers=False``: the caller runs them (``taskops run``, only while it leads)."""
    providers = Providers(settings, fallback="scripted") if demo else None
    worker = Worker(store, settings, worker_id=worker_id, providers=providers)
    async with asyncio.TaskGroup() as group:
        group.create_task(worker.run(stop), name="worker")
        if triggers:
            group.create_task(Triggers(store, settings).run(stop), name="triggers")
        if demo:
            group.create_task(run_demo(store, stop), name="demo")
