"""Reading a task's journal (its events) when a run is taken up again.

A run continues from the journal, never from memory: the tool calls recorded there are
given back to the agent, not run again; a call that *started* (``tool_start``) but has no
recorded result was cut off by the restart — whether it took effect is unknown, so it is
recorded as interrupted and not run again, unless its tool declared itself safe to repeat.
"""

from __future__ import annotations

from collections.abc import Sequence

from taskops.storage.domain import EventKind, TaskEvent


def is_resume(history: Sequence[TaskEvent]) -> bool:
    """Whether a run claimed with this history takes up work that was cut off.

    Not when the last thing recorded is the answer to the task's question: that run
    simply continues (nothing was in flight).
    """
    return bool(history) and history[-1].kind is not EventKind.ANSWER


def dangling_calls(history: Sequence[TaskEvent]) -> list[TaskEvent]:
    """The ``tool_start`` events that have no ``tool_call`` (result) recorded after them."""
    finished = {e.payload.get("call") for e in history if e.kind is EventKind.TOOL_CALL}
    return [e for e in history if e.kind is EventKind.TOOL_START and e.seq not in finished]


def since_last_answer(history: Sequence[TaskEvent]) -> Sequence[TaskEvent]:
    """The events recorded since the last answer (all of them without one)."""
    for index in range(len(history) - 1, -1, -1):
        if history[index].kind is EventKind.ANSWER:
            return history[index + 1:]
    return history
