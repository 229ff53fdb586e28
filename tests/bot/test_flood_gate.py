"""The flood gate: every request within Telegram's limits, 429s honoured per chat, retries
by policy, and a person's request never queued behind a push burst.

The first tests run the gate on virtual time (its clock and sleep are injected), checked
against the fake server's own flood rules; the last one sends a real burst through
python-telegram-bot to the fake server, with 429s injected.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections.abc import Coroutine
from typing import Any

import httpx
import pytest
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.ext import ExtBot

from taskops.bot.flood import (
    INTERACTIVE,
    LIVE,
    PROBE_TEXT,
    PUSH,
    REPLY_USEFUL_SECONDS,
    FloodGate,
    FloodLimits,
    SendPolicy,
    Unconfirmed,
    asked,
    sent_again,
)
from tests.fakegram import FakeTelegram
from tests.fakegram.flood import FloodControl
from tests.fakegram.flood import FloodLimits as TelegramLimits
from tests.fakegram.models import ApiError

START = 1_767_225_600.0
SEED = 20261120


class VirtualTime:
    """A clock and a sleep for the gate: time moves only when every task waits."""

    def __init__(self) -> None:
        self.now = START
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._order), future))
        await future

    async def run(self, *coros: Coroutine[Any, Any, Any]) -> list[Any]:
        tasks = [asyncio.ensure_future(c) for c in coros]
        while True:
            for _ in range(20):  # let every task that can run get to its next wait
                await asyncio.sleep(0)
            if all(t.done() for t in tasks):
                return [t.result() for t in tasks]
            assert self._sleepers, "every task waits, none on the clock"
            wake, _, future = heapq.heappop(self._sleepers)
            if future.done():  # a sleep given up (cancelled): wakes nobody, moves no clock
                continue
            self.now = max(self.now, wake)
            future.set_result(None)


class Server:
    """Stands in for Telegram behind the gate: records when each request arrived, and
    raises what a test scripts for a chat's next requests."""

    def __init__(self, time: VirtualTime) -> None:
        self.time = time
        self.sent: list[tuple[float, int, str]] = []
        self.script: dict[int, list[Exception]] = {}

    def request(self, gate: FloodGate, chat_id: int, policy: SendPolicy | None,
                endpoint: str = "sendMessage") -> Coroutine[Any, Any, Any]:
        async def call(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
            self.sent.append((self.time.now, chat_id, endpoint))
            errors = self.script.get(chat_id)
            if errors:
                raise errors.pop(0)
            return {"ok": True}

        return gate.process_request(call, (), {}, endpoint, {"chat_id": chat_id}, policy)

    def times(self, chat_id: int) -> list[float]:
        return [at - START for at, chat, _ in self.sent if chat == chat_id]


def gate_and_server() -> tuple[VirtualTime, FloodGate, Server]:
    time = VirtualTime()
    return time, FloodGate(clock=time.clock, sleep=time.sleep), Server(time)


def telegram_refusals(sent: list[tuple[float, int, str]]) -> list[str]:
    """What Telegram's own rules (as the fake server enforces them) would have refused."""
    now = [START]
    control = FloodControl(TelegramLimits(), clock=lambda: now[0])
    refused = []
    for at, chat_id, endpoint in sorted(sent):
        now[0] = at
        try:
            control.charge(chat_id, chat_id < 0, edit=endpoint != "sendMessage")
        except ApiError as exc:
            refused.append(f"{endpoint} to {chat_id} at {at - START:.3f}: {exc.description}")
    return refused


async def test_a_mixed_burst_stays_within_every_limit() -> None:
    time, gate, server = gate_and_server()
    rng = random.Random(SEED)
    chats = [1000 + i for i in range(12)] + [-100500, -100501, -100502]
    requests = [(rng.choice(chats), rng.choice([PUSH, PUSH, LIVE, None]),
                 rng.choice(["sendMessage", "editMessageText"])) for _ in range(200)]
    await time.run(*(server.request(gate, c, p, e) for c, p, e in requests))
    assert len(server.sent) == 200
    assert telegram_refusals(server.sent) == []


async def test_a_group_s_burst_goes_at_the_chat_s_pace_within_twenty_a_minute() -> None:
    """A group may take Telegram's 20 a minute when it needs them: with a bucket of 4 and 15
    a minute, a burst's digest waited 14 s behind a few alerts and acks
    (bench/push_incident.py), and these 12 pushes took 36 s."""
    time, gate, server = gate_and_server()
    group = -100700
    await time.run(*(server.request(gate, group, PUSH) for _ in range(12)))
    assert max(server.times(group)) < 15
    await time.run(*(server.request(gate, group, PUSH) for _ in range(30)))
    times = server.times(group)
    assert len(times) == 42
    # never more than 19 in any 61 s (a margin under Telegram's 20 a minute)
    assert all(b - a >= 61 for a, b in zip(times, times[19:], strict=False))
    assert telegram_refusals(server.sent) == []


async def test_a_person_does_not_queue_behind_a_push_burst() -> None:
    time, gate, server = gate_and_server()
    limits = FloodLimits()
    burst = [server.request(gate, 1000 + i % 30, PUSH) for i in range(60)]
    await time.run(*burst, server.request(gate, 7, INTERACTIVE))
    assert server.times(7) == [0.0]
    push_at = sorted(at - START for at, chat, _ in server.sent if chat != 7)
    assert push_at.count(0.0) == limits.bulk_limit
    assert push_at[limits.bulk_limit] >= limits.global_window_seconds - 1e-6
    assert telegram_refusals(server.sent) == []


async def test_a_person_does_not_queue_behind_bulk_edits_in_their_own_chat() -> None:
    time, gate, server = gate_and_server()

    async def later(coro: Coroutine[Any, Any, Any], after: float) -> Any:
        await time.sleep(after)
        return await coro

    # The auto-refresh keeps editing the admin's lists as fast as the chat allows ...
    edits = [later(server.request(gate, 7, LIVE, "editMessageText"), i * 0.5)
             for i in range(12)]
    # ... when the admin sends a command
    await time.run(*edits, later(server.request(gate, 7, INTERACTIVE), 4.0))
    reply = [at - START for at, _, endpoint in server.sent if endpoint == "sendMessage"]
    assert reply == [4.0]
    assert telegram_refusals(server.sent) == []


async def test_in_a_busy_group_an_alert_goes_before_the_live_edits_waiting_longer() -> None:
    """The group's 20 a minute are spent; the auto-refresh's edits of the group's live views
    wait for the window, then an alert comes: it takes the first place that frees up."""
    time, gate, server = gate_and_server()
    group = -100_800

    async def later(coro: Coroutine[Any, Any, Any], after: float) -> Any:
        await time.sleep(after)
        return await coro

    earlier = [server.request(gate, group, PUSH) for _ in range(18)]
    edits = [later(server.request(gate, group, LIVE, "editMessageText"), 20 + i)
             for i in range(4)]
    await time.run(*earlier, *edits, later(server.request(gate, group, PUSH), 30))
    waited = [(at - START, endpoint) for at, _, endpoint in server.sent[18:]]
    assert len(waited) == 5
    assert all(at >= 61 for at, _ in waited)  # the window was full until then
    assert waited[0][1] == "sendMessage"  # the alert, first of those waiting
    assert telegram_refusals(server.sent) == []


async def test_a_live_edit_does_not_take_the_place_of_a_digest_being_put_together() -> None:
    """The digest waits for the chat's budget (``ready``), then reads what arrived meanwhile
    and sends: the auto-refresh's edit that came meanwhile waits for it."""
    time, gate, server = gate_and_server()
    group = -100_801

    async def digest() -> Any:
        with gate.turn(group, PUSH.priority):
            await gate.ready(group)
            await time.sleep(0.5)  # the store read of what joins it
            return await server.request(gate, group, PUSH)

    async def live_edit() -> Any:
        await time.sleep(0.1)
        return await server.request(gate, group, LIVE, "editMessageText")

    await time.run(digest(), live_edit())
    assert [endpoint for _, _, endpoint in server.sent] == ["sendMessage", "editMessageText"]
    assert telegram_refusals(server.sent) == []


async def test_a_429_holds_that_chat_for_its_retry_after_and_no_other() -> None:
    time, gate, server = gate_and_server()
    server.script[1] = [RetryAfter(3)]

    async def later(coro: Coroutine[Any, Any, Any], after: float) -> Any:
        await time.sleep(after)
        return await coro

    await time.run(server.request(gate, 1, PUSH), later(server.request(gate, 1, None), 0.5),
                   later(server.request(gate, 2, PUSH), 0.5))
    first, *rest = server.times(1)
    assert first == 0.0
    assert all(at >= 3.0 for at in rest)  # the retry and a person's request alike
    assert len(rest) == 2
    assert server.times(2) == [0.5]


def not_sent() -> NetworkError:
    """A request that never reached Telegram (no connection)."""
    error = NetworkError("httpx.ConnectError: All connection attempts failed")
    error.__cause__ = httpx.ConnectError("All connection attempts failed")
    return error


@pytest.mark.parametrize(("policy", "endpoint", "failures", "calls", "raised"), [
    # a person's request: retried while its answer is still useful
    (INTERACTIVE, "sendMessage", [RetryAfter(2)] * 8, 9, None),
    (INTERACTIVE, "sendMessage", [RetryAfter(2)] * 20, 16, RetryAfter),
    (INTERACTIVE, "sendMessage", [RetryAfter(60)], 1, RetryAfter),
    (INTERACTIVE, "editMessageText", [NetworkError("Internal Server Error")] * 6, 7, None),
    (INTERACTIVE, "answerCallbackQuery", [NetworkError("Bad Gateway")] * 6, 7, None),
    (INTERACTIVE, "answerCallbackQuery", [RetryAfter(5)] * 3, 3, RetryAfter),
    # ... a new message after a 5xx is repeated only marked (it needs a text for that)
    (INTERACTIVE, "sendMessage", [NetworkError("Internal Server Error")], 1, Unconfirmed),
    (PUSH, "sendMessage", [RetryAfter(2)] * 6, 7, None),
    # a new message after a 5xx or a timeout may have arrived: not repeated blindly
    (PUSH, "sendMessage", [NetworkError("Bad Gateway")] * 5, 1, Unconfirmed),
    (PUSH, "sendMessage", [TimedOut()], 1, Unconfirmed),
    (PUSH, "sendMessage", [not_sent()] * 5, 6, None),
    (PUSH, "editMessageText", [NetworkError("Bad Gateway")] * 5, 6, None),
    (PUSH, "sendMessage", [BadRequest("Bad Request: message text is empty")], 1, BadRequest),
    (LIVE, "editMessageText", [NetworkError("timed out")] * 3, 3, NetworkError),
])
async def test_retries_follow_the_request_policy(
        policy: SendPolicy, endpoint: str, failures: list[Exception], calls: int,
        raised: type[Exception] | None) -> None:
    time, gate, server = gate_and_server()
    server.script[5] = list(failures)
    if raised is None:
        assert await time.run(server.request(gate, 5, policy, endpoint)) == [{"ok": True}]
    else:
        with pytest.raises(raised):
            await time.run(server.request(gate, 5, policy, endpoint))
    assert len(server.times(5)) == calls


async def test_a_person_s_request_is_not_retried_past_its_usefulness() -> None:
    time, gate, server = gate_and_server()
    server.script[5] = [NetworkError("Bad Gateway")] * 100
    with pytest.raises(NetworkError):
        await time.run(server.request(gate, 5, INTERACTIVE, "editMessageText"))
    times = server.times(5)
    # backing off doubling to 2 s, and no retry begun that would end past 30 s
    assert [round(b - a, 3) for a, b in itertools.pairwise(times)][:5] == [0.25, 0.5, 1, 2, 2]
    assert times[-1] <= REPLY_USEFUL_SECONDS < times[-1] + 2
    assert time.now - START <= REPLY_USEFUL_SECONDS


async def test_usefulness_counts_from_when_the_person_asked() -> None:
    time, gate, server = gate_and_server()
    server.script[5] = [RetryAfter(5)] * 3
    with asked(START - 10), pytest.raises(RetryAfter):  # the press waited 10 s in its chat
        await time.run(server.request(gate, 5, INTERACTIVE, "answerCallbackQuery"))
    assert server.times(5) == [0.0]  # one retry would end past Telegram's 14 s


async def test_a_reply_that_may_have_arrived_is_repeated_once_when_telegram_answers() -> None:
    time, gate, _ = gate_and_server()
    sent: list[tuple[float, str]] = []
    answers: list[Exception | None] = [NetworkError("Bad Gateway"), TimedOut(),
                                       NetworkError("Bad Gateway"), RetryAfter(1),
                                       BadRequest("Can't parse entities"), None]

    async def call(_endpoint: str, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        sent.append((time.now - START, data["text"]))
        answer = answers.pop(0)
        if answer is not None:
            raise answer
        return {"ok": True}

    request = gate.process_request(call, ("sendMessage", {"chat_id": 5, "text": "list"}), {},
                                   "sendMessage", {"chat_id": 5, "text": "list"}, INTERACTIVE)
    assert await time.run(request) == [{"ok": True}]
    texts = [text for _, text in sent]
    assert texts == ["list", *[PROBE_TEXT] * 4, sent_again("list")]
    assert texts.count("list") == 1  # the one repeat is marked


async def test_a_probe_left_hanging_does_not_hold_back_the_repeat() -> None:
    time, gate, _ = gate_and_server()
    sent: list[tuple[float, str]] = []

    async def call(_endpoint: str, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        sent.append((time.now - START, data["text"]))
        if len(sent) == 1:
            raise NetworkError("Bad Gateway")
        if len(sent) == 2:  # Telegram takes the first probe and never answers it
            await time.sleep(3600)
        if data["text"] == PROBE_TEXT:
            raise BadRequest("Can't parse entities")
        return {"ok": True}

    request = gate.process_request(call, ("sendMessage", {"chat_id": 5, "text": "list"}), {},
                                   "sendMessage", {"chat_id": 5, "text": "list"}, INTERACTIVE)
    assert await time.run(request) == [{"ok": True}]
    assert sent == [(0.0, "list"), (0.25, PROBE_TEXT), (0.75, PROBE_TEXT),
                    (0.75, sent_again("list"))]


async def test_a_marked_repeat_that_may_have_arrived_is_not_sent_a_third_time() -> None:
    time, gate, _ = gate_and_server()
    answers: list[Exception] = [TimedOut(), BadRequest("Can't parse entities"), TimedOut()]
    texts: list[str] = []

    async def call(_endpoint: str, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        texts.append(data["text"])
        raise answers.pop(0)

    request = gate.process_request(call, ("sendMessage", {"chat_id": 5, "text": "list"}), {},
                                   "sendMessage", {"chat_id": 5, "text": "list"}, INTERACTIVE)
    with pytest.raises(Unconfirmed):
        await time.run(request)
    assert texts == ["list", PROBE_TEXT, sent_again("list")]


async def test_transient_failures_back_off_doubling() -> None:
    time, gate, server = gate_and_server()
    server.script[5] = [NetworkError("Internal Server Error")] * 4
    await time.run(server.request(gate, 5, PUSH, "editMessageText"))
    times = server.times(5)
    assert [round(b - a, 3) for a, b in itertools.pairwise(times)] == [0.5, 1.0, 2.0, 4.0]


async def test_send_times_from_before_a_restart_are_honoured() -> None:
    time, gate, server = gate_and_server()
    gate.seed(1, [START - 0.3, START - 0.2, START - 0.1, START])
    gate.seed(2, [START - 7200])  # long ago: a full burst again
    await time.run(*(server.request(gate, 1, PUSH) for _ in range(2)),
                   *(server.request(gate, 2, PUSH) for _ in range(4)))
    burst = FloodLimits().chat_burst - FloodLimits().chat_reserve  # the rest is a person's
    assert server.times(2) == [0.0] * burst + server.times(2)[burst:]
    assert all(at > 1.0 for at in server.times(2)[burst:])
    assert all(at > 0.5 for at in server.times(1))


async def test_a_burst_with_429s_through_the_fake_server(fakegram: FakeTelegram) -> None:
    users = [fakegram.add_user(5000 + i, f"U{i}") for i in range(3)]
    chats = [fakegram.private_chat(u) for u in users]
    chats += [fakegram.add_group(-100900 - i, f"G{i}", members=users) for i in range(2)]
    fakegram.fail("sendMessage", "429", count=3, retry_after=1)
    bot = ExtBot(fakegram.token, base_url=fakegram.bot_base_url, rate_limiter=FloodGate())
    per_chat = {chat.id: 7 if chat.id > 0 else 4 for chat in chats}
    async with bot:
        sends = [bot.send_message(chat_id, f"#{n}", rate_limit_args=PUSH if n % 3 else None)
                 for chat_id, count in per_chat.items() for n in range(count)]
        random.Random(SEED).shuffle(sends)
        await asyncio.gather(*sends)
    for chat in chats:  # each message exactly once, the refused ones too
        texts = sorted(int(m.text[1:]) for m in fakegram.messages(chat) if m.from_bot)
        assert texts == list(range(per_chat[chat.id]))
    assert fakegram.flood_violations == []
    calls = fakegram.calls_of("sendMessage")
    refused = [c for c in calls if c.status == 429]
    assert len(refused) == 3
    for call in refused:
        [retry] = [c for c in calls[calls.index(call) + 1:] if c.params == call.params]
        assert retry.status == 200
        assert retry.at - call.at >= 1.0, "sent again before its retry_after"


async def test_a_429_holds_its_chat_for_every_request_through_the_fake_server(
        fakegram: FakeTelegram) -> None:
    held, other = (fakegram.private_chat(fakegram.add_user(5000 + i, f"U{i}")) for i in (0, 1))
    fakegram.fail("sendMessage", "429", count=1, retry_after=2)
    gate = FloodGate()
    bot = ExtBot(fakegram.token, base_url=fakegram.bot_base_url, rate_limiter=gate)
    async with bot:
        push = asyncio.create_task(bot.send_message(held.id, "push", rate_limit_args=PUSH))
        refused = await fakegram.wait_for_call("sendMessage")
        assert refused.status == 429
        await fakegram.wait_for(lambda: gate.holding(held.id) > 0)  # the bot has the answer
        await asyncio.gather(bot.send_message(held.id, "a person's reply"),
                             bot.send_message(other.id, "elsewhere"), push)
    calls = {c.params["text"]: c for c in fakegram.calls_of("sendMessage") if c.status == 200}
    assert calls["elsewhere"].at < calls["push"].at  # another chat is not held
    assert calls["push"].at - refused.at >= 2.0
    assert calls["a person's reply"].at - refused.at >= 2.0
    assert fakegram.flood_violations == []
