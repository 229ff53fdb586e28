"""The ``scripted`` provider: offline, deterministic runs written in the prompt.

Lines of the prompt that start with ``!`` are steps, run in order; every other line is
the task's description and ignored (docs/scripted-provider.md is the user guide)::

    !think <text>                           a thinking block
    !say <text>                             agent text (Markdown)
    !tool <name> <json-args> -> <result>    a tool call that succeeds
    !tool <name> <json-args> !! <error>     a tool call that fails
    !tool <name> <json-args>                a call of the registered tool itself
    !wait <seconds>                         work for that long (killable at any moment)
    !tokens <prompt> <completion>           add token usage
    !loop <name>                            call a failing tool until loop detection ends the run
    !end <completed|failed|question|silent> <summary>   the final message

``\\n`` in a text, result or summary stands for a line break. After a question is
answered, the run continues with the steps after that ``!end question`` line; a run taken
up again after a restart continues after the last step its journal records
(:func:`resume_point`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from taskops.runtime.agent import AgentIO, RunContext, ToolOutcome
from taskops.storage.domain import EventKind, ResultStatus, Task, TaskEvent

#: a scripted ``!loop`` gives up after this many calls when loop detection is off
LOOP_GIVE_UP = 50
#: pause between two ``!loop`` calls, so a loop looks like work and not a busy spin
LOOP_PAUSE_SECONDS = 0.05


class StepKind(StrEnum):
    THINK = "think"
    SAY = "say"
    TOOL = "tool"
    WAIT = "wait"
    TOKENS = "tokens"
    LOOP = "loop"
    END = "end"


class ScriptError(ValueError):
    """A step line that does not parse; the task fails with this message."""


@dataclass(frozen=True)
class Step:
    kind: StepKind
    #: think/say text, tool name, loop tool name, or end summary
    text: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)
    #: the canned outcome of a ``!tool`` step; None runs the registered tool
    outcome: ToolOutcome | None = None
    seconds: float = 0.0
    tokens: tuple[int, int] = (0, 0)
    status: ResultStatus | None = None


def _unescape(text: str) -> str:
    return text.strip().replace("\\n", "\n")


def _tool_step(rest: str) -> Step:
    name, _, tail = rest.strip().partition(" ")
    if not name:
        raise ScriptError("!tool needs a tool name")
    tail = tail.strip()
    arguments: Any = {}
    if tail.startswith("{"):
        try:
            arguments, end = json.JSONDecoder().raw_decode(tail)
        except json.JSONDecodeError as exc:
            raise ScriptError(f"!tool {name}: arguments are not valid JSON ({exc.msg})") from None
        tail = tail[end:].strip()
    if not isinstance(arguments, dict):
        raise ScriptError(f"!tool {name}: arguments must be a JSON object")
    if tail.startswith("->"):
        outcome: ToolOutcome | None = ToolOutcome(_unescape(tail[2:]))
    elif tail.startswith("!!"):
        outcome = ToolOutcome(_unescape(tail[2:]), is_error=True)
    elif not tail:
        outcome = None
    else:
        raise ScriptError(f"!tool {name}: expected '-> result' or '!! error' after the "
                          f"arguments, got {tail[:40]!r}")
    return Step(StepKind.TOOL, name, arguments=arguments, outcome=outcome)


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ScriptError(f"{what}: expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise ScriptError(f"{what}: expected a number of at least 0, got {text!r}")
    return value


def _step(line: str) -> Step:
    command, _, rest = line[1:].partition(" ")
    try:
        kind = StepKind(command.lower())
    except ValueError:
        raise ScriptError(f"unknown step !{command}") from None
    if kind in (StepKind.THINK, StepKind.SAY):
        return Step(kind, _unescape(rest))
    if kind is StepKind.TOOL:
        return _tool_step(rest)
    if kind is StepKind.WAIT:
        return Step(kind, seconds=_number(rest.strip(), "!wait"))
    if kind is StepKind.TOKENS:
        parts = rest.split()
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ScriptError(f"!tokens: expected two whole numbers, got {rest.strip()!r}")
        return Step(kind, tokens=(int(parts[0]), int(parts[1])))
    if kind is StepKind.LOOP:
        if not rest.strip():
            raise ScriptError("!loop needs a tool name")
        return Step(kind, rest.strip().split()[0])
    status_word, _, summary = rest.strip().partition(" ")
    try:
        status = ResultStatus(status_word.lower())
    except ValueError:
        raise ScriptError("!end: expected completed, failed, question or silent, got "
                          f"{status_word!r}") from None
    return Step(kind, _unescape(summary), status=status)


def parse_steps(prompt: str) -> list[Step]:
    """The prompt's steps in order; raises :class:`ScriptError` naming the bad line."""
    steps = []
    for number, raw in enumerate(prompt.splitlines(), start=1):
        line = raw.strip()
        if not line.startswith("!"):
            continue
        try:
            steps.append(_step(line))
        except ScriptError as exc:
            raise ScriptError(f"Scripted prompt, line {number}: {exc}") from None
    return steps


def default_steps(task: Task) -> list[Step]:
    """A plausible run of a few seconds for a prompt that has no steps."""
    topic = next((ln.strip() for ln in task.prompt.splitlines() if ln.strip()), task.name)
    topic = topic if len(topic) <= 80 else topic[:79] + "…"
    return [
        Step(StepKind.THINK, f"The task: {topic}. Check the time, find the facts, write "
                             "it up."),
        Step(StepKind.SAY, f"Starting on: {topic}"),
        Step(StepKind.TOOL, "current_time", arguments={}),
        Step(StepKind.TOKENS, tokens=(850, 120)),
        Step(StepKind.WAIT, seconds=1.0),
        Step(StepKind.TOOL, "search", arguments={"query": topic},
             outcome=ToolOutcome("3 results: the team notes, last week's report and the "
                                 "changelog.")),
        Step(StepKind.TOKENS, tokens=(2400, 310)),
        Step(StepKind.WAIT, seconds=1.5),
        Step(StepKind.SAY, "Read the sources; writing the summary."),
        Step(StepKind.TOKENS, tokens=(3100, 420)),
        Step(StepKind.WAIT, seconds=0.5),
        Step(StepKind.END, f"Done: {topic}\n\n- checked the sources\n- summarised what "
                           "changed", status=ResultStatus.COMPLETED),
    ]


#: the events a script's steps produce, in the order the journal holds them
_AGENT_EVENTS = frozenset({EventKind.THINKING, EventKind.TEXT, EventKind.TOOL_CALL,
                           EventKind.FINAL, EventKind.ANSWER})


@dataclass(frozen=True)
class ResumePoint:
    """Where a script continues: the first step not done yet, the last text said before
    it (the fallback final message), and the calls a ``!loop`` step has made so far."""

    index: int = 0
    said: str | None = None
    loop_calls: int = 0


def _produces(step: Step, thinking: bool) -> EventKind | None:
    if step.kind is StepKind.THINK:
        return EventKind.THINKING if thinking and step.text.strip() else None
    if step.kind is StepKind.SAY:
        return EventKind.TEXT if step.text.strip() else None
    if step.kind is StepKind.TOOL:
        return EventKind.TOOL_CALL
    return None


def resume_point(steps: list[Step], history: Sequence[TaskEvent], thinking: bool) -> ResumePoint:
    """Match the steps against the journal: every step whose event is recorded is done
    (a question and its answer included); the run continues after the last of them.

    Steps that record nothing (``!wait``, ``!tokens``) between two done steps are done
    too — their tokens were counted with the next event; those after the last done step
    run again (their tokens were not counted yet).
    """
    recorded = [e for e in history if e.kind in _AGENT_EVENTS]
    at, point = 0, ResumePoint()
    said: str | None = None
    for index, step in enumerate(steps):
        if step.kind is StepKind.LOOP:
            calls = 0
            while (at < len(recorded) and recorded[at].kind is EventKind.TOOL_CALL
                   and recorded[at].payload.get("tool") == step.text):
                calls, at = calls + 1, at + 1
            return ResumePoint(index, said, calls) if calls else point
        if step.kind is StepKind.END:
            asked = (step.status is ResultStatus.QUESTION and at + 1 < len(recorded)
                     and recorded[at].kind is EventKind.FINAL
                     and recorded[at + 1].kind is EventKind.ANSWER)
            if not asked:
                return point
            at += 2
            point = ResumePoint(index + 1, said)
            continue
        kind = _produces(step, thinking)
        if kind is None:
            continue
        if at >= len(recorded) or recorded[at].kind is not kind:
            return point
        at += 1
        if step.kind is StepKind.SAY:
            said = step.text
        point = ResumePoint(index + 1, said)
    return point


def final_message(status: ResultStatus, summary: str) -> str:
    return f"STATUS: {status.value}\nSUMMARY:\n{summary}"


class ScriptedProvider:
    name = "scripted"

    async def run(self, ctx: RunContext, io: AgentIO) -> str:
        steps = parse_steps(ctx.task.prompt) or default_steps(ctx.task)
        resume = resume_point(steps, ctx.history, ctx.thinking)
        said = resume.said
        for index in range(resume.index, len(steps)):
            step = steps[index]
            if step.kind is StepKind.THINK:
                await io.thinking(step.text)
            elif step.kind is StepKind.SAY:
                await io.say(step.text)
                said = step.text
            elif step.kind is StepKind.TOOL:
                await io.tool_call(step.text, step.arguments, outcome=step.outcome)
            elif step.kind is StepKind.WAIT:
                await io.work(step.seconds)
            elif step.kind is StepKind.TOKENS:
                io.usage(*step.tokens)
            elif step.kind is StepKind.LOOP:
                done = resume.loop_calls if index == resume.index else 0
                return await self._loop(step.text, io, done)
            else:
                assert step.status is not None
                return final_message(step.status, step.text)
        # No !end: the last thing said is the final message, without the format.
        return said or "Done."

    async def _loop(self, name: str, io: AgentIO, done: int = 0) -> str:
        # The same failing call each time: loop detection (if on) ends the run by raising.
        failure = ToolOutcome(f"{name} failed: the service answered 503 Service Unavailable",
                              is_error=True)
        for _ in range(done, LOOP_GIVE_UP):
            await io.tool_call(name, {}, outcome=failure)
            await io.work(LOOP_PAUSE_SECONDS)
        return final_message(ResultStatus.FAILED,
                             f"Gave up after {LOOP_GIVE_UP} failing calls of `{name}`.")

    async def aclose(self) -> None:
        return None
