"""One run of one task: the agent loop between a provider, the tools and the store.

:class:`TaskRun` is the :class:`AgentIO` a provider talks to. Everything the agent does
is written to the task's journal (its events) before the agent goes on: each call
returns once the event is committed, so what the agent was told happened survives a
crash. A registered tool runs only after its start is recorded, and its result is
recorded after it — which is what lets a run taken up again (``runtime.resume``) give
recorded results back instead of running calls twice. Token usage rides on the next
event, or on the final message.

The run ends by handing the final message to ``store.finish_task`` (which parses the
format, pauses on a question and writes the final and injection events), or by failing
the task for a runtime reason (loop detected, provider error, bad script). A fault of the
store is never one: writes wait for the store and are retried; a run whose store stays
away past ``[runtime] store_patience_seconds`` stops ("store unavailable") and is taken up
again later from its journal.

Every write of the run (its events, its ending) carries the run's claim (a ``Fence``):
once another worker has taken the task up — this worker was starved or cut off past its
lease — the store refuses the write (``ClaimLost``) and the run stops quietly ("claim
lost"), writing nothing more; the task is the other worker's now.

Stopping (kill, max duration, worker shutdown, a store outage) cancels the run at once —
a provider stream, a tool, a wait, or a wait for the journal — except while the task's
own ending is being written, which completes first (no transaction is cut in half).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from taskops.config import Settings, ThinkingLevel
from taskops.runtime.agent import Provider, ProviderError, RunContext, ToolOutcome
from taskops.runtime.lifecycle import answers_of
from taskops.runtime.loops import LoopDetected, LoopDetector
from taskops.runtime.resume import dangling_calls, is_resume, since_last_answer
from taskops.runtime.scripted import ScriptError
from taskops.runtime.tools import ToolRegistry
from taskops.storage import rules
from taskops.storage.domain import (
    ClaimLost,
    EventKind,
    Fence,
    InvalidTransition,
    Task,
    TaskEvent,
    TaskStatus,
    Usage,
)
from taskops.storage.faults import StoreUnavailable, is_transient, retry
from taskops.storage.rules import elapsed_seconds
from taskops.storage.store import TaskStore

log = logging.getLogger("taskops.runtime")
T = TypeVar("T")

#: the stop reason of a run whose store stayed away too long
STORE_UNAVAILABLE = "store unavailable"
#: the stop reason of a run whose task another worker holds now (it took the task up)
CLAIM_LOST = "claim lost"


class RunEnd(StrEnum):
    #: the final message completed or failed the task
    FINISHED = "finished"
    #: the final message asked a question; the claim is released until it is answered
    PAUSED = "paused"
    #: the runtime failed the task (loop detected, provider error, bad script, crash)
    FAILED = "failed"
    #: stopped from outside: killed, max duration, lost claim, the worker stopping, or
    #: the store away too long (the task stays running and is taken up again)
    STOPPED = "stopped"


class RunStopped(BaseException):
    """Unwinds a provider once the run must stop; a BaseException so that no
    ``except Exception`` in provider or tool code can swallow it."""


class TaskRun:
    def __init__(self, store: TaskStore, settings: Settings, task: Task, provider: Provider,
                 tools: ToolRegistry, fence: Fence,
                 history: tuple[TaskEvent, ...] | None = None) -> None:
        self.store = store
        self.settings = settings
        self.task = task
        self.provider = provider
        self.tools = tools
        #: the claim this run holds the task under; every write carries it
        self.fence = fence
        self.worker_id = fence.worker_id
        #: the task's journal before this claim; None for a task claimed new
        self.history = history
        #: whether this run takes up work that was cut off (a restart, a lost lease)
        self.resumed = history is not None and is_resume(history)
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
        """Stop the run at once (after the task's ending, if that is being written)."""
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

    async def _drive(self) -> RunEnd:
        self.end = await self._run()
        elapsed = time.monotonic() - self._started
        log.info("%7.2fs ← task#%d %s%s", elapsed, self.task.id, self.end.value,
                 f" ({self.stop_reason})" if self.stop_reason else "")
        return self.end

    async def _run(self) -> RunEnd:
        task_id = self.task.id
        try:
            history: Sequence[TaskEvent] = self.history or ()
            if self.resumed:
                history = await self._resume(history)
            # Loop detection continues where it was (the call that tripped it may be the
            # last thing recorded before the run was cut off).
            for event in since_last_answer(history):
                if event.kind is EventKind.TOOL_CALL and not event.payload.get("interrupted"):
                    self.loops.observe(str(event.payload.get("tool", "")),
                                       event.payload.get("arguments", {}),
                                       bool(event.payload.get("is_error")),
                                       str(event.payload.get("result", "")))
            ctx = RunContext(task=self.task, answers=answers_of(history),
                             history=tuple(history), tools=self.tools.specs(),
                             thinking=self.settings.tasks.thinking_level is not ThinkingLevel.OFF)
            final = await self.provider.run(ctx, self)
            return await self._finish(final)
        except (RunStopped, asyncio.CancelledError):
            if self.stop_reason is None:
                raise  # cancelled by someone else than the worker: let it propagate
            return RunEnd.STOPPED
        except InvalidTransition:
            # The task ended while the final message was on its way (a kill won the race).
            self.stop_reason = self.stop_reason or "ended meanwhile"
            return RunEnd.STOPPED
        except ClaimLost:
            # Another worker took the task up (this one was starved or cut off past its
            # lease): it continues from the journal; this run must not write any more.
            self.stop_reason = self.stop_reason or CLAIM_LOST
            return RunEnd.STOPPED
        except StoreUnavailable:
            self.stop_reason = self.stop_reason or STORE_UNAVAILABLE
            return RunEnd.STOPPED
        except LoopDetected as exc:
            return await self._fail(exc.error_for(task_id))
        except (ProviderError, ScriptError) as exc:
            return await self._fail(str(exc))
        except Exception as exc:
            if is_transient(exc):  # a store fault never becomes the task's failure
                self.stop_reason = self.stop_reason or STORE_UNAVAILABLE
                return RunEnd.STOPPED
            log.exception("task#%d: the run crashed", task_id)
            return await self._fail(f"Worker error: {type(exc).__name__}: {exc}")

    async def _store(self, call: Callable[[], Awaitable[T]]) -> T:
        """A transaction of the run's own (its ending, its release), retried while the store
        is away, and never cut in half by a stop."""
        self._writing = True
        try:
            return await retry(call, give_up_after=self.settings.runtime.store_patience_seconds,
                               what=f"task#{self.task.id}")
        finally:
            self._writing = False

    async def _finish(self, final: str) -> RunEnd:
        self._finishing = True
        usage = self._take_usage()
        ended = await self._store(lambda: self.store.finish_task(self.task.id, final, usage,
                                                                 fence=self.fence))
        if ended.status is TaskStatus.PAUSED:
            # Whoever sees the answer first continues the run, on any worker. If the store
            # is away, the lease runs out instead and the answer is picked up all the same.
            with contextlib.suppress(StoreUnavailable):
                await self._store(lambda: self.store.work.release(self.worker_id,
                                                                  [self.task.id]))
            return RunEnd.PAUSED
        return RunEnd.FINISHED

    async def _fail(self, error: str) -> RunEnd:
        self._finishing = True
        usage = self._take_usage()
        try:
            failed = await self._store(lambda: self.store.fail_task(
                self.task.id, error, allowed=[TaskStatus.RUNNING], usage=usage,
                fence=self.fence))
        except StoreUnavailable:
            self.stop_reason = self.stop_reason or STORE_UNAVAILABLE
            return RunEnd.STOPPED
        except ClaimLost:
            self.stop_reason = self.stop_reason or CLAIM_LOST
            return RunEnd.STOPPED
        return RunEnd.FAILED if failed is not None else RunEnd.STOPPED

    # --- taking up a run again ----------------------------------------------------------

    async def _resume(self, history: Sequence[TaskEvent]) -> list[TaskEvent]:
        """Record the resume and settle the calls that were in flight; returns the journal
        the provider continues from."""
        dangling = dangling_calls(history)
        repeat = {e.seq for e in dangling if self._safe_to_repeat(e)}
        names = [str(e.payload.get("tool", "")) for e in dangling]
        events = list(history)
        events.append(await self._record(EventKind.RESUMED, rules.resumed_payload(
            worker=self.worker_id,
            interrupted=[n for e, n in zip(dangling, names, strict=True) if e.seq not in repeat],
            repeated=[n for e, n in zip(dangling, names, strict=True) if e.seq in repeat])))
        for start, name in zip(dangling, names, strict=True):
            arguments = start.payload.get("arguments", {})
            if start.seq in repeat:
                began = time.perf_counter()
                outcome = await self.tools.call(name, arguments)
                payload = {"tool": name, "arguments": arguments, "result": outcome.result,
                           "is_error": outcome.is_error,
                           "duration_ms": int((time.perf_counter() - began) * 1000),
                           "call": start.seq, "repeated": True}
            else:
                payload = {"tool": name, "arguments": arguments,
                           "result": rules.INTERRUPTED_RESULT, "is_error": True,
                           "duration_ms": None, "call": start.seq, "interrupted": True}
            events.append(await self._record(EventKind.TOOL_CALL, payload))
        log.info("        ↻ task#%d resumed at event %d%s", self.task.id, len(history),
                 f" ({len(dangling)} call(s) in flight)" if dangling else "")
        return events

    def _safe_to_repeat(self, start: TaskEvent) -> bool:
        tool = self.tools.get(str(start.payload.get("tool", "")))
        return (tool is not None and tool.safe_to_repeat
                and isinstance(start.payload.get("arguments"), dict))

    # --- AgentIO ------------------------------------------------------------------------

    def _take_usage(self) -> Usage:
        p, c, cost = self._usage
        self._usage = [0, 0, None]
        return Usage(p, c, cost)

    async def _record(self, kind: EventKind, payload: dict[str, Any]) -> TaskEvent:
        """Write one event to the journal; returns once it is committed. Cancelling the
        wait (a stop) drops an event not written yet: it never happened."""
        usage = self._take_usage()
        try:
            event = await self.store.append_event(
                self.task.id, kind, payload, prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens, cost_usd=usage.cost_usd,
                fence=self.fence)
        except ClaimLost:
            # Unwound as a stop, not an error: provider and tool code may catch Exception.
            self.stop_reason = self.stop_reason or CLAIM_LOST
            raise RunStopped from None
        if event is None:  # the task ended (killed, failed by a timer): stop at once
            self.stop_reason = self.stop_reason or "task ended"
            raise RunStopped
        return event

    async def thinking(self, text: str) -> None:
        if self.settings.tasks.thinking_level is not ThinkingLevel.OFF and text.strip():
            await self._record(EventKind.THINKING, {"text": text})

    async def say(self, text: str) -> None:
        if text.strip():
            await self._record(EventKind.TEXT, {"text": text})

    async def tool_call(self, name: str, arguments: dict[str, Any] | str, *,
                        outcome: ToolOutcome | None = None) -> ToolOutcome:
        started = time.perf_counter()
        call: int | None = None
        if outcome is None:
            if isinstance(arguments, str):
                outcome = ToolOutcome("Invalid arguments: expected a JSON object, got "
                                      f"{arguments[:200]!r}", is_error=True)
            else:
                if self.tools.get(name) is not None:
                    # Recorded before it runs: a restart in between never runs it twice.
                    start = await self._record(EventKind.TOOL_START,
                                               {"tool": name, "arguments": arguments})
                    call = start.seq
                    started = time.perf_counter()
                outcome = await self.tools.call(name, arguments)
        payload: dict[str, Any] = {
            "tool": name, "arguments": arguments, "result": outcome.result,
            "is_error": outcome.is_error,
            "duration_ms": int((time.perf_counter() - started) * 1000)}
        if call is not None:
            payload["call"] = call
        await self._record(EventKind.TOOL_CALL, payload)
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
