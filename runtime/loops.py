"""Loop detection (platform-facts.md, Settings → Tasks): stop an agent that keeps failing.

Every method counts *consecutive* failing tool calls; a successful call, or a failing call
that does not repeat the previous ones, starts the count again. What "repeats" means:

* ``systematic`` — the same tool, called with the same arguments, failing with the same
  error;
* ``smart`` — the same tool failing with the same error, whatever the arguments (an agent
  that only rewords its query is still stuck);
* ``auto`` — whichever of the two trips first.

"The same" is compared after :func:`normalize`, which blanks the parts of a text that
change on every attempt without changing what happened: timestamps and dates, UUIDs,
hexadecimal ids, request/trace ids, durations ("took 1.5s", "after 320 ms") and numbers
of four digits or more. Short numbers stay (an HTTP 404 is not an HTTP 500), and so does
every word. Arguments are compared as canonical JSON (key order ignored), normalised the
same way. docs/scripted-provider.md says this for operators.
"""

from __future__ import annotations

import json
import re
from typing import Any

from taskops.config import LoopMethod, TasksSettings

_ERROR_SHOWN = 200

_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_DAYS = "Mon|Tue|Wed|Thu|Fri|Sat|Sun"
_UNITS = (r"ns|µs|us|ms|s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hr|hrs|hour"
          r"|hours")
#: (pattern, placeholder), applied in order: the most specific shapes first
_VOLATILE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),
     "<id>"),
    # keyed ids: "request id: abc", "X-Request-Id=…", "trace_id 7f…"
    (re.compile(r"\b((?:x-)?(?:request|req|trace|span|correlation|session|message|event)"
                r"[-_ ]?id)\b(\s*[:=#]?\s*)[\"']?\w[\w.:/+=-]*", re.I), r"\1\2<id>"),
    (re.compile(r"\b(?:req|request|trace|span|evt|msg|err|run|job|call)[_-][A-Za-z0-9]{4,}\b",
                re.I), "<id>"),
    # ISO 8601 and SQL timestamps, RFC 1123 dates, then bare dates and times of day
    (re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
                r"(?:Z|[+-]\d{2}:?\d{2}|\b)", re.I), "<time>"),
    (re.compile(rf"\b(?:(?:{_DAYS}),?\s+)?\d{{1,2}}\s+(?:{_MONTHS})[a-z]*\s+\d{{4}}\b", re.I),
     "<time>"),
    # asctime and syslog: "Mon Dec  2 13:05:01 2026", "Dec  2 13:05:01"
    (re.compile(rf"\b(?:(?:{_DAYS})\s+)?(?:{_MONTHS})[a-z]*\s+\d{{1,2}}\s+\d{{1,2}}:\d{{2}}"
                rf"(?::\d{{2}}(?:[.,]\d+)?)?(?:\s+\d{{4}})?\b", re.I), "<time>"),
    (re.compile(rf"\b(?:{_MONTHS})[a-z]*\s+\d{{1,2}},?\s+\d{{4}}\b", re.I), "<time>"),
    (re.compile(r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b"), "<time>"),
    (re.compile(r"\b\d{1,2}[-/.]\d{1,2}[-/.]\d{4}\b"), "<time>"),
    (re.compile(r"\b\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?!\d)"
                r"(?:\s*(?:Z|UTC|GMT|[+-]\d{2}:?\d{2}))?", re.I), "<time>"),
    (re.compile(rf"\b\d+(?:[.,]\d+)?\s?(?:{_UNITS})\b", re.I), "<duration>"),
    # numbers, hexadecimal and generated ids all become one placeholder: a value that
    # changes from attempt to attempt may change its shape too (1000 bytes, then 10000000)
    (re.compile(r"\b\d+[.,]\d+\b"), "<id>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<id>"),
    (re.compile(r"\b[0-9a-f]{8,}\b", re.I), "<id>"),
    # tokens mixing letters and digits, 8 characters or more: generated ids
    (re.compile(r"\b(?=[A-Za-z_-]*\d)(?=[\d_-]*[A-Za-z])[A-Za-z0-9_-]{8,}\b"), "<id>"),
    (re.compile(r"\b\d{4,}\b"), "<id>"),
)

_MOMENTS = re.compile(r"<time>(?:[\sT,]*<time>)+")


def normalize(text: str) -> str:
    """``text`` with its volatile parts blanked, so two attempts that failed the same way
    compare equal (see the module's docstring for what counts as volatile)."""
    for pattern, placeholder in _VOLATILE:
        text = pattern.sub(placeholder, text)
    # A date and a time of day written apart are one moment, whatever the format.
    return " ".join(_MOMENTS.sub("<time>", text).split())


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
        return normalize(arguments)
    return normalize(json.dumps(arguments, sort_keys=True, ensure_ascii=False, default=str))


Key = tuple[str, ...]


class LoopDetector:
    def __init__(self, settings: TasksSettings) -> None:
        self.enabled = settings.loop_detection
        self.method = settings.loop_method
        self.threshold = settings.loop_threshold
        self._same_call: tuple[Key, int] | None = None
        self._same_error: tuple[Key, int] | None = None

    @staticmethod
    def _bump(run: tuple[Key, int] | None, key: Key) -> tuple[Key, int]:
        return (key, run[1] + 1) if run is not None and run[0] == key else (key, 1)

    def observe(self, name: str, arguments: dict[str, Any] | str, failed: bool,
                error: str = "") -> None:
        """Record one tool call; raises :class:`LoopDetected` when the run is stuck."""
        if not failed:
            self._same_call = self._same_error = None
            return
        same_error = normalize(error)
        self._same_call = self._bump(self._same_call, (name, _canonical(arguments), same_error))
        self._same_error = self._bump(self._same_error, (name, same_error))
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
