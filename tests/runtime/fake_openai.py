"""A local fake of an OpenAI-compatible chat-completions endpoint (aiohttp, 127.0.0.1).

Tests queue :class:`FakeReply` objects; each POST to ``/v1/chat/completions`` takes the
next one and records the request body. Replies can stream SSE chunks (optionally
slowly), send any status and body, or hang until the client gives up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web


@dataclass
class FakeReply:
    status: int = 200
    #: SSE ``data:`` payloads, sent in order (a stream); None sends ``body`` instead
    chunks: list[str] | None = None
    body: bytes = b""
    content_type: str = "application/json"
    #: seconds before answering at all (the client's timeout should trip)
    hang: float = 0.0
    delay_between: float = 0.0


def _chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    return json.dumps({"id": "c1", "object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def _usage(prompt: int, completion: int, cost: float | None) -> str:
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                             "total_tokens": prompt + completion}
    if cost is not None:
        usage["cost"] = cost
    return json.dumps({"id": "c1", "choices": [], "usage": usage})


def sse_text(text: str, *, usage: tuple[int, int] = (10, 5), cost: float | None = None,
             reasoning: str = "", pieces: int = 3) -> list[str]:
    """A streamed text reply, split into ``pieces`` deltas, ending with usage and DONE."""
    chunks = [_chunk({"role": "assistant", "content": ""})]
    if reasoning:
        chunks.append(_chunk({"reasoning_content": reasoning}))
    size = max(1, -(-len(text) // pieces))
    chunks += [_chunk({"content": text[i:i + size]}) for i in range(0, len(text), size)]
    chunks += [_chunk({}, "stop"), _usage(*usage, cost), "[DONE]"]
    return chunks


def sse_tool_calls(calls: list[tuple[str, str, str]], *, text: str = "",
                   usage: tuple[int, int] = (20, 8)) -> list[str]:
    """A streamed reply calling tools: (id, name, arguments JSON text) each, arguments
    split over two deltas as real servers do."""
    chunks = [_chunk({"role": "assistant", "content": text or None})]
    for index, (call_id, name, arguments) in enumerate(calls):
        half = len(arguments) // 2
        chunks.append(_chunk({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                                              "function": {"name": name,
                                                           "arguments": arguments[:half]}}]}))
        chunks.append(_chunk({"tool_calls": [{"index": index,
                                              "function": {"arguments": arguments[half:]}}]}))
    chunks += [_chunk({}, "tool_calls"), _usage(*usage, None), "[DONE]"]
    return chunks


def json_reply(body: Any, status: int = 200) -> FakeReply:
    return FakeReply(status=status, body=json.dumps(body).encode())


@dataclass
class FakeOpenAI:
    replies: deque[FakeReply] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    #: set once a stream has started sending
    streaming: asyncio.Event = field(default_factory=asyncio.Event)
    #: set when a client went away in the middle of a stream
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    base_url: str = ""
    _closing: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None

    async def __aenter__(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._complete)
        self._runner = web.AppRunner(app, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(await request.json())
        self.headers.append(dict(request.headers))
        reply = self.replies.popleft() if self.replies else FakeReply(
            status=500, body=b'{"error": {"message": "no reply queued"}}')
        if reply.hang:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), reply.hang)
        if reply.chunks is None:
            return web.Response(status=reply.status, body=reply.body,
                                content_type=reply.content_type)
        response = web.StreamResponse(status=reply.status,
                                      headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            for chunk in reply.chunks:
                await response.write(f"data: {chunk}\n\n".encode())
                self.streaming.set()
                if reply.delay_between:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._closing.wait(), reply.delay_between)
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        await response.write_eof()
        return response
