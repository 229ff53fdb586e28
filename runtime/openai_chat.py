"""The ``openai`` provider: any OpenAI-compatible chat-completions endpoint, over httpx.

Each turn POSTs ``{base_url}/chat/completions`` with the conversation and the tools,
``stream: true`` (a server that answers with plain JSON is read too). Text that comes
with tool calls is agent narration; a reply without tool calls is the final message.
Usage comes from ``stream_options.include_usage``; a ``usage.cost`` the server reports
(OpenRouter does) wins over the price table.

Failures never hang a worker: ``timeout_seconds`` bounds connecting and every wait for
the next bytes; 429, 5xx and connection errors are retried twice with backoff; then the
task fails with a message naming the provider, the URL and what went wrong.

A continued run (after an answer, or taken up again after a restart) rebuilds the
conversation from the task's journal, so the model sees everything it did before; a call
cut off by the restart reaches it as an error saying so (runtime.resume).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from taskops.config import ProviderSettings
from taskops.runtime.agent import AgentIO, ProviderError, RunContext, ToolSpec
from taskops.runtime.openai_stream import (
    ErrorReply,
    MalformedReply,
    Reply,
    StreamReader,
    parse_completion,
)
from taskops.storage.domain import EventKind

SYSTEM_PROMPT = """You are a background task agent. Work on the task with the tools you have; \
keep narration short. When you are done, your last message must have exactly this format:

STATUS: completed | failed | question | silent
SUMMARY:
<full content>

Use `question` to ask the user one question (the task waits for the answer), `failed` when \
the task cannot be done (say why), and `silent` when there is nothing worth reporting."""

#: a run that keeps calling tools without ever answering ends here (max duration aside)
MAX_TURNS = 200
_RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class _Retryable(Exception):
    pass


class _Refused(Exception):
    """An HTTP error that asking again will not fix (400, 401, 404, ...)."""


def tool_schema(spec: ToolSpec) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": spec.name, "description": spec.description, "parameters": spec.parameters}}


def conversation(ctx: RunContext, system_prompt: str = SYSTEM_PROMPT) -> list[dict[str, Any]]:
    """The chat messages for a run: the prompt, then the task's history replayed."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt},
                                      {"role": "user", "content": ctx.task.prompt}]
    for event in ctx.history:
        payload = event.payload
        if event.kind is EventKind.TOOL_CALL:
            call_id = f"call_{event.seq}"
            arguments = payload.get("arguments")
            messages.append({"role": "assistant", "content": None, "tool_calls": [{
                "id": call_id, "type": "function", "function": {
                    "name": payload.get("tool", ""),
                    "arguments": arguments if isinstance(arguments, str)
                    else json.dumps(arguments, ensure_ascii=False)}}]})
            messages.append({"role": "tool", "tool_call_id": call_id,
                             "content": _tool_message(payload)})
        elif event.kind is EventKind.TEXT:
            messages.append({"role": "assistant", "content": str(payload.get("text", ""))})
        elif event.kind is EventKind.FINAL:
            text = payload.get("text") or (f"STATUS: {payload.get('status')}\nSUMMARY:\n"
                                           f"{payload.get('summary', '')}")
            messages.append({"role": "assistant", "content": str(text)})
        elif event.kind is EventKind.ANSWER:
            messages.append({"role": "user", "content": str(payload.get("text", ""))})
    return messages


#: what the model reads for a call cut off by a restart (its effect is unknown)
INTERRUPTED_MESSAGE = ("Error: {result}. The call started but its result was not recorded, so "
                       "it may or may not have taken effect; it was not run again. Check "
                       "before you repeat it.")


def _tool_message(payload: dict[str, Any]) -> str:
    result = str(payload.get("result", ""))
    if payload.get("interrupted"):
        return INTERRUPTED_MESSAGE.format(result=result)
    return result


def _arguments(raw: str) -> dict[str, Any] | str:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    return value if isinstance(value, dict) else raw


class OpenAIProvider:
    def __init__(self, config: ProviderSettings, *, retries: int = 2,
                 retry_backoff_seconds: float = 0.5, system_prompt: str = SYSTEM_PROMPT) -> None:
        if not config.base_url:
            raise ValueError(f"provider {config.name!r} has no base_url")
        self.name = config.name
        self.config = config
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        self.retries = retries
        self.retry_backoff_seconds = retry_backoff_seconds
        self.system_prompt = system_prompt
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(config.timeout_seconds))

    async def aclose(self) -> None:
        await self._client.aclose()

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if self.config.api_key_env:
            key = self.config.api_key(None)
            if key is None:
                raise ProviderError(f"Provider '{self.name}': the environment variable "
                                    f"{self.config.api_key_env} (its API key) is not set")
            headers["Authorization"] = f"Bearer {key.get()}"
        return headers

    async def run(self, ctx: RunContext, io: AgentIO) -> str:
        model = ctx.task.model or (self.config.models[0] if self.config.models else "")
        messages = conversation(ctx, self.system_prompt)
        tools = [tool_schema(spec) for spec in ctx.tools]
        for _ in range(MAX_TURNS):
            reply = await self._complete(model, messages, tools)
            io.usage(reply.prompt_tokens, reply.completion_tokens, reply.cost_usd)
            if reply.reasoning:
                await io.thinking(reply.reasoning)
            if not reply.tool_calls:
                if not reply.content.strip():
                    raise ProviderError(f"{self._where(model)}: the model returned an "
                                        "empty message")
                return reply.content
            await io.say(reply.content)
            messages.append({"role": "assistant", "content": reply.content or None,
                             "tool_calls": [{"id": c.id, "type": "function", "function": {
                                 "name": c.name, "arguments": c.arguments}}
                                 for c in reply.tool_calls]})
            for call in reply.tool_calls:
                outcome = await io.tool_call(call.name, _arguments(call.arguments))
                messages.append({"role": "tool", "tool_call_id": call.id,
                                 "content": outcome.result})
        raise ProviderError(f"{self._where(model)}: no final message after {MAX_TURNS} "
                            "turns")

    def _where(self, model: str) -> str:
        return f"Provider '{self.name}' ({model}) at {self.url}"

    async def _complete(self, model: str, messages: list[dict[str, Any]],
                        tools: list[dict[str, Any]]) -> Reply:
        payload: dict[str, Any] = {"model": model, "messages": messages, "stream": True,
                                   "stream_options": {"include_usage": True}}
        if tools:
            payload["tools"] = tools
        where = self._where(model)
        for attempt in range(self.retries + 1):
            try:
                return await self._request(payload)
            except _Retryable as exc:
                if attempt == self.retries:
                    raise ProviderError(f"{where}: {exc}") from None
                await asyncio.sleep(self.retry_backoff_seconds * 2 ** attempt)
            except _Refused as exc:
                raise ProviderError(f"{where}: {exc}") from None
            except httpx.TimeoutException:
                raise ProviderError(f"{where}: no response within "
                                    f"{self.config.timeout_seconds:g}s (timeout)") from None
            except MalformedReply as exc:
                raise ProviderError(f"{where}: malformed response: {exc}") from None
            except ErrorReply as exc:
                raise ProviderError(f"{where}: the server reported an error: {exc}") from None
            except httpx.HTTPError as exc:
                raise ProviderError(f"{where}: {type(exc).__name__}: {exc}") from None
        raise AssertionError("unreachable")

    async def _request(self, payload: dict[str, Any]) -> Reply:
        try:
            async with self._client.stream("POST", self.url, json=payload,
                                           headers=self._headers()) as response:
                if response.status_code >= 400:
                    detail = await self._error_detail(response)
                    problem = f"HTTP {response.status_code}{detail}"
                    if response.status_code in _RETRY_STATUS:
                        raise _Retryable(problem)
                    raise _Refused(problem)
                if "text/event-stream" not in response.headers.get("content-type", ""):
                    body = await response.aread()
                    try:
                        return parse_completion(json.loads(body))
                    except (json.JSONDecodeError, UnicodeDecodeError):
                        raise MalformedReply(f"the body is not JSON: {body[:80]!r}") from None
                reader = StreamReader()
                async for line in response.aiter_lines():
                    reader.feed(line)
                    if reader.done:
                        break
                return reader.finish()
        except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None

    @staticmethod
    async def _error_detail(response: httpx.Response) -> str:
        body = (await response.aread())[:2000]
        try:
            error = json.loads(body).get("error")
            message = error.get("message") if isinstance(error, dict) else error
        except (ValueError, AttributeError):
            message = body.decode("utf-8", "replace").strip()
        return f": {str(message)[:300]}" if message else ""
