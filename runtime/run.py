"""One run of one task: the agent loop between a provider, the tools and the store.

:class:`TaskRun` is the :class:`AgentIO` a provider talks to. Each thing the agent does
is written to the store at once; token usage rides on the next event. The run ends by
handing the final message to ``store.finish_task`` (which parses the format, pauses on a
question and writes the final and injection events), or by failing the task for a
runtime reason (loop detected, provider error, bad script).

Stopping (kill, max duration, worker shutdown) cancels the run's asyncio task, but never
in the middle of a store write: a write in flight completes first (the store refuses
events once the task has ended) and the run stops right after it. So a kill interrupts a
provider stream, a tool or a wait at once, and no database call is ever cut in half.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from taskops.config import Settings, ThinkingLevel
from taskops.runtime.agent import Provider, ProviderError, RunContext, ToolOutcome
from taskops.runtime.lifecycle import answers_of
from taskops.runtime.loops import LoopDetected, LoopDetector
from taskops.runtime.scripted import ScriptError
from taskops.runtime.tools import ToolRegistry
from taskops.storage.domain import (
    EventKind,
    InvalidTransition,
    Task,
    TaskEvent,
    TaskStatus,
    Usage,
)
from taskops.storage.rules import elapsed_seconds
from taskops.storage.store import TaskStore

log = logging.getLogger("taskops.runtime")
T = TypeVar("T")


class RunEnd(StrEnum):
    #: the final message completed or failed the task
    FINISHED = "finished"
    #: the final message asked a question; the claim is released until it is answered
    PAUSED = "paused"
    #: the runtime failed the task (loop detected, provider error, bad script, crash)
    FAILED = "failed"
    #: stopped from outside: killed, max duration, lost claim, or the worker stopping
    STOPPED = "stopped"


class RunStopped(BaseException):
    """Unwinds a provider once the run must stop; a BaseException so that no
    ``except Exception`` in provider or tool code can swallow it."""


class TaskRun:
    def __init__(self, store: TaskStore, settings: Settings, task: Task, provider: Provider,
                 tools: ToolRegistry, worker_id: str,
                 history: tuple[TaskEvent, ...] | None = None) -> None:
        self.store = store
        self.settings = settings
        self.task = task
        self.provider = provider
        self.tools = tools
        self.worker_id = worker_id
        #: the events before this claim; None for a task claimed new (nothing to read)
        self.history = history
        self.loops = LoopDetector(settings.tasks)
        self.claimed_at = store.clock()
        #: status updates written so far, counted in whole update periods since the start
        self.progress_mark: int | None = None
        self.stop_reason: str | None = None
        self.end: RunEnd | None = None
        #: set once the final message is being stored: a stop then has nothing to stop
        self._finishing = False
        self._usage: list[Any] = [0, 0, None]
        self._writing = False
        self._aio: asyncio.Task[RunEnd] | None = None
        self._started = time.monotonic()

    # --- control (called by the worker) -------------------------------------------------

    def start(self) -> asyncio.Task[RunEnd]:
        self._aio = asyncio.create_task(self._drive(), name=f"task#{self.task.id}")
        return self._aio

    def stop(self, reason: str) -> None:
        """Stop the run as soon as no store write is in flight."""
        if self.stop_reason is not None or self._finishing:
            return
        self.stop_reason = reason
        if self._aio is not None and not self._writing:
            self._aio.cancel()

    @property
    def done(self) -> bool:
        return self._aio is not None and self._aio.done()

    async def wait(self) -> None:
        if self._aio is not None:
            await asyncio.wait([self._aio])

    def elapsed_seconds(self, now: datetime) -> float:
        """Wall-clock seconds since the task started (what max duration counts)."""
        return elapsed_seconds(self.task.started_at or self.claimed_at, now)

    # --- the loop -----------------------------------------------------------------------

    @asynccontextmanager
    async def _writing_section(self) -> AsyncIterator[None]:
        self._writing = True
        try:
            yield
        finally:
            self._writing = False
        if self.stop_reason is not None:
            raise RunStopped

    async def _write(self, call: Awaitable[T]) -> T:
        async with self._writing_section():
            return await call

    async def _drive(self) -> RunEnd:
        self.end = await self._run()
        elapsed = time.monotonic() - self._started
        log.info("%7.2fs ← task#%d %s%s", elapsed, self.task.id, self.end.value,
                 f" ({self.stop_reason})" if self.stop_reason else "")
        return self.end

    async def _run(self) -> RunEnd:
        task_id = self.task.id
        try:
            ctx = RunContext(task=self.task, answers=answers_of(self.history or ()),
                             history=self.history or (), tools=self.tools.specs(),
                             thinking=self.settings.tasks.thinking_level is not ThinkingLevel.OFF)
            final = await self.provider.run(ctx, self)
            return await self._write(self._finish(final))
        except (RunStopped, asyncio.CancelledError):
            if self.stop_reason is None:
                raise  # cancelled by someone else than the worker: let it propagate
            return RunEnd.STOPPED
        except InvalidTransition:
            # The task ended while the final message was on its way (a kill won the race).
            self.stop_reason = self.stop_reason or "ended meanwhile"
            return RunEnd.STOPPED
        except LoopDetected as exc:
            return await self._fail(exc.error_for(task_id))
        except (ProviderError, ScriptError) as exc:
            return await self._fail(str(exc))
        except Exception as exc:
            log.exception("task#%d: the run crashed", task_id)
            return await self._fail(f"Worker error: {type(exc).__name__}: {exc}")

    async def _finish(self, final: str) -> RunEnd:
        self._finishing = True
        ended = await self.store.finish_task(self.task.id, final, self._take_usage())
        if ended.status is TaskStatus.PAUSED:
            # Whoever sees the answer first continues the run, on any worker.
            await self.store.work.release(self.worker_id, [self.task.id])
            return RunEnd.PAUSED
        return RunEnd.FINISHED

    async def _fail(self, error: str) -> RunEnd:
        self._finishing = True
        try:
            failed = await self._write(self.store.fail_task(
                self.task.id, error, allowed=[TaskStatus.RUNNING], usage=self._take_usage()))
        except (RunStopped, asyncio.CancelledError):
            return RunEnd.STOPPED
        return RunEnd.FAILED if failed is not None else RunEnd.STOPPED

    # --- AgentIO ------------------------------------------------------------------------

    def _take_usage(self) -> Usage:
        p, c, cost = self._usage
        self._usage = [0, 0, None]
        return Usage(p, c, cost)

    async def _record(self, kind: EventKind, payload: dict[str, Any]) -> None:
        usage = self._take_usage()
        event = await self._write(self.store.append_event(
            self.task.id, kind, payload, prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens, cost_usd=usage.cost_usd))
        if event is None:  # the task ended (killed, failed by a timer): stop at once
            self.stop_reason = self.stop_reason or "task ended"
            raise RunStopped

    async def thinking(self, text: str) -> None:
        if self.settings.tasks.thinking_level is not ThinkingLevel.OFF and text.strip():
            await self._record(EventKind.THINKING, {"text": text})

    async def say(self, text: str) -> None:
        if text.strip():
            await self._record(EventKind.TEXT, {"text": text})

    async def tool_call(self, name: str, arguments: dict[str, Any] | str, *,
                        outcome: ToolOutcome | None = None) -> ToolOutcome:
        started = time.perf_counter()
        if outcome is None:
            if isinstance(arguments, str):
                outcome = ToolOutcome("Invalid arguments: expected a JSON object, got "
                                      f"{arguments[:200]!r}", is_error=True)
            else:
                outcome = await self.tools.call(name, arguments)
        duration_ms = int((time.perf_counter() - started) * 1000)
        await self._record(EventKind.TOOL_CALL, {
            "tool": name, "arguments": arguments, "result": outcome.result,
            "is_error": outcome.is_error, "duration_ms": duration_ms})
        # After recording, so the call that trips detection is in the timeline too.
        self.loops.observe(name, arguments, outcome.is_error, outcome.result)
        return outcome

    def usage(self, prompt_tokens: int, completion_tokens: int,
              cost_usd: float | None = None) -> None:
        self._usage[0] += max(0, prompt_tokens)
        self._usage[1] += max(0, completion_tokens)
        if cost_usd is not None:
            self._usage[2] = (self._usage[2] or 0.0) + cost_usd

    async def work(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
