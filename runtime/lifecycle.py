"""Lifecycle rules the worker enforces around a run (platform-facts.md).

* Max duration is wall-clock time from the start, paused time included
  (``storage.rules.past_deadline``, platform-facts.md): a running task is failed when
  its deadline passes, a paused one too, and an answer after it fails the task at once.
* A paused task with no answer fails after ``[tasks] paused_timeout_hours``.
* A started task whose worker is gone (its lease ran out, or its process died on this
  host) is taken up again from its journal by another worker (``runtime.resume``); a
  fault of the store never fails a task.
* With ``[tasks] status_updates`` on, a progress event every N running minutes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from taskops.storage.domain import EventKind, Task, TaskEvent


def answers_of(history: Iterable[TaskEvent]) -> tuple[str, ...]:
    """The answers given to the task's questions, oldest first."""
    return tuple(str(e.payload.get("text", "")) for e in history if e.kind is EventKind.ANSWER)


def progress_payload(task: Task, running_minutes: float) -> dict[str, Any]:
    """The periodic status update (platform-facts.md: name, elapsed minutes, tool calls,
    tokens, and the /kill_task command)."""
    minutes = int(running_minutes)
    text = (f"⏳ Task #{task.id} “{task.name}” is still running: {minutes} min elapsed, "
            f"{task.tool_call_count} tool calls, {task.total_tokens:,} tokens so far.\n"
            f"Stop it with /kill_task {task.id}")
    return {"name": task.name, "elapsed_minutes": minutes,
            "tool_calls": task.tool_call_count, "tokens": task.total_tokens, "text": text}
