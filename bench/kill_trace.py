"""Where the time of a kill goes in the chaos run (``bench/cluster.py --trace-kills``).

Bench side: the kill's own statements (timed on the bench store's engine), its commit,
the bench loop's lag, and the NOTIFY as a listener of the bench's own receives it. Owner
side: ``sitecustomize`` (put on the workers' ``PYTHONPATH``) logs the moment a worker's
kill listener hands it a task id, so the owner's log says when the NOTIFY arrived and the
"stopped (killed)" line when the run was stopped.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event

SITE = '''
import logging, time
from taskops.runtime import worker as _w
_log = logging.getLogger("taskops.runtime")
_orig = _w.Worker._killed_elsewhere
def _traced(self, task_id):
    run = self.runs.get(task_id)
    _log.info("trace: kill heard task#%d here=%s writing=%s finishing=%s listening=%s",
                 task_id, run is not None, getattr(run, "_writing", None),
                 getattr(run, "_finishing", None), self.listening.is_set())
    return _orig(self, task_id)
_w.Worker._killed_elsewhere = _traced
'''


def install_site(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(SITE, encoding="utf-8")
    return directory


@dataclass
class KillTrace:
    task_id: int
    owner: str
    started: float
    committed: float = 0.0
    statements: list[tuple[str, float]] = field(default_factory=list)
    lag_max: float = 0.0
    notified: float | None = None


class Tracer:
    def __init__(self) -> None:
        self.current: KillTrace | None = None
        self.current_task: asyncio.Task[Any] | None = None
        self.kills: dict[int, KillTrace] = {}
        self._lag: float = 0.0
        self._conn: Any = None

    def attach(self, engine: Any) -> None:
        sync = engine.sync_engine

        @event.listens_for(sync, "before_cursor_execute")
        def _before(_c: Any, _cur: Any, statement: str, _p: Any, context: Any, _m: bool) -> None:
            if self.current is not None and asyncio.current_task() is self.current_task:
                context.trace_started = time.perf_counter()

        @event.listens_for(sync, "after_cursor_execute")
        def _after(_c: Any, _cur: Any, statement: str, _p: Any, context: Any, _m: bool) -> None:
            started = getattr(context, "trace_started", None)
            if started is not None and self.current is not None:
                self.current.statements.append(
                    (" ".join(statement.split())[:40], (time.perf_counter() - started) * 1000))

    async def listen(self, dsn: str) -> None:
        import asyncpg
        self._conn = await asyncpg.connect(dsn)

        def got(_c: Any, _pid: int, _ch: str, payload: str) -> None:
            trace = self.kills.get(int(payload))
            if trace is not None and trace.notified is None:
                trace.notified = time.time()
        await self._conn.add_listener("taskops_kill", got)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()

    async def lag_monitor(self, done: asyncio.Event) -> None:
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            lag = (time.perf_counter() - before - 0.005) * 1000
            if self.current is not None:
                self.current.lag_max = max(self.current.lag_max, lag)

    def begin(self, task_id: int, owner: str) -> KillTrace:
        trace = KillTrace(task_id, owner, time.time())
        self.current, self.current_task = trace, asyncio.current_task()
        self.kills[task_id] = trace
        return trace

    def end(self) -> None:
        if self.current is not None:
            self.current.committed = time.time()
        self.current = None
