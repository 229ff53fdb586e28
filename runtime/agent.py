"""The provider interface: how an agent loop talks to a model.

A provider drives one run of a task: it decides what the agent says, thinks and which
tools it calls, and returns the final message. Everything the agent does goes through
the :class:`AgentIO` it is given, which writes events to the store as they happen,
runs tools, counts tokens and enforces loop detection; the provider never touches the
store. Stopping a run (kill, max duration) cancels the provider's coroutine, so a
provider must be plain cancellable asyncio code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from taskops.storage.domain import Task, TaskEvent


class ProviderError(Exception):
    """The provider could not produce a turn; the task fails with this message."""


@dataclass(frozen=True)
class ToolOutcome:
    """What came back from a tool call."""

    result: str
    is_error: bool = False


@dataclass(frozen=True)
class ToolSpec:
    """A tool as offered to the model (OpenAI function-calling shape)."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object",
                                                                "properties": {}})


@dataclass(frozen=True)
class RunContext:
    """What a provider knows when a run starts or continues."""

    task: Task
    #: answers to the task's questions, oldest first (non-empty: the run continues)
    answers: tuple[str, ...]
    #: the task's events so far, in order (for providers that replay a conversation)
    history: tuple[TaskEvent, ...]
    tools: tuple[ToolSpec, ...]
    #: whether thinking is wanted at all ([tasks] thinking_level is not off)
    thinking: bool


class AgentIO(Protocol):
    """The agent loop's side: each call records what happened, at once."""

    async def thinking(self, text: str) -> None: ...

    async def say(self, text: str) -> None: ...

    async def tool_call(self, name: str, arguments: dict[str, Any] | str, *,
                        outcome: ToolOutcome | None = None) -> ToolOutcome:
        """Record a tool call; runs the registered tool unless ``outcome`` is given.

        ``arguments`` is a string only when the model sent arguments that are not a JSON
        object; the call then fails without running anything.
        """
        ...

    def usage(self, prompt_tokens: int, completion_tokens: int,
              cost_usd: float | None = None) -> None:
        """Add token usage; it rides on the next event written (or the final message)."""
        ...

    async def work(self, seconds: float) -> None:
        """Spend time working (killable at any moment)."""
        ...


class Provider(Protocol):
    name: str

    async def run(self, ctx: RunContext, io: AgentIO) -> str:
        """Run (or continue) the task; returns the agent's final message."""
        ...

    async def aclose(self) -> None: ...
