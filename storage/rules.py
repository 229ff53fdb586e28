"""The platform's rules, written once: what the store writes and what everyone else reads.

Pure functions over domain values — the final-message format, the ``<task_injection>``
block, cost, and the payload of every event a transition writes. The store's transitions
(``storage.transitions``) and the demo seeder both build their rows from these, so seeded
history and live history cannot drift apart.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from taskops import redaction
from taskops.storage.domain import (
    EventKind,
    FinalMessage,
    ResultStatus,
    TaskStatus,
    Trigger,
)

NAME_MAX = 200
STARTED_MESSAGE = "Task started"
WAITING_MESSAGE = "Waiting for an answer"
SILENT_STATUS_MESSAGE = "Silent completion — nothing to report"
PAUSED_TIMEOUT_MESSAGE = "timeout — no response received"
MAX_DURATION_MESSAGE = "Max duration exceeded"
#: the result of a tool call whose run was cut off before its result was recorded
INTERRUPTED_RESULT = "interrupted by a restart"
RESUMED_MESSAGE = "Resumed after a restart"
#: events that are not the task's own doing: the periodic status update and the result
#: delivered to the parent chat are messages about the task, so they never count as the
#: activity that tells a working task from a stuck one
NOT_ACTIVITY = frozenset({EventKind.PROGRESS, EventKind.INJECTION})


def sort_name(name: str) -> str:
    """The name sort's key: case-insensitive, the same on every engine."""
    return redaction.redact(name).casefold()[:NAME_MAX]


#: what PostgreSQL refuses (NUL in text and JSONB; a lone UTF-16 surrogate cannot even be
#: encoded as UTF-8) and SQLite would keep, only to fail later in a screen or a file
_UNSAFE_TEXT = re.compile("[\x00\ud800-\udfff]")
#: JSON numbers PostgreSQL refuses (Python's json writes and reads them)
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def clean_text(text: str) -> str:
    """``text`` as every engine, screen and file can take it: NUL and lone surrogates
    become U+FFFD; a surrogate pair held as two code points becomes its one character;
    and every configured secret redacted (taskops.redaction), so an agent's text, a tool's
    result or a provider's error that echoes a key is never stored with it."""
    text = redaction.redact(text)
    if _UNSAFE_TEXT.search(text) is None:
        return text
    text = text.replace("\x00", "\ufffd")
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def clean(value: Any) -> Any:
    """Agent- and tool-written values made safe once, where they enter the store, so both
    engines store the same thing and every later screen renders it: every string anywhere
    in the value goes through :func:`clean_text` (dict keys too), tuples become lists, and
    a non-finite float (NaN, ±Infinity — valid to Python's json, refused by PostgreSQL)
    becomes its JSON spelling as a string, and a float of 1e16 or more, which JSONB would
    hand back as an integer, is that integer on both engines."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(k) if isinstance(k, str) else k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, float):
        if not math.isfinite(value):
            return _NON_FINITE[str(value)]
        if abs(value) >= 1e16:  # written in exponent form: PostgreSQL's numeric expands it
            return int(Decimal(repr(value)))
    return value


# --- the final-message format (platform-facts.md) -----------------------------------------

_WORDS = "completed|failed|question|silent"
#: what may decorate the start of a marker line: indentation, a list bullet, a quote, a
#: heading, bold or italics
_LEAD = r"[ \t>#*_\-]*"
_STATUS_LINE = re.compile(
    rf"^{_LEAD}STATUS[*_]*[ \t]*:[*_ \t`]*(?P<word>{_WORDS})(?!\w)(?P<rest>[^\n]*)$",
    re.IGNORECASE | re.MULTILINE,
)
_SUMMARY_LINE = re.compile(rf"^{_LEAD}SUMMARY[*_]*[ \t]*:[*_]*[ \t]?",
                           re.IGNORECASE | re.MULTILINE)
_SUMMARY_INLINE = re.compile(r"(?<!\w)[*_]*SUMMARY[*_]*[ \t]*:[*_]*[ \t]?", re.IGNORECASE)
#: "STATUS: completed | failed | question | silent" — the format quoted, not used
_TEMPLATE_REST = re.compile(rf"^[*_ \t`]*\|[ \t]*(?:{_WORDS})", re.IGNORECASE)
#: separators between the status word and a reason on the same line
_REASON_EDGES = " \t*_`:;,.-–—"


def _status_lines(text: str) -> list[re.Match[str]]:
    return [m for m in _STATUS_LINE.finditer(text) if not _TEMPLATE_REST.match(m["rest"])]


def _reason(rest: str) -> str:
    """What follows the status word on its line: "(build broken)", "— no access"."""
    reason = rest.strip(_REASON_EDGES)
    if reason.startswith("(") and reason.endswith(")"):
        reason = reason[1:-1].strip()
    return reason


def _last_summary_marker(before: str, earlier: list[re.Match[str]]) -> int | None:
    """Where the summary starts when its marker comes before the last STATUS line: after
    the last SUMMARY marker at the start of a line or on an earlier STATUS line ("STATUS:
    completed SUMMARY: done" with the STATUS line repeated below it)."""
    ends = [m.end() for m in _SUMMARY_LINE.finditer(before)]
    for status in earlier:
        if (inline := _SUMMARY_INLINE.search(status["rest"])) is not None:
            ends.append(status.start("rest") + inline.end())
    return max(ends, default=None)


def _without_markers(text: str) -> str:
    """Drop STATUS lines and SUMMARY markers, so a summary never shows the format."""
    kept = [line for line in text.split("\n") if not _status_lines(line)]
    return _SUMMARY_LINE.sub("", "\n".join(kept)).strip()


def parse_final_message(text: str) -> FinalMessage:
    """Parse ``STATUS: ... / SUMMARY: ...`` (platform-facts.md, "final-message format").

    * The STATUS line is the status word after ``STATUS:``, whatever follows it on the
      line: a reason ("STATUS: failed (build broken)"), punctuation, an emoji, or the
      ``SUMMARY:`` marker itself ("STATUS: completed SUMMARY: done"). Case and Markdown
      decoration (bold, a bullet, a heading) do not matter; a word that merely starts
      with a status word ("completedness") is not one.
    * The last STATUS line wins: agents sometimes quote the format while narrating (the
      bare template "completed | failed | …" is never read as a status).
    * The summary is what follows the SUMMARY marker — on the STATUS line, on a line
      after it, or else on a line before it (up to the STATUS line, plus what follows
      that). With no SUMMARY marker at all, it is the text around the STATUS line with
      the reason given on it.
    * The summary never keeps the markers: STATUS lines and SUMMARY markers are removed.
    * No STATUS line: the whole text is the summary (markers removed), status completed.
    """
    matches = _status_lines(text)
    if not matches:
        return FinalMessage(ResultStatus.COMPLETED, _without_markers(text), formatted=False)
    status = matches[-1]
    result = ResultStatus(status["word"].lower())
    rest, before, after = status["rest"], text[: status.start()], text[status.end():]
    if (inline := _SUMMARY_INLINE.search(rest)) is not None:
        summary = rest[inline.end():] + after
    elif (below := _SUMMARY_LINE.search(after)) is not None:
        summary = after[below.end():]
    elif (above := _last_summary_marker(before, matches[:-1])) is not None:
        summary = before[above:] + after
    else:
        summary = "\n".join(part.strip("\n") for part in (before, _reason(rest), after)
                            if part.strip())
    return FinalMessage(result, _without_markers(summary), formatted=True)


def runtime_failure(error: str) -> FinalMessage:
    """What a failure made by the runtime or an admin (kill, limits) records as final."""
    return FinalMessage(ResultStatus.FAILED, error, formatted=True)


def status_message(final: FinalMessage) -> str:
    """The message of the status change an agent's final message causes."""
    if final.result is ResultStatus.SILENT:
        return SILENT_STATUS_MESSAGE
    if final.result is ResultStatus.QUESTION:
        return WAITING_MESSAGE
    return f"Task {final.task_status.value}"


# --- event payloads ------------------------------------------------------------------------


def status_change_payload(old: TaskStatus | None, new: TaskStatus,
                          message: str) -> dict[str, Any]:
    return {"old": None if old is None else old.value, "new": new.value, "message": message}


def started_payload() -> dict[str, Any]:
    return status_change_payload(None, TaskStatus.RUNNING, STARTED_MESSAGE)


def resumed_payload(*, worker: str, interrupted: list[str], repeated: list[str]) -> dict[str, Any]:
    """The ``resumed`` event: a run taken up again from the journal, and what became of
    the tool calls that were in flight (interrupted: not run again; repeated: declared
    safe to repeat, so run again)."""
    return {"text": RESUMED_MESSAGE, "worker": worker, "interrupted": interrupted,
            "repeated": repeated}


def final_payload(final: FinalMessage, text: str | None) -> dict[str, Any]:
    """The ``final`` event: the parsed result and the agent's own text (None: not the
    agent's, e.g. a kill)."""
    return {"status": final.result.value, "summary": final.summary, "text": text,
            "formatted": final.formatted}


def _attr(value: object) -> str:
    return (str(value).replace("&", "&amp;").replace('"', "&quot;")
            .replace("<", "&lt;").replace(">", "&gt;"))


def whole_minutes(seconds: float) -> int:
    """A duration in whole minutes, as the original writes ``duration_minutes``: rounded
    to the nearest minute, halves up, never negative."""
    return int(max(0.0, seconds) / 60 + 0.5)


def injection_block(*, task_id: int, task_name: str, status: ResultStatus, trigger: Trigger,
                    duration_minutes: int, tokens_used: int, summary: str) -> str:
    """The ``<task_injection>`` block delivered to the parent session (platform-facts.md).

    Attribute values are escaped so a task name cannot break out of the tag; the
    summary body is passed through as the agent wrote it.
    """
    return (
        f'<task_injection task_id="{task_id}" task_name="{_attr(task_name)}" '
        f'status="{status}" trigger="{trigger}" '
        f'duration_minutes="{duration_minutes:d}" tokens_used="{tokens_used}">\n'
        f"{summary}\n</task_injection>"
    )


def injection_payload(*, task_id: int, task_name: str, trigger: Trigger,
                      parent_session: str | None, final: FinalMessage,
                      started_at: datetime | None, at: datetime,
                      tokens_used: int) -> dict[str, Any] | None:
    """The ``injection`` event of an ended or paused task; None when silent (nothing is
    delivered to the parent session)."""
    if final.result is ResultStatus.SILENT:
        return None
    minutes = 0 if started_at is None else whole_minutes((at - started_at).total_seconds())
    block = injection_block(task_id=task_id, task_name=task_name, status=final.result,
                            trigger=trigger, duration_minutes=minutes, tokens_used=tokens_used,
                            summary=final.summary)
    return {"parent_session": parent_session, "text": block, "status": final.result.value}


# --- numbers kept on the task row ------------------------------------------------------------


def estimate_cost(price_in: float, price_out: float, prompt_tokens: int,
                  completion_tokens: int) -> float:
    """USD for the given tokens at per-million prices (platform-facts.md, "Cost")."""
    return prompt_tokens / 1e6 * price_in + completion_tokens / 1e6 * price_out


def duration_ms(started_at: datetime | None, finished_at: datetime | None) -> int | None:
    """The stored duration of an ended task (what the duration sort reads)."""
    if started_at is None or finished_at is None:
        return None
    return int((finished_at - started_at).total_seconds() * 1000)


def deadline(started_at: datetime | None, max_duration_minutes: int) -> datetime | None:
    """When a task's max duration runs out: wall-clock from its start, paused time
    included (platform-facts.md, "Max duration"); None for a task never started."""
    if started_at is None:
        return None
    return started_at + timedelta(minutes=max_duration_minutes)


def past_deadline(started_at: datetime | None, max_duration_minutes: int,
                  now: datetime) -> bool:
    """Whether the task's max duration has run out at ``now`` (the one rule the worker, the
    store and the stuck-task watch apply): a running task is failed, a paused one fails
    where it waits, and an answer that comes later fails it at once."""
    end = deadline(started_at, max_duration_minutes)
    return end is not None and now >= end


def elapsed_seconds(started_at: datetime | None, now: datetime) -> float:
    """Seconds since the task started, paused time included (0 if never started)."""
    return 0.0 if started_at is None else max(0.0, (now - started_at).total_seconds())
