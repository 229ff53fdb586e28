"""Reading one chat-completions reply, streamed (SSE) or not, into a :class:`Reply`.

Everything a server can get wrong — a chunk that is not JSON, a missing ``choices``, a
stream that stops before its end — raises :class:`MalformedReply` with what was wrong,
which the provider turns into a failed task.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


class MalformedReply(Exception):
    pass


class ErrorReply(Exception):
    """The server sent an error object instead of a completion."""


@dataclass(frozen=True)
class ToolCallRequest:
    id: str
    name: str
    #: the raw JSON text the model produced (it may not be valid JSON)
    arguments: str


@dataclass
class Reply:
    content: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: what the provider itself charged (OpenRouter and others report it); else None
    cost_usd: float | None = None
    finish_reason: str | None = None


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedReply(f"{what} is not a JSON object")
    return value


def _error_text(body: dict[str, Any]) -> str | None:
    error = body.get("error")
    if error is None:
        return None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or error)
    return str(error)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _apply_usage(reply: Reply, usage: Any) -> None:
    if not isinstance(usage, dict):
        return
    reply.prompt_tokens = _count(usage.get("prompt_tokens"))
    reply.completion_tokens = _count(usage.get("completion_tokens"))
    cost = usage.get("cost")
    if isinstance(cost, int | float) and not isinstance(cost, bool) and cost >= 0:
        reply.cost_usd = float(cost)


def parse_completion(body: Any) -> Reply:
    """A whole (non-streamed) completion."""
    body = _object(body, "the response")
    if (error := _error_text(body)) is not None:
        raise ErrorReply(error)
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise MalformedReply("the response has no choices")
    choice = _object(choices[0], "choices[0]")
    message = _object(choice.get("message"), "choices[0].message")
    reply = Reply(content=message.get("content") or "",
                  reasoning=message.get("reasoning_content") or message.get("reasoning") or "",
                  finish_reason=choice.get("finish_reason"))
    if not isinstance(reply.content, str) or not isinstance(reply.reasoning, str):
        raise MalformedReply("choices[0].message.content is not text")
    for index, raw in enumerate(message.get("tool_calls") or []):
        call = _object(raw, f"tool_calls[{index}]")
        function = _object(call.get("function"), f"tool_calls[{index}].function")
        name, arguments = function.get("name"), function.get("arguments") or "{}"
        if not isinstance(name, str) or not name or not isinstance(arguments, str):
            raise MalformedReply(f"tool_calls[{index}] has no function name or arguments")
        reply.tool_calls.append(ToolCallRequest(str(call.get("id") or f"call_{index}"), name,
                                                arguments))
    _apply_usage(reply, body.get("usage"))
    return reply


class StreamReader:
    """Accumulates ``data:`` lines of an SSE chat-completions stream."""

    def __init__(self) -> None:
        self.reply = Reply()
        self.done = False
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}

    def feed(self, line: str) -> None:
        if not line.startswith("data:") or self.done:
            return  # blank separators, comments (":"), event:/id: fields
        data = line[5:].strip()
        if data == "[DONE]":
            self.done = True
            return
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            raise MalformedReply(f"a stream chunk is not JSON: {data[:80]!r}") from None
        chunk = _object(chunk, "a stream chunk")
        if (error := _error_text(chunk)) is not None:
            raise ErrorReply(error)
        _apply_usage(self.reply, chunk.get("usage"))
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            raise MalformedReply("a stream chunk has no choices list")
        for raw in choices:
            self._choice(_object(raw, "a stream choice"))

    def _choice(self, choice: dict[str, Any]) -> None:
        if choice.get("index", 0) != 0:
            return  # only the first choice is used (n=1 is requested)
        if choice.get("finish_reason"):
            self.reply.finish_reason = str(choice["finish_reason"])
        delta = _object(choice.get("delta") or {}, "a stream delta")
        for key, parts in (("content", self._content), ("reasoning_content", self._reasoning),
                           ("reasoning", self._reasoning)):
            piece = delta.get(key)
            if piece is not None and not isinstance(piece, str):
                raise MalformedReply(f"delta.{key} is not text")
            if piece:
                parts.append(piece)
        for raw in delta.get("tool_calls") or []:
            call = _object(raw, "a tool-call delta")
            index = call.get("index", 0)
            if not isinstance(index, int):
                raise MalformedReply("a tool-call delta has no index")
            slot = self._calls.setdefault(index, {"id": None, "name": "", "arguments": ""})
            function = _object(call.get("function") or {}, "a tool-call delta's function")
            slot["id"] = call.get("id") or slot["id"]
            name = function.get("name")
            # The name comes whole in the first delta; some servers repeat it later.
            if isinstance(name, str) and name != slot["name"]:
                slot["name"] += name
            if isinstance(function.get("arguments"), str):
                slot["arguments"] += function["arguments"]

    def finish(self) -> Reply:
        if not self.done and self.reply.finish_reason is None:
            raise MalformedReply("the stream ended before the reply was complete")
        self.reply.content = "".join(self._content)
        self.reply.reasoning = "".join(self._reasoning)
        for index in sorted(self._calls):
            slot = self._calls[index]
            if not slot["name"]:
                raise MalformedReply(f"tool call #{index} has no function name")
            self.reply.tool_calls.append(ToolCallRequest(
                slot["id"] or f"call_{index}", slot["name"], slot["arguments"] or "{}"))
        return self.reply
