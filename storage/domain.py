"""Domain vocabulary shared by the store, the bot and the runtime.

Everything here is plain data: enums, frozen dataclasses returned by the store, and the
errors (with their platform texts) its operations raise. The rules that produce the data
(final-message format, payloads, cost) are in ``storage.rules``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any


class TaskStatus(StrEnum):
    #: created and not finished; "never started" while ``started_at`` is unset
    RUNNING = "running"
    #: the agent ended with ``STATUS: question`` and waits for an answer
    PAUSED = "paused"
    #: ended with ``completed`` or ``silent`` (or the missing-format fallback)
    COMPLETED = "completed"
    #: ended with ``failed``, killed, timed out, loop detected or max duration exceeded
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (TaskStatus.COMPLETED, TaskStatus.FAILED)


ACTIVE_STATUSES = (TaskStatus.RUNNING, TaskStatus.PAUSED)


class Trigger(StrEnum):
    #: an admin, by hand (and every restart)
    USER = "user"
    #: the chat agent, mid-conversation
    AGENT = "agent"
    #: a recurring schedule fired
    CRONJOB = "cronjob"
    #: the periodic agent heartbeat produced an actionable item
    HEARTBEAT = "heartbeat"
    #: the memory-consolidation job acted on a candidate entry
    CONSOLIDATION = "consolidation"


class ResultStatus(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    QUESTION = "question"
    SILENT = "silent"


class EventKind(StrEnum):
    #: a tool call that has run: its arguments, result and duration
    TOOL_CALL = "tool_call"
    #: a tool call about to run (journal only: the call has no result yet). A run that is
    #: taken up again finds a start without its ``tool_call`` and does not run it twice.
    TOOL_START = "tool_start"
    #: a run taken up again from the journal (after a restart, a lost lease, an outage)
    RESUMED = "resumed"
    TEXT = "text"
    THINKING = "thinking"
    STATUS_CHANGE = "status_change"
    FINAL = "final"
    #: the <task_injection> block stored for the parent session
    INJECTION = "injection"
    #: a periodic status update while the task runs
    PROGRESS = "progress"
    #: an admin's answer to a paused task's question
    ANSWER = "answer"


class SortField(StrEnum):
    CREATED = "created"
    NAME = "name"
    DURATION = "duration"
    TOKENS = "tokens"
    COST = "cost"


#: The sort button cycles through the fields in this order (DESIGN.md).
SORT_CYCLE = (SortField.CREATED, SortField.NAME, SortField.DURATION, SortField.TOKENS,
              SortField.COST)

RESTART_DISABLED_REASON = {
    TaskStatus.RUNNING: "Kill the task before restarting it.",
    TaskStatus.PAUSED: "Paused tasks cannot be restarted — resume them instead.",
}


class StoreError(Exception):
    """A store operation refused for a reason the user should read as is."""


class TaskNotFound(StoreError):
    def __init__(self, task_id: int) -> None:
        super().__init__(f"Task #{task_id} not found.")
        self.task_id = task_id


class InvalidTransition(StoreError):
    """The task's current status does not allow the operation (platform error texts)."""


class ClaimLost(StoreError):
    """A run's write refused because its task is no longer held under the run's claim:
    the lease ran out and another worker took the task up (or it was given back). The
    run is stale and must stop without writing anything more; the task is not ended."""

    def __init__(self, task_id: int) -> None:
        super().__init__(f"Task #{task_id} is no longer held under this claim.")
        self.task_id = task_id


def kill_refused_message(status: TaskStatus) -> str:
    return f"Cannot kill task with status '{status}'. Only running tasks can be killed."


def restart_refused_message(status: TaskStatus) -> str:
    return f"Cannot restart task with status '{status}'. Kill the task first, then restart."


# --- plain data returned by the store -------------------------------------------------


@dataclass(frozen=True)
class FinalMessage:
    result: ResultStatus
    summary: str
    #: False when the agent did not use the format and the fallback applied
    formatted: bool

    @property
    def task_status(self) -> TaskStatus:
        return {
            ResultStatus.COMPLETED: TaskStatus.COMPLETED,
            ResultStatus.SILENT: TaskStatus.COMPLETED,
            ResultStatus.FAILED: TaskStatus.FAILED,
            ResultStatus.QUESTION: TaskStatus.PAUSED,
        }[self.result]


@dataclass(frozen=True)
class Usage:
    """Tokens (and a cost the provider reported itself) counted with a write."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None

    def __bool__(self) -> bool:
        return bool(self.prompt_tokens or self.completion_tokens or self.cost_usd is not None)


NO_USAGE = Usage()


@dataclass(frozen=True)
class Fence:
    """The claim a run writes under: the worker and the claim's token (``tasks.claim_token``,
    raised by every claim). A write carrying a fence the task no longer has is refused
    (:class:`ClaimLost`), in the same transaction as the write would have happened."""

    worker_id: str
    token: int


@dataclass(frozen=True)
class ProviderChoice:
    """A provider/model pair, or the task default (``provider is None``)."""

    provider: str | None
    model: str | None = None

    @property
    def is_default(self) -> bool:
        return self.provider is None

    @classmethod
    def default(cls) -> ProviderChoice:
        return cls(None, None)

    def key(self) -> str:
        return "default" if self.provider is None else f"{self.provider}/{self.model}"

    @classmethod
    def parse(cls, text: str) -> ProviderChoice:
        """``default`` or ``provider/model`` (the model may itself contain slashes)."""
        if text.strip().lower() == "default":
            return cls.default()
        provider, sep, model = text.strip().partition("/")
        if not sep or not provider or not model:
            raise ValueError(f"expected provider/model or default, got {text!r}")
        return cls(provider, model)


@dataclass(frozen=True)
class Task:
    id: int
    name: str
    prompt: str
    status: TaskStatus
    trigger: Trigger
    trigger_source_id: int | None
    provider: str | None
    model: str | None
    used_default: bool
    max_duration_minutes: int
    parent_session: str | None
    restarted_from_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    tool_call_count: int
    result_status: ResultStatus | None
    summary: str | None
    error: str | None
    killed_by: str | None
    last_event_at: datetime | None
    event_count: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def duration_seconds(self, now: datetime) -> float | None:
        """Seconds run so far (counts up while unfinished); None if never started."""
        if self.started_at is None:
            return None
        end = self.finished_at or now
        return max(0.0, (end - self.started_at).total_seconds())


@dataclass(frozen=True)
class TaskEvent:
    id: int
    task_id: int
    seq: int
    at: datetime
    kind: EventKind
    payload: dict[str, Any]


#: An id fragment in a search: ``#123`` or ``123``.
_ID_FRAGMENT = re.compile(r"#?(\d{1,18})")
#: Id fragments at least this long also match ids that start with them; shorter ones match
#: the id exactly (``#1`` prefix-matching would be a ninth of every list).
ID_PREFIX_MIN = 3


@dataclass(frozen=True)
class SearchTerms:
    """A search split into its parts: every word must occur in the name (case-insensitive
    substring) and every id fragment must match the id (exact, or prefix from
    ``ID_PREFIX_MIN`` digits)."""

    #: casefolded, as the name sort's key is
    words: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> SearchTerms:
        words: list[str] = []
        ids: list[str] = []
        for token in text.split():
            fragment = _ID_FRAGMENT.fullmatch(token)
            if fragment:
                ids.append(fragment.group(1))
            elif token != "#":
                words.append(token.casefold())
        return cls(tuple(dict.fromkeys(words)), tuple(dict.fromkeys(ids)))

    def __bool__(self) -> bool:
        return bool(self.words or self.ids)


@dataclass(frozen=True)
class ListFilters:
    """The list view's filters; every set field narrows the result (AND)."""

    status: TaskStatus | None = None
    trigger: Trigger | None = None
    provider: ProviderChoice | None = None
    #: whole days in ``[ui] timezone``, both inclusive
    date_from: date | None = None
    date_to: date | None = None
    #: free words and ``#123`` id fragments, as typed (``SearchTerms.parse``)
    search: str = ""
    #: created in the last N minutes before the list is read ("Failed · last hour"):
    #: relative, so a saved view keeps meaning the last hour
    within_minutes: int | None = None

    @property
    def any_set(self) -> bool:
        return bool(self.terms) or any(
            v is not None for v in (self.status, self.trigger, self.provider, self.date_from,
                                    self.date_to, self.within_minutes))

    @property
    def terms(self) -> SearchTerms:
        return SearchTerms.parse(self.search)


@dataclass(frozen=True)
class Sort:
    field: SortField = SortField.CREATED
    descending: bool = True


class PageKind(StrEnum):
    FIRST = "first"
    LAST = "last"
    #: page ``number``, read from the nearer end of the list
    NUMBER = "number"
    #: the rows after ``anchor`` (Next ▶); shown as page ``number``
    AFTER = "after"
    #: the rows before ``anchor`` (◀ Prev); shown as page ``number``
    BEFORE = "before"


@dataclass(frozen=True)
class PageRequest:
    """Which page of a list to read. ◀/▶ seek from the row shown last (keyset paging), so
    a press costs the same on page 2 and on page 50,000; ``anchor`` is opaque and comes
    from ``TaskPage.first_anchor``/``last_anchor``. An anchor that no longer fits the
    list (another sort, a deleted row) falls back to ``number``."""

    kind: PageKind = PageKind.FIRST
    number: int = 1
    anchor: str = ""

    @classmethod
    def at(cls, number: int) -> PageRequest:
        return cls(PageKind.NUMBER, number)

    @classmethod
    def last(cls) -> PageRequest:
        return cls(PageKind.LAST)

    @classmethod
    def after(cls, page: TaskPage) -> PageRequest:
        return cls(PageKind.AFTER, page.page + 1, page.last_anchor)

    @classmethod
    def before(cls, page: TaskPage) -> PageRequest:
        return cls(PageKind.BEFORE, page.page - 1, page.first_anchor)


@dataclass(frozen=True)
class TaskPage:
    tasks: list[Task]
    total: int
    page: int
    page_size: int
    #: opaque positions of the first and last row, for ``PageRequest.before``/``after``
    first_anchor: str = ""
    last_anchor: str = ""

    @property
    def page_count(self) -> int:
        return max(1, -(-self.total // self.page_size))


@dataclass(frozen=True)
class EventPage:
    events: list[TaskEvent]
    total: int
    offset: int


@dataclass(frozen=True)
class TaskDraft:
    """What a caller supplies to create a task."""

    name: str
    prompt: str
    trigger: Trigger = Trigger.USER
    provider: ProviderChoice = field(default_factory=ProviderChoice.default)
    max_duration_minutes: int | None = None
    trigger_source_id: int | None = None
    parent_session: str | None = None


@dataclass(frozen=True)
class RestartEdits:
    """Fields an admin changed in the Edit & restart form; None = inherit."""

    name: str | None = None
    prompt: str | None = None
    provider: ProviderChoice | None = None
    max_duration_minutes: int | None = None
