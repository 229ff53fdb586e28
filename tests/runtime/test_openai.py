"""The openai provider against a local fake endpoint (never the internet)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from taskops.config import ProviderKind, ProviderSettings
from taskops.runtime.agent import ProviderError, RunContext, ToolSpec
from taskops.runtime.openai_chat import OpenAIProvider
from taskops.storage.domain import EventKind, ProviderChoice, TaskEvent, TaskStatus
from tests.runtime.conftest import (
    MakeStore,
    events,
    providers_with_fast_retries,
    running_worker,
    submit,
    wait_ended,
    wait_status,
)
from tests.runtime.fake_openai import FakeOpenAI, FakeReply, json_reply, sse_text, sse_tool_calls
from tests.runtime.test_scripted_steps import RecordingIO, make_task


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


def provider_for(fake: FakeOpenAI, **settings: Any) -> OpenAIProvider:
    config = ProviderSettings(name="fake", kind=ProviderKind.OPENAI, base_url=fake.base_url,
                              models=("fake-model",), **settings)
    return OpenAIProvider(config, retry_backoff_seconds=0.01)


async def run(provider: OpenAIProvider, *, history: tuple[TaskEvent, ...] = (),
              answers: tuple[str, ...] = ()) -> tuple[str, list[tuple[str, Any]]]:
    io = RecordingIO()
    task = make_task("Summarise the changelog")
    ctx = RunContext(task=task, answers=answers, history=history,
                     tools=(ToolSpec("echo", "Echo text"),), thinking=True)
    try:
        return await provider.run(ctx, io), io.log
    finally:
        await provider.aclose()


async def test_a_streamed_reply_is_the_final_message(fake: FakeOpenAI,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_KEY", "sk-test-123")
    fake.replies.append(FakeReply(chunks=sse_text("STATUS: completed\nSUMMARY:\nAll done",
                                                  usage=(120, 30), reasoning="hmm")))
    final, log = await run(provider_for(fake, api_key_env="FAKE_KEY"))
    assert final == "STATUS: completed\nSUMMARY:\nAll done"
    assert log == [("usage", (120, 30)), ("think", "hmm")]
    request = fake.requests[0]
    assert request["model"] == "scripted"  # the task's model
    assert request["stream"] is True
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert request["messages"][1]["content"] == "Summarise the changelog"
    assert request["tools"][0]["function"]["name"] == "echo"
    assert fake.headers[0]["Authorization"] == "Bearer sk-test-123"


async def test_tool_calls_go_to_the_tools_and_back_to_the_model(fake: FakeOpenAI) -> None:
    fake.replies.append(FakeReply(chunks=sse_tool_calls(
        [("call_a", "echo", '{"text": "hi"}'), ("call_b", "echo", "{not json")],
        text="Let me check.")))
    fake.replies.append(FakeReply(chunks=sse_text("done")))
    final, log = await run(provider_for(fake))
    assert final == "done"
    tools = [v for k, v in log if k == "tool"]
    assert [(name, args) for name, args, _ in tools] == [("echo", {"text": "hi"}),
                                                         ("echo", "{not json")]
    assert ("say", "Let me check.") in log
    second = fake.requests[1]["messages"]
    assert second[2]["role"] == "assistant"
    assert [c["id"] for c in second[2]["tool_calls"]] == ["call_a", "call_b"]
    assert second[3] == {"role": "tool", "tool_call_id": "call_a", "content": "ran"}


async def test_a_plain_json_reply_is_accepted(fake: FakeOpenAI) -> None:
    fake.replies.append(json_reply({"choices": [{"message": {
        "role": "assistant", "content": "fine"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "cost": 0.002}}))
    final, log = await run(provider_for(fake))
    assert final == "fine"
    assert log == [("usage", (3, 4))]


@pytest.mark.parametrize(("reply", "problem"), [
    (FakeReply(chunks=["{not json"]), "malformed response: a stream chunk is not JSON"),
    (FakeReply(chunks=['{"id": 1}']), "malformed response: a stream chunk has no choices"),
    (FakeReply(chunks=sse_text("cut")[:2]), "malformed response: the stream ended before"),
    (FakeReply(body=b"<html>gateway</html>", content_type="text/html"),
     "malformed response: the body is not JSON"),
    (json_reply({"choices": []}), "malformed response: the response has no choices"),
    (json_reply({"choices": [{"message": {"content": "  "}}]}), "returned an empty message"),
    (FakeReply(chunks=['{"error": {"message": "context too long"}}']),
     "the server reported an error: context too long"),
    (json_reply({"error": {"message": "invalid api key"}}, status=401),
     "HTTP 401: invalid api key"),
])
async def test_bad_replies_fail_with_a_clear_error(fake: FakeOpenAI, reply: FakeReply,
                                                   problem: str) -> None:
    fake.replies.append(reply)
    with pytest.raises(ProviderError) as error:
        await run(provider_for(fake))
    message = str(error.value)
    assert message.startswith(f"Provider 'fake' (scripted) at {fake.base_url}/chat/completions")
    assert problem in message
    assert len(fake.requests) == 1  # none of these is worth asking again


async def test_server_errors_are_retried_then_fail(fake: FakeOpenAI) -> None:
    for _ in range(3):
        fake.replies.append(json_reply({"error": {"message": "overloaded"}}, status=500))
    with pytest.raises(ProviderError) as error:
        await run(provider_for(fake))
    assert str(error.value).endswith("HTTP 500: overloaded")
    assert len(fake.requests) == 3


async def test_a_server_error_then_success_recovers(fake: FakeOpenAI) -> None:
    fake.replies.append(FakeReply(status=503, body=b"busy", content_type="text/plain"))
    fake.replies.append(FakeReply(chunks=sse_text("ok")))
    final, _ = await run(provider_for(fake))
    assert final == "ok"


async def test_a_server_that_does_not_answer_times_out(fake: FakeOpenAI) -> None:
    fake.replies.append(FakeReply(hang=30, chunks=sse_text("late")))
    with pytest.raises(ProviderError) as error:
        await run(provider_for(fake, timeout_seconds=0.2))
    assert str(error.value).endswith("no response within 0.2s (timeout)")


async def test_a_stream_that_stalls_times_out(fake: FakeOpenAI) -> None:
    fake.replies.append(FakeReply(chunks=sse_text("slow words here"), delay_between=5))
    with pytest.raises(ProviderError) as error:
        await run(provider_for(fake, timeout_seconds=0.2))
    assert "(timeout)" in str(error.value)


async def test_a_missing_api_key_is_named(fake: FakeOpenAI,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(ProviderError) as error:
        await run(provider_for(fake, api_key_env="NO_SUCH_KEY"))
    assert "NO_SUCH_KEY" in str(error.value)
    assert not fake.requests


async def test_a_continued_run_replays_the_event_log(fake: FakeOpenAI) -> None:
    at = datetime(2026, 11, 20, tzinfo=UTC)

    def event(seq: int, kind: EventKind, payload: dict[str, Any]) -> TaskEvent:
        return TaskEvent(id=seq, task_id=7, seq=seq, at=at, kind=kind, payload=payload)

    history = (
        event(1, EventKind.STATUS_CHANGE, {"old": None, "new": "running"}),
        event(2, EventKind.TEXT, {"text": "Looking"}),
        event(3, EventKind.TOOL_CALL, {"tool": "echo", "arguments": {"text": "x"},
                                       "result": "x", "is_error": False, "duration_ms": 1}),
        event(4, EventKind.FINAL, {"status": "question", "summary": "Which?",
                                   "text": "STATUS: question\nSUMMARY:\nWhich?"}),
        event(5, EventKind.ANSWER, {"text": "the second", "by": "Ann"}),
    )
    fake.replies.append(FakeReply(chunks=sse_text("ok")))
    await run(provider_for(fake), history=history, answers=("the second",))
    messages = fake.requests[0]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "assistant", "tool",
                                             "assistant", "user"]
    assert json.loads(messages[3]["tool_calls"][0]["function"]["arguments"]) == {"text": "x"}
    assert messages[5]["content"] == "STATUS: question\nSUMMARY:\nWhich?"
    assert messages[6]["content"] == "the second"


# --- through the worker and the store ---------------------------------------------------


async def openai_store(make_store: MakeStore, fake: FakeOpenAI) -> Any:
    return await make_store({
        "providers.fake": {"kind": "openai", "base_url": fake.base_url,
                           "models": ["gpt-4o-mini", "free-model"], "timeout_seconds": 5},
        "tasks": {"default_provider": "fake", "default_model": "gpt-4o-mini"}})


async def test_an_openai_task_runs_tools_and_counts_tokens_and_cost(
        make_store: MakeStore, fake: FakeOpenAI) -> None:
    store = await openai_store(make_store, fake)
    fake.replies.append(FakeReply(chunks=sse_tool_calls([("c1", "echo", '{"text": "pong"}')],
                                                        usage=(1000, 100))))
    fake.replies.append(FakeReply(chunks=sse_text("STATUS: completed\nSUMMARY:\nponged",
                                                  usage=(2000, 200))))
    task = await submit(store, "ping")
    async with running_worker(store, providers=providers_with_fast_retries(store)):
        done = await wait_ended(store, task.id)
    assert (done.status, done.summary) == (TaskStatus.COMPLETED, "ponged")
    assert (done.prompt_tokens, done.completion_tokens, done.tool_call_count) == (3000, 300, 1)
    assert done.cost_usd == pytest.approx(3000 / 1e6 * 0.15 + 300 / 1e6 * 0.60)
    call = next(e for e in await events(store, task.id) if e.kind is EventKind.TOOL_CALL)
    assert (call.payload["arguments"], call.payload["result"]) == ({"text": "pong"}, "pong")


async def test_a_cost_reported_by_the_provider_wins(make_store: MakeStore,
                                                    fake: FakeOpenAI) -> None:
    store = await openai_store(make_store, fake)
    fake.replies.append(FakeReply(chunks=sse_text("done", usage=(1000, 100), cost=0.25)))
    task = await submit(store, "x")
    async with running_worker(store):
        done = await wait_ended(store, task.id)
    assert done.cost_usd == pytest.approx(0.25)


async def test_server_errors_fail_the_task_with_a_clear_error(make_store: MakeStore,
                                                              fake: FakeOpenAI) -> None:
    store = await openai_store(make_store, fake)
    task = await submit(store, "x", provider=ProviderChoice("fake", "free-model"))
    async with running_worker(store, providers=providers_with_fast_retries(store)):
        done = await wait_ended(store, task.id)
    assert done.status is TaskStatus.FAILED
    assert done.error == (f"Provider 'fake' (free-model) at {fake.base_url}/chat/completions: "
                          "HTTP 500: no reply queued")


async def test_an_answer_reaches_the_model(make_store: MakeStore, fake: FakeOpenAI) -> None:
    store = await openai_store(make_store, fake)
    fake.replies.append(FakeReply(chunks=sse_text("STATUS: question\nSUMMARY:\nWhich env?")))
    fake.replies.append(FakeReply(chunks=sse_text("STATUS: completed\nSUMMARY:\nDeployed")))
    task = await submit(store, "deploy")
    async with running_worker(store):
        await wait_status(store, task.id, TaskStatus.PAUSED)
        await store.resume_task(task.id, "staging", by="Ann")
        done = await wait_ended(store, task.id)
    assert done.summary == "Deployed"
    assert fake.requests[1]["messages"][-2:] == [
        {"role": "assistant", "content": "STATUS: question\nSUMMARY:\nWhich env?"},
        {"role": "user", "content": "staging"}]
