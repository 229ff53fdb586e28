"""Loop detection (platform-facts.md, Settings → Tasks): stop an agent that keeps failing.

Methods, each counting *consecutive* failing tool calls (any success or different call
starts the count again):

* ``systematic`` — the same tool with the same arguments;
* ``smart`` — the same tool failing with the same error, whatever the arguments (an agent
  that only rewords its query is still stuck);
* ``auto`` — whichever of the two trips first.
"""

from __future__ import annotations

import json
from typing import Any

from taskops.config import LoopMethod, TasksSettings

_ERROR_SHOWN = 200


class LoopDetected(Exception):
    def __init__(self, method: LoopMethod, detail: str) -> None:
        super().__init__(f"Loop detected ({method.value}): {detail}")
        self.method = method
        self.detail = detail

    def error_for(self, task_id: int) -> str:
        """The task's error text, with the platform's hint line."""
        return (f"Loop detected ({self.method.value}): {self.detail}\n"
                f"Hint: Use /kill_task {task_id} if the task needs to be cleaned up.")


def _canonical(arguments: dict[str, Any] | str) -> str:
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments, sort_keys=True, ensure_ascii=False, default=str)


class LoopDetector:
    def __init__(self, settings: TasksSettings) -> None:
        self.enabled = settings.loop_detection
        self.method = settings.loop_method
        self.threshold = settings.loop_threshold
        self._same_call: tuple[tuple[str, str], int] | None = None
        self._same_error: tuple[tuple[str, str], int] | None = None

    @staticmethod
    def _bump(run: tuple[tuple[str, str], int] | None,
              key: tuple[str, str]) -> tuple[tuple[str, str], int]:
        return (key, run[1] + 1) if run is not None and run[0] == key else (key, 1)

    def observe(self, name: str, arguments: dict[str, Any] | str, failed: bool,
                error: str = "") -> None:
        """Record one tool call; raises :class:`LoopDetected` when the run is stuck."""
        if not failed:
            self._same_call = self._same_error = None
            return
        self._same_call = self._bump(self._same_call, (name, _canonical(arguments)))
        self._same_error = self._bump(self._same_error, (name, error))
        if not self.enabled:
            return
        shown = error if len(error) <= _ERROR_SHOWN else error[:_ERROR_SHOWN - 1] + "…"
        if (self.method in (LoopMethod.SYSTEMATIC, LoopMethod.AUTO)
                and self._same_call[1] >= self.threshold):
            raise LoopDetected(self.method, f"tool '{name}' failed {self._same_call[1]} times "
                                            f"in a row with the same arguments: {shown}")
        if (self.method in (LoopMethod.SMART, LoopMethod.AUTO)
                and self._same_error[1] >= self.threshold):
            raise LoopDetected(self.method, f"tool '{name}' failed {self._same_error[1]} times "
                                            f"in a row with the same error: {shown}")
