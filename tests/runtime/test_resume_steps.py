"""A scripted run cut off anywhere and taken up again from its journal does every step
exactly once (the provider's side of resume, without a store)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from taskops.runtime.agent import RunContext, ToolOutcome
from taskops.runtime.scripted import ScriptedProvider
from taskops.storage.domain import EventKind, ResultStatus, TaskEvent
from tests.runtime.test_scripted_steps import make_task

AT = datetime(2026, 11, 20, tzinfo=UTC)


class Cut(BaseException):
    """The process died before this event was recorded."""


class JournalIO:
    """An AgentIO that records like TaskRun: usage rides on the next event."""

    def __init__(self, journal: list[TaskEvent], cut_at: int | None = None) -> None:
        self.journal = journal
        self.cut_at = cut_at
        self.usage_pending = [0, 0]

    def _record(self, kind: EventKind, payload: dict[str, Any]) -> None:
        if self.cut_at is not None and len(self.journal) >= self.cut_at:
            raise Cut
        payload = dict(payload, usage=list(self.usage_pending))
        self.usage_pending = [0, 0]
        seq = len(self.journal) + 1
        self.journal.append(TaskEvent(seq, 7, seq, AT, kind, payload))

    async def thinking(self, text: str) -> None:
        if text.strip():
            self._record(EventKind.THINKING, {"text": text})

    async def say(self, text: str) -> None:
        if text.strip():
            self._record(EventKind.TEXT, {"text": text})

    async def tool_call(self, name: str, arguments: dict[str, Any] | str, *,
                        outcome: ToolOutcome | None = None) -> ToolOutcome:
        outcome = outcome or ToolOutcome("ran")
        self._record(EventKind.TOOL_CALL, {"tool": name, "result": outcome.result})
        return outcome

    def usage(self, prompt_tokens: int, completion_tokens: int,
              cost_usd: float | None = None) -> None:
        self.usage_pending[0] += prompt_tokens
        self.usage_pending[1] += completion_tokens

    async def work(self, seconds: float) -> None:
        return None


async def play(prompt: str, journal: list[TaskEvent], cut_at: int | None = None) -> list[int]:
    """Run the script to its end, answering each question; returns the tokens counted with
    the last final message (a question's are stored with it, as ``finish_task`` does).
    Raises :class:`Cut` at ``cut_at`` events."""
    while True:
        io = JournalIO(journal, cut_at)
        ctx = RunContext(task=make_task(prompt), answers=(), history=tuple(journal), tools=(),
                         thinking=True)
        final = await ScriptedProvider().run(ctx, io)
        if not final.startswith("STATUS: question"):
            return io.usage_pending
        if cut_at is not None and len(journal) >= cut_at:
            raise Cut  # before the question was stored
        for kind, payload in ((EventKind.FINAL, {"status": ResultStatus.QUESTION.value,
                                                 "usage": io.usage_pending}),
                              (EventKind.ANSWER, {"text": "yes"})):
            seq = len(journal) + 1
            journal.append(TaskEvent(seq, 7, seq, AT, kind, payload))


step = st.one_of(
    st.text("abc xyz", min_size=1, max_size=6).map(lambda t: f"!say {t}"),
    st.text("abc", min_size=1, max_size=4).map(lambda t: f"!think {t}"),
    st.sampled_from(["a", "b"]).map(lambda n: f"!tool {n} {{}} -> ok"),
    st.sampled_from(["a", "b"]).map(lambda n: f"!tool {n} {{}} !! no"),
    st.integers(0, 50).map(lambda n: f"!tokens {n} {n + 1}"),
    st.just("!wait 0"),
    st.just("!end question more?"),
)


@given(st.lists(step, max_size=14), st.booleans(), st.data())
async def test_a_run_cut_anywhere_and_resumed_does_each_step_once(
        steps: list[str], ends: bool, data: st.DataObject) -> None:
    prompt = "\n".join([*steps, "!end completed done"] if ends else steps)
    whole: list[TaskEvent] = []
    tokens = await play(prompt, whole)
    # A cut between a question and its answer is not a resume: the task waits paused.
    cut_at = data.draw(st.sampled_from([n for n in range(len(whole) + 1)
                                        if n == 0 or whole[n - 1].kind is not EventKind.FINAL]))
    journal: list[TaskEvent] = []
    with contextlib.suppress(Cut):
        await play(prompt, journal, cut_at)
    assert [(e.kind, e.payload) for e in journal] == [(e.kind, e.payload)
                                                      for e in whole[:cut_at]]
    # Taken up again (at the full length: cut before its final message was stored).
    resumed_tokens = await play(prompt, journal)
    # Every event once, in order, with the tokens it carried; and the same tokens left
    # for the final message.
    assert [(e.kind, e.payload) for e in journal] == [(e.kind, e.payload) for e in whole]
    assert resumed_tokens == tokens
