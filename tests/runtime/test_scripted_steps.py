"""The scripted provider's step language, without a store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from taskops.runtime.agent import RunContext, ToolOutcome
from taskops.runtime.scripted import (
    LOOP_GIVE_UP,
    ScriptedProvider,
    ScriptError,
    Step,
    StepKind,
    parse_steps,
)
from taskops.storage.domain import EventKind, ResultStatus, Task, TaskEvent, TaskStatus, Trigger


def make_task(prompt: str) -> Task:
    now = datetime(2026, 11, 20, tzinfo=UTC)
    return Task(id=7, name="n", prompt=prompt, status=TaskStatus.RUNNING, trigger=Trigger.USER,
                trigger_source_id=None, provider="scripted", model="scripted",
                used_default=True, max_duration_minutes=60, parent_session=None,
                restarted_from_id=None, created_at=now, started_at=now, finished_at=None,
                prompt_tokens=0, completion_tokens=0, cost_usd=None, tool_call_count=0,
                result_status=None, summary=None, error=None, killed_by=None,
                last_event_at=None, event_count=0)


class RecordingIO:
    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []

    async def thinking(self, text: str) -> None:
        self.log.append(("think", text))

    async def say(self, text: str) -> None:
        self.log.append(("say", text))

    async def tool_call(self, name: str, arguments: dict[str, Any] | str, *,
                        outcome: ToolOutcome | None = None) -> ToolOutcome:
        self.log.append(("tool", (name, arguments, outcome)))
        return outcome or ToolOutcome("ran")

    def usage(self, prompt_tokens: int, completion_tokens: int,
              cost_usd: float | None = None) -> None:
        self.log.append(("usage", (prompt_tokens, completion_tokens)))

    async def work(self, seconds: float) -> None:
        self.log.append(("work", seconds))


def journal(*items: tuple[EventKind, dict[str, Any]]) -> tuple[TaskEvent, ...]:
    at = datetime(2026, 11, 20, tzinfo=UTC)
    return tuple(TaskEvent(seq, 7, seq, at, kind, payload)
                 for seq, (kind, payload) in enumerate(items, start=1))


async def run(prompt: str, answers: tuple[str, ...] = (),
              history: tuple[TaskEvent, ...] = ()) -> tuple[str, list[tuple[str, Any]]]:
    io = RecordingIO()
    ctx = RunContext(task=make_task(prompt), answers=answers, history=history, tools=(),
                     thinking=True)
    final = await ScriptedProvider().run(ctx, io)
    return final, io.log


def test_every_step_parses() -> None:
    steps = parse_steps("\n".join([
        "Describe the job here; this line is ignored.",
        "!think plan it",
        "!say **bold** move\\nsecond line",
        '!tool search {"q": "a -> b"} -> found 3',
        '!tool fetch {"url": "x"} !! 404 Not Found',
        "!tool current_time {}",
        "!wait 0.5",
        "!tokens 1200 340",
        "!loop flaky",
        "!end question Which branch?",
    ]))
    assert steps == [
        Step(StepKind.THINK, "plan it"),
        Step(StepKind.SAY, "**bold** move\nsecond line"),
        Step(StepKind.TOOL, "search", arguments={"q": "a -> b"},
             outcome=ToolOutcome("found 3")),
        Step(StepKind.TOOL, "fetch", arguments={"url": "x"},
             outcome=ToolOutcome("404 Not Found", is_error=True)),
        Step(StepKind.TOOL, "current_time", arguments={}),
        Step(StepKind.WAIT, seconds=0.5),
        Step(StepKind.TOKENS, tokens=(1200, 340)),
        Step(StepKind.LOOP, "flaky"),
        Step(StepKind.END, "Which branch?", status=ResultStatus.QUESTION),
    ]


@pytest.mark.parametrize(("line", "problem"), [
    ("!dance now", "unknown step !dance"),
    ("!tool", "needs a tool name"),
    ("!tool x {bad json} -> y", "not valid JSON"),
    ("!tool x [1, 2] -> y", "arguments"),
    ('!tool x {"a": 1} => y', "expected '-> result'"),
    ("!wait soon", "expected a number"),
    ("!wait -1", "at least 0"),
    ("!tokens 10", "two whole numbers"),
    ("!end done ok", "expected completed, failed, question or silent"),
    ("!loop", "needs a tool name"),
])
def test_a_bad_step_names_its_line(line: str, problem: str) -> None:
    with pytest.raises(ScriptError) as error:
        parse_steps(f"first line\n{line}")
    assert str(error.value).startswith("Scripted prompt, line 2: ")
    assert problem in str(error.value)


async def test_steps_run_in_order_and_end_with_the_format() -> None:
    final, log = await run("!say hi\n!tokens 5 6\n!wait 0.01\n!end failed no creds\n!say never")
    assert log == [("say", "hi"), ("usage", (5, 6)), ("work", 0.01)]
    assert final == "STATUS: failed\nSUMMARY:\nno creds"


async def test_without_end_the_last_text_is_the_final_message() -> None:
    final, _ = await run("!say one\n!say two")
    assert final == "two"
    final, _ = await run("!tokens 1 1")
    assert final == "Done."


async def test_after_an_answer_the_run_continues_after_that_question() -> None:
    prompt = "!say a\n!end question Q1?\n!say b\n!end question Q2?\n!say c\n!end completed ok"
    asked = [(EventKind.STATUS_CHANGE, {"new": "running"}), (EventKind.TEXT, {"text": "a"}),
             (EventKind.STATUS_CHANGE, {"new": "paused"}),
             (EventKind.FINAL, {"status": "question"}), (EventKind.INJECTION, {}),
             (EventKind.STATUS_CHANGE, {"new": "running"}), (EventKind.ANSWER, {"text": "yes"})]
    final, log = await run(prompt, ("yes",), journal(*asked))
    assert (final, log) == ("STATUS: question\nSUMMARY:\nQ2?", [("say", "b")])
    asked += [(EventKind.TEXT, {"text": "b"}), (EventKind.FINAL, {"status": "question"}),
              (EventKind.ANSWER, {"text": "no"})]
    final, log = await run(prompt, ("yes", "no"), journal(*asked))
    assert (final, log) == ("STATUS: completed\nSUMMARY:\nok", [("say", "c")])


async def test_a_prompt_without_steps_gets_a_plausible_default_run() -> None:
    final, log = await run("Check the backups\nand tell me")
    assert final.startswith("STATUS: completed\nSUMMARY:\nDone: Check the backups")
    assert [k for k, _ in log].count("tool") == 2
    assert 2.0 <= sum(v for k, v in log if k == "work") <= 5.0


async def test_loop_keeps_calling_the_same_failing_tool() -> None:
    final, log = await run("!loop flaky")
    calls = [v for k, v in log if k == "tool"]
    assert len(calls) == LOOP_GIVE_UP
    assert all(c[0] == "flaky" and c[1] == {} and c[2].is_error for c in calls)
    assert final.startswith("STATUS: failed")
