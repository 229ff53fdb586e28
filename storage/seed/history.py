"""Demo history, generated task by task in creation order.

Each task gets a plausible story — who started it, on which provider, how long it ran, the
tool calls, text and thinking on the way, and how it ended — and the rows the store itself
would have written for that story: every payload and every derived column comes from
``storage.rules``, the same functions the store's transitions use.

Its ~430 lines are one story told in order (who → running stretch → timeline → ending →
row); split further, following one task would mean jumping between files.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from taskops.config import Price, Settings
from taskops.storage import rules
from taskops.storage.domain import ResultStatus, TaskStatus, Trigger
from taskops.storage.seed.pools import ACTORS, SESSIONS, TOOLS, Final, Pools, dumps

HISTORY = timedelta(days=30)
MAX_RUNNING = 20
MAX_PAUSED = 10

TASK_COLUMNS = (
    "id", "name", "sort_name", "prompt", "status", "trigger", "trigger_source_id", "provider",
    "model", "used_default", "max_duration_minutes", "parent_session", "restarted_from_id",
    "created_at", "started_at", "finished_at", "duration_ms", "prompt_tokens",
    "completion_tokens", "total_tokens", "cost_usd", "tool_call_count", "result_status",
    "summary", "error", "killed_by", "last_event_at", "event_count",
)
EVENT_COLUMNS = ("id", "task_id", "seq", "at", "kind", "payload", "txid")

#: (provider, model, share of the tasks); the task default takes DEFAULT_SHARE on top.
PROVIDERS: tuple[tuple[str, str, float], ...] = (
    ("openai", "gpt-4o", 0.15),
    ("openai", "gpt-4o-mini", 0.20),
    ("anthropic", "claude-sonnet-4", 0.14),
    ("anthropic", "claude-3-haiku", 0.10),
    ("google", "gemini-1.5-flash", 0.08),
    ("local", "llama-3.1-70b", 0.05),  # no price: cost stays NULL
    ("scripted", "scripted", 0.08),
)
DEFAULT_SHARE = 0.20

TRIGGERS: tuple[tuple[Trigger, float], ...] = (
    (Trigger.USER, 0.30), (Trigger.AGENT, 0.20), (Trigger.CRONJOB, 0.30),
    (Trigger.HEARTBEAT, 0.12), (Trigger.CONSOLIDATION, 0.08),
)


class Outcome(Enum):
    """How a task of the history (neither running nor paused now) ended."""

    COMPLETED = 0.63
    UNFORMATTED = 0.07
    SILENT = 0.08
    #: paused with a question, answered, then completed
    ANSWERED = 0.03
    FAILED = 0.09
    KILLED = 0.035
    MAX_DURATION = 0.025
    LOOP = 0.02
    TIMEOUT = 0.01
    KILLED_UNSTARTED = 0.01


class Role(Enum):
    """Where a task stands now, by creation order: the newest are the active ones."""

    ENDED = "ended"
    PAUSED = "paused"
    RUNNING = "running"
    NEW = "new"


Row = tuple[Any, ...]
#: events of an ending after the timeline (status change, final, injection); fewer or more
#: for these outcomes, so every task has about ``events_per_task`` events
_CLOSING_EVENTS: dict[Outcome | None, int] = {Outcome.SILENT: 2, Outcome.TIMEOUT: 6}


@dataclass
class _Task:
    """One task while its story is told; becomes a row of ``TASK_COLUMNS``."""

    id: int
    created: datetime
    role: Role
    outcome: Outcome | None
    trigger: Trigger
    provider: str
    model: str
    used_default: bool
    price: Price | None
    name: str
    sort_key: str
    prompt: str
    parent: str | None
    restarted_from: int | None
    max_minutes: int
    started: datetime | None = None
    finished: datetime | None = None
    status: TaskStatus = TaskStatus.RUNNING
    final: Final | None = None
    killed_by: str | None = None
    tool_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seq: int = 0
    last_at: datetime | None = None
    #: the tool a looping task kept calling
    loop_tool: str = ""


def _cdf(weights: Sequence[float]) -> list[float]:
    total = sum(weights)
    out: list[float] = []
    acc = 0.0
    for w in weights[:-1]:
        acc += w / total
        out.append(acc)
    return out


class Generator:
    """Produces task rows and event rows in creation order, one chunk at a time."""

    def __init__(self, settings: Settings, count: int, seed: int, now: datetime,
                 events_per_task: int, first_task_id: int, first_event_id: int,
                 timestamp: Callable[[datetime], Any], *, with_txid: bool) -> None:
        self.rng = rng = random.Random(seed)
        self.pools = Pools(rng)
        self.now = now.astimezone(UTC).replace(tzinfo=None)  # naive UTC throughout
        self.events_per_task = max(0, events_per_task)
        self.next_task_id = first_task_id
        self.next_event_id = first_event_id
        self.ts = timestamp
        self.txid: int | None = 0 if with_txid else None
        tasks = settings.tasks
        self.timeout_after = timedelta(hours=tasks.paused_timeout_hours)
        self.loop_method = tasks.loop_method.value
        self.loop_threshold = tasks.loop_threshold

        # Provider choices: (provider, model, used_default, price), chosen by weight.
        choices: list[tuple[str, str, bool, Price | None]] = [
            (provider, model, False, settings.price_for(model)) for provider, model, _ in PROVIDERS]
        weights = [share for _, _, share in PROVIDERS]
        if tasks.default_provider and tasks.default_model:
            choices.append((tasks.default_provider, tasks.default_model, True,
                            settings.price_for(tasks.default_model)))
            weights.append(DEFAULT_SHARE)
        self.providers = choices
        self.provider_cdf = _cdf(weights)
        self.triggers = [t for t, _ in TRIGGERS]
        self.trigger_cdf = _cdf([w for _, w in TRIGGERS])
        self.outcomes = list(Outcome)
        self.outcome_cdf = _cdf([o.value for o in Outcome])
        cap = self.max_duration_cap = tasks.max_duration_cap_minutes
        self.max_durations = [min(m, cap) for m in (tasks.max_duration_minutes,) * 6
                              + (15, 30, 120, 240)]
        #: recent failed tasks (id, name pair, prompt) that a user may restart
        self.failed_recently: list[tuple[int, tuple[str, str], str]] = []
        self.plan = self._plan(count)
        self.position = 0

    def _plan(self, count: int) -> list[tuple[datetime, Role]]:
        """Creation times, oldest first, each with the task's role now."""
        n_running = min(count, MAX_RUNNING, max(2, count // 50))
        n_paused = min(count - n_running, MAX_PAUSED, max(1, count // 60))
        n_new = min(n_running, max(1, n_running // 4))
        now = self.now
        spans = ((Role.ENDED, count - n_running - n_paused, now - HISTORY,
                  now - timedelta(hours=1)),
                 (Role.PAUSED, n_paused, now - timedelta(hours=20), now - timedelta(hours=1)),
                 (Role.RUNNING, n_running - n_new, now - timedelta(minutes=45),
                  now - timedelta(minutes=4)),
                 (Role.NEW, n_new, now - timedelta(minutes=3), now - timedelta(seconds=5)))
        plan: list[tuple[datetime, Role]] = []
        for role, n, start, end in spans:
            span_us = int((end - start) / timedelta(microseconds=1))
            plan.extend((start + timedelta(microseconds=int(self.rng.random() * span_us)), role)
                        for _ in range(n))
        plan.sort(key=lambda item: item[0])
        return plan

    def _pick(self, cdf: list[float]) -> int:
        return bisect.bisect_right(cdf, self.rng.random())

    def _choice(self, items: Sequence[Any]) -> Any:
        return items[int(self.rng.random() * len(items))]

    def chunk(self, size: int) -> tuple[list[Row], list[Row]]:
        tasks: list[Row] = []
        events: list[Row] = []
        end = min(len(self.plan), self.position + size)
        for created, role in self.plan[self.position:end]:
            tasks.append(self._task(created, role, events))
        self.position = end
        return tasks, events

    # --- one task --------------------------------------------------------------------------

    def _task(self, created: datetime, role: Role, events: list[Row]) -> Row:
        t = self._identity(created, role)
        if role is Role.NEW:
            pass  # created, not picked up yet: no events
        elif t.outcome is Outcome.KILLED_UNSTARTED:
            t.finished = created + timedelta(seconds=5 + self.rng.random() * 600)
            who = int(self.rng.random() * len(ACTORS))
            t.final, t.killed_by = self.pools.kills[who], ACTORS[who]
            t.status = TaskStatus.FAILED
            self._closing(t, events, t.final, t.finished, TaskStatus.RUNNING, t.status)
        else:
            self._run(t, events)
        if t.status is TaskStatus.FAILED:
            if len(self.failed_recently) < 2000:
                self.failed_recently.append((t.id, (t.name, t.sort_key), t.prompt))
            else:
                self.failed_recently[int(self.rng.random() * 2000)] = (
                    t.id, (t.name, t.sort_key), t.prompt)
        return self._row(t)

    def _identity(self, created: datetime, role: Role) -> _Task:
        """Who started the task, what it is called and asked, and on which provider."""
        pools = self.pools
        rand = self.rng.random
        task_id = self.next_task_id
        self.next_task_id += 1
        trigger = self.triggers[self._pick(self.trigger_cdf)]
        provider, model, used_default, price = self.providers[self._pick(self.provider_cdf)]
        restarted_from: int | None = None
        parent: str | None = None
        if trigger is Trigger.CRONJOB:
            named, prompt = self._choice(pools.cronjobs)
            parent = SESSIONS[1] if rand() < 0.5 else None
        else:
            if trigger is Trigger.HEARTBEAT:
                named = self._choice(pools.heartbeat)
            elif trigger is Trigger.CONSOLIDATION:
                named = self._choice(pools.consolidation)
            else:
                named = self._choice(pools.names)
                parent = self._choice(SESSIONS)
            prompt = self._choice(pools.prompts)
            if trigger is Trigger.USER and self.failed_recently and rand() < 0.06:
                restarted_from, named, prompt = self._choice(self.failed_recently)
        outcome = self.outcomes[self._pick(self.outcome_cdf)] if role is Role.ENDED else None
        return _Task(task_id, created, role, outcome, trigger, provider, model, used_default,
                     price, named[0], named[1], prompt, parent, restarted_from,
                     self._choice(self.max_durations))

    def _emit(self, t: _Task, events: list[Row], at: datetime, kind: str, payload: str) -> None:
        t.seq += 1
        events.append((self.next_event_id, t.id, t.seq, self.ts(at), kind, payload, self.txid))
        self.next_event_id += 1
        t.last_at = at

    def _run(self, t: _Task, events: list[Row]) -> None:
        """A started task: its running stretch, its timeline and how it stands now."""
        rng, rand = self.rng, self.rng.random
        started = t.created + timedelta(seconds=0.2 + rng.expovariate(1 / 8))
        t.started = started
        if t.role in (Role.PAUSED, Role.RUNNING):
            # Max duration is wall-clock from the start, paused time included: a task
            # still open now has its deadline ahead of it (half an hour at least).
            needed = (self.now - started).total_seconds() / 60 + 30
            t.max_minutes = next((m for m in sorted(set(self.max_durations)) if m >= needed),
                                 self.max_duration_cap)
        # How long it ran: median ~1.5 min, long tail, within the max duration.
        limit_s = t.max_minutes * 60.0
        run_s = min(rng.lognormvariate(4.5, 1.1), limit_s * 0.97)
        if t.outcome is Outcome.MAX_DURATION:
            run_s = limit_s + rand() * 2
        latest = self.now - timedelta(seconds=1)
        if t.outcome is Outcome.TIMEOUT:
            latest -= self.timeout_after
        if started + timedelta(seconds=run_s) > latest:
            if t.outcome in (Outcome.MAX_DURATION, Outcome.TIMEOUT):
                t.outcome = Outcome.FAILED  # no room left in the history for that ending
                latest = self.now - timedelta(seconds=1)
            run_s = max(0.5, (latest - started).total_seconds() * (0.5 + rand() * 0.5))
        if t.role is Role.RUNNING:  # still working: the last event is a few seconds old
            run_s = max(0.5, (latest - started).total_seconds() - rand() * 30)
        stop = started + timedelta(seconds=run_s)  # end of the running stretch

        closing = 0 if t.role is Role.RUNNING else _CLOSING_EVENTS.get(t.outcome, 3)
        middle = max(0, int(self.events_per_task * (0.5 + rand()) + 0.5) - 1 - closing)
        if t.outcome is Outcome.LOOP:
            middle = max(middle, self.loop_threshold)
        if t.outcome is Outcome.ANSWERED:
            middle = max(middle, 6)  # room for the question, the answer and more work
        self._emit(t, events, started, "status_change", _STARTED)
        self._timeline(t, events, middle, (stop - started) / (middle + 1))

        turns = 1 + t.tool_calls
        t.prompt_tokens = int(turns * (900 + rand() * 7000))
        t.completion_tokens = int((1 + middle - t.tool_calls) * (40 + rand() * 600)
                                  + turns * rand() * 80)
        if t.role is Role.PAUSED:
            t.status = TaskStatus.PAUSED
            t.final = self._choice(self.pools.questions)
            self._closing(t, events, t.final, stop, TaskStatus.RUNNING, t.status)
        elif t.role is Role.ENDED:
            self._end(t, events, stop)

    def _timeline(self, t: _Task, events: list[Row], middle: int, step: timedelta) -> None:
        """The events between the start and the ending: tool calls, text and thinking, and
        for an answered task the question and its answer."""
        pools, rand = self.pools, self.rng.random
        started = t.started
        assert started is not None
        answered_at = 1 + int(rand() * (middle - 5)) if t.outcome is Outcome.ANSWERED else -1
        loop_payload = ""
        if t.outcome is Outcome.LOOP:
            t.loop_tool = self._choice(TOOLS)[0]
            loop_payload = self._choice(pools.tool_err_by_tool[t.loop_tool])
        k = 0
        while k < middle:
            at = started + step * (k + 1)
            if k == answered_at:
                self._answered(t, events, at, started + step * (k + 5))
                k += 5
                continue
            r = rand()
            if t.outcome is Outcome.LOOP and k >= middle - self.loop_threshold:
                kind, payload = "tool_call", loop_payload
            elif r < 0.5:
                kind = "tool_call"
                payload = (self._choice(pools.tool_err) if r < 0.05
                           else self._choice(pools.tool_ok))
            elif r < 0.78:
                kind, payload = "text", self._choice(pools.texts)
            else:
                kind, payload = "thinking", self._choice(pools.thoughts)
            if kind == "tool_call":
                t.tool_calls += 1
            self._emit(t, events, at, kind, payload)
            k += 1

    def _answered(self, t: _Task, events: list[Row], asked: datetime,
                  answered: datetime) -> None:
        """Paused with a question, answered by an admin: the run goes on."""
        question = self._choice(self.pools.questions)
        answer, by = self._choice(self.pools.answers)
        tokens_so_far = int(1000 + self.rng.random() * 20000)
        self._closing(t, events, question, asked, TaskStatus.RUNNING, TaskStatus.PAUSED,
                      tokens=tokens_so_far)
        self._emit(t, events, answered, "status_change", _status_change(
            TaskStatus.PAUSED, TaskStatus.RUNNING, f"Answered by {by}"))
        self._emit(t, events, answered, "answer", dumps({"text": answer, "by": by}))

    def _end(self, t: _Task, events: list[Row], stop: datetime) -> None:
        """The ending of a task of the history."""
        pools = self.pools
        outcome = t.outcome
        if outcome is Outcome.TIMEOUT:
            question = self._choice(pools.questions)
            self._closing(t, events, question, stop, TaskStatus.RUNNING, TaskStatus.PAUSED)
            t.finished = stop + self.timeout_after
            t.final = pools.timeout
            self._closing(t, events, t.final, t.finished, TaskStatus.PAUSED, TaskStatus.FAILED)
        else:
            if outcome in (Outcome.COMPLETED, Outcome.ANSWERED):
                t.final = self._choice(pools.completed)
            elif outcome is Outcome.UNFORMATTED:
                t.final = self._choice(pools.unformatted)
            elif outcome is Outcome.SILENT:
                t.final = self._choice(pools.silent)
            elif outcome is Outcome.FAILED:
                t.final = self._choice(pools.failed)
            elif outcome is Outcome.KILLED:
                who = int(self.rng.random() * len(ACTORS))
                t.final, t.killed_by = pools.kills[who], ACTORS[who]
            elif outcome is Outcome.MAX_DURATION:
                t.final = pools.max_duration
            else:  # Outcome.LOOP
                t.final = Final.of_runtime(
                    f"Loop detected ({self.loop_method}): {t.loop_tool} failed "
                    f"{self.loop_threshold} times in a row\n"
                    f"Hint: Use /kill_task {t.id} if the task needs to be cleaned up.")
            t.finished = stop
            self._closing(t, events, t.final, stop, TaskStatus.RUNNING,
                          t.final.final.task_status)
        t.status = t.final.final.task_status

    def _closing(self, t: _Task, events: list[Row], final: Final, at: datetime,
                 old: TaskStatus, new: TaskStatus, tokens: int | None = None) -> None:
        """What the store's transition and ``transitions.end`` write: status_change, final,
        injection."""
        self._emit(t, events, at, "status_change", _status_change(old, new, final.message))
        self._emit(t, events, at, "final", final.payload)
        injection = rules.injection_payload(
            task_id=t.id, task_name=t.name, trigger=t.trigger, parent_session=t.parent,
            final=final.final, started_at=t.started, at=at,
            tokens_used=t.prompt_tokens + t.completion_tokens if tokens is None else tokens)
        if injection is not None:
            self._emit(t, events, at, "injection", dumps(injection))

    def _row(self, t: _Task) -> Row:
        ts = self.ts
        final = t.final.final if t.final is not None else None
        cost = (None if t.price is None else rules.estimate_cost(
            t.price.input_per_million, t.price.output_per_million, t.prompt_tokens,
            t.completion_tokens))
        return (
            t.id, t.name, t.sort_key, t.prompt, t.status.value, t.trigger.value, None,
            t.provider, t.model, t.used_default, t.max_minutes, t.parent, t.restarted_from,
            ts(t.created), None if t.started is None else ts(t.started),
            None if t.finished is None else ts(t.finished),
            rules.duration_ms(t.started, t.finished), t.prompt_tokens, t.completion_tokens,
            t.prompt_tokens + t.completion_tokens, cost, t.tool_calls,
            final.result.value if final else None, final.summary if final else None,
            final.summary if final and final.result is ResultStatus.FAILED else None,
            t.killed_by, None if t.last_at is None else ts(t.last_at), t.seq,
        )


_STATUS_CHANGES: dict[tuple[TaskStatus | None, TaskStatus, str], str] = {}


def _status_change(old: TaskStatus | None, new: TaskStatus, message: str) -> str:
    """The ``status_change`` payload as JSON (cached: the messages repeat)."""
    key = (old, new, message)
    payload = _STATUS_CHANGES.get(key)
    if payload is None:
        payload = dumps(rules.status_change_payload(old, new, message))
        if len(_STATUS_CHANGES) < 10_000:
            _STATUS_CHANGES[key] = payload
    return payload


_STARTED = dumps(rules.started_payload())
