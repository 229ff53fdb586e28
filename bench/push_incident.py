"""Push in an incident: a scripted 15-simulated-minute scenario against the fake Telegram.

    python bench/push_incident.py [--seed 0] [--speed 10] [--minutes 15] [--stuck-after 10]
                                  [--escalate-after 5] [--db sqlite|postgresql]
                                  [--restart-at 5.5 10.5] [--burst-at 7.5] [--burst 8]

The real taskops Application (as bench/push.py runs it) against the fake Bot API with
Telegram's flood limits on. The store's clock runs ``--speed`` times faster than the wall
clock, and so do the push side's check intervals and the digest window (``PushOptions``
through ``app.bot_data``); the flood limits of the fake stay in real time (harsher than
reality), and every latency is measured in real seconds.

The incident, written through the store API as the worker writes it (status updates on:
a progress event every simulated minute for every running task):
- a cronjob every minute that completes silently ("Minutely disk check");
- a cronjob every minute that completes ("Minutely queue report");
- five tasks that fail (each with a failing tool call), at random minutes;
- one task that loops (three failing calls, then "Loop detected …" with the /kill_task hint);
- one that pauses with a question;
- one that goes stuck while status updates are on (one tool call, then progress only);
- a burst (``--burst`` tasks within two simulated seconds at ``--burst-at``): most fail,
  one loops, two pause with a question — more than the digest threshold, so a digest.
The console is restarted at each ``--restart-at`` minute, as soon as the next alert has
reached the group (so the admins ack it from the new process; none: ``--restart-at`` with
no value): its Application and its store are closed and made anew while the tasks go on, as
when ``taskops run`` restarts beside a ``taskops worker`` (the tasks are written through a
store of their own, so the console learns of changes by polling the feed, not by the
in-process signal).
Chats: Ann's private chat and the "Ops" group (Ann and Olaf), both subscribed with the
defaults; Olaf's private chat opted into completions (to show the recurring message).
The admins act through the fake as people would: in the group they ack every alert but one
(chosen by the seed) with 🙋, restart one failure from its card (🔁 Restart, Save &
restart) and let the new run complete, answer the question from its alert, and kill the
stuck task from its alert. The new runs' status changes follow the alerts' lifecycles.
The burst's digest in the group is acked with its 🙋 (again, if alerts that join it later
bring its 🙋 back) and one of its questions answered from its 💬 button (the digest then
shows the answer under that task's line).

Reported: messages per chat; each failure, pause, loop and stuck task announced exactly
once per chat, as an alert of its own or in a digest (stuck within stuck_after + 1
simulated minute of its last own event); silent completions pushed; ack → the group's
alert (or digest) edited to show it (what the other admin sees), and how many acks were of
alerts sent before a restart; re-announcements per chat and the tasks they name (each
alert nobody acked once, in the group only); the fake's rule violations;
status change → notification (the alert, or the digest send or edit that lists it).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import logging
import random
import re
import shlex
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import (
    DATA_DIR,
    create_pg_database,
    drop_pg_database,
    load_average,
    machine_facts,
    markdown_table,
    percentile,
    pg_url,
    print_facts,
    remove_sqlite,
    sqlite_url,
)
from taskops.bot.app import build_application, start_console, stop_console
from taskops.bot.context import deps_of
from taskops.bot.push.options import PushOptions
from taskops.bot.push.service import OPTIONS_KEY, PushService
from taskops.bot.push.subscription import NotifySettings
from taskops.config import (
    DatabaseSettings,
    NotificationSettings,
    Secret,
    Settings,
    TelegramSettings,
)
from taskops.storage.db import migrate
from taskops.storage.domain import EventKind, Task, TaskDraft, TaskStatus, Trigger
from taskops.storage.store import TaskStore
from tests.fakegram import Call, FakeMessage, FakeTelegram

TOKEN = "123456:BENCH-incident"
ANN, OLAF = 1001, 1002
GROUP = -100_500
START = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
FAILING = ["Deploy api", "Sync invoices", "Rotate keys", "Backfill metrics",
           "Send newsletter"]
ALERT_HEAD = re.compile(r"^\S+ (Task failed|Task paused|Task looks stuck)\b.*?#(\d+) ")
DIGEST_HEAD = re.compile(r"^\S+ [\d,]+ tasks? .* in the last ")


class SimClock:
    """Simulated UTC time running ``speed`` times faster than the wall clock."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.real0 = time.time()

    def __call__(self) -> datetime:
        return START + timedelta(seconds=(time.time() - self.real0) * self.speed)

    def at_real(self, real: float) -> datetime:
        return START + timedelta(seconds=(real - self.real0) * self.speed)

    def minutes(self, real: float | None = None) -> float:
        return ((time.time() if real is None else real) - self.real0) * self.speed / 60

    async def until(self, minute: float) -> None:
        wait = self.real0 + minute * 60 / self.speed - time.time()
        if wait > 0:
            await asyncio.sleep(wait)


@dataclass
class Incident:
    server: FakeTelegram
    store: TaskStore
    clock: SimClock
    #: task id → (what it is, real time of its status change)
    alerts: dict[int, tuple[str, float]] = field(default_factory=dict)
    silent: list[int] = field(default_factory=list)
    completed: list[int] = field(default_factory=list)
    stuck_id: int = 0
    stuck_active_real: float = 0.0
    acks: list[float] = field(default_factory=list)
    unacked: int = 0
    restarted: list[tuple[int, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: the burst's tasks (they may be announced in a digest)
    burst: set[int] = field(default_factory=set)
    #: real times the console was down for a restart: (stopped, started again)
    restarts: list[tuple[float, float]] = field(default_factory=list)
    #: (real time the alert reached the group, real time of the ack press)
    acked: list[tuple[float, float]] = field(default_factory=list)
    #: the digests someone took with 🙋 (later alerts of one bring its 🙋 back)
    digests_acked: set[int] = field(default_factory=set)
    #: task id → when its alert in the group was acked (read from the store at the end)
    acked_at: dict[int, datetime] = field(default_factory=dict)
    #: the digest's answered question, and whether its lifecycle showed on the digest
    digest_answered: tuple[int, bool] | None = None
    #: chat → task id → digest messages that list it (read from the store at the end)
    digested: dict[int, dict[int, int]] = field(default_factory=dict)


# --- the scripted tasks -------------------------------------------------------------------


async def start(store: TaskStore, name: str, trigger: Trigger = Trigger.USER,
                source: int | None = None) -> Task:
    task = await store.create_task(TaskDraft(name=name, prompt="p", trigger=trigger,
                                             trigger_source_id=source))
    started = await store.start_task(task.id)
    assert started is not None
    return started


async def failing_call(store: TaskStore, task_id: int, tool: str, error: str) -> None:
    await store.append_event(task_id, EventKind.TOOL_CALL, {
        "tool": tool, "arguments": {"target": "prod"}, "result": error, "is_error": True,
        "duration_ms": 840}, prompt_tokens=900, completion_tokens=120)


async def cron_runs(inc: Incident, minutes: int) -> None:
    for minute in range(minutes):
        await inc.clock.until(minute + 5 / 60)
        disk = await start(inc.store, "Minutely disk check", Trigger.CRONJOB, 1)
        report = await start(inc.store, "Minutely queue report", Trigger.CRONJOB, 2)
        await inc.clock.until(minute + 7 / 60)
        await inc.store.finish_task(disk.id, "STATUS: silent\nSUMMARY: Disk fine.")
        inc.silent.append(disk.id)
        await inc.clock.until(minute + 12 / 60)
        await inc.store.finish_task(report.id, "STATUS: completed\nSUMMARY: 42 jobs queued.")
        inc.completed.append(report.id)


async def failure(inc: Incident, name: str, minute: float) -> None:
    await inc.clock.until(minute - 0.5)
    task = await start(inc.store, name)
    await inc.clock.until(minute - 0.2)
    await failing_call(inc.store, task.id, "http_post", "503 Service Unavailable: upstream "
                       "'billing' timed out after 30s")
    await inc.clock.until(minute)
    real = time.time()
    await inc.store.fail_task(task.id, f"{name} failed: the upstream service is unavailable.")
    inc.alerts[task.id] = ("failure", real)


async def looping(inc: Incident, minute: float) -> None:
    await inc.clock.until(minute - 0.6)
    task = await start(inc.store, "Crawl partner feed")
    for i in range(3):
        await inc.clock.until(minute - 0.5 + i * 0.15)
        await failing_call(inc.store, task.id, "http_get", "404 Not Found")
    await inc.clock.until(minute)
    real = time.time()
    await inc.store.fail_task(
        task.id, "Loop detected (systematic): http_get failed 3 times in a row\n"
                 f"Hint: Use /kill_task {task.id} if the task needs to be cleaned up.")
    inc.alerts[task.id] = ("loop", real)


async def pausing(inc: Incident, minute: float) -> None:
    await inc.clock.until(minute - 0.5)
    task = await start(inc.store, "Prepare release notes")
    await inc.clock.until(minute)
    real = time.time()
    await inc.store.finish_task(task.id, "STATUS: question\nSUMMARY: Staging or production?")
    inc.alerts[task.id] = ("pause", real)


async def going_stuck(inc: Incident, minute: float, minutes: int) -> None:
    await inc.clock.until(minute)
    task = await start(inc.store, "Reindex search")
    inc.stuck_id = task.id
    await inc.store.append_event(task.id, EventKind.TOOL_CALL, {
        "tool": "reindex", "arguments": {}, "result": "started", "is_error": False,
        "duration_ms": 40})
    inc.stuck_active_real = time.time()
    inc.alerts[task.id] = ("stuck", 0.0)


async def burst(inc: Incident, minute: float, size: int) -> None:
    """``size`` tasks end within two simulated seconds: two pause, one loops, the rest fail."""
    await inc.clock.until(minute - 0.5)
    tasks = [await start(inc.store, f"Import batch {i + 1:02d}") for i in range(size)]
    await inc.clock.until(minute)
    for i, task in enumerate(tasks):
        inc.burst.add(task.id)
        real = time.time()
        if i in (2, 5):
            await inc.store.finish_task(task.id, "STATUS: question\nSUMMARY: Skip the "
                                        "rows with a bad <date>?")
            inc.alerts[task.id] = ("pause", real)
        elif i == 4:
            await inc.store.fail_task(task.id, "Loop detected (systematic): http_get failed "
                                      "3 times in a row")
            inc.alerts[task.id] = ("loop", real)
        else:
            await inc.store.fail_task(task.id, f"Import batch {i + 1:02d} failed: the "
                                      "source returned 500.")
            inc.alerts[task.id] = ("failure", real)
        await asyncio.sleep(2 / size / inc.clock.speed)


async def status_updates(inc: Incident, minutes: int) -> None:
    """[tasks] status updates every minute: a progress event for every running task."""
    for minute in range(1, minutes + 1):
        await inc.clock.until(minute)
        for task in await inc.store.running_tasks():
            if task.status is not TaskStatus.RUNNING or task.started_at is None:
                continue
            elapsed = int((inc.clock() - task.started_at).total_seconds() // 60)
            await inc.store.append_event(task.id, EventKind.PROGRESS, {
                "name": task.name, "elapsed_minutes": elapsed,
                "tool_calls": task.tool_call_count, "tokens": task.total_tokens,
                "text": f"still running: {elapsed} min"})


# --- the admins ---------------------------------------------------------------------------


def alert_message(server: FakeTelegram, chat_id: int, task_id: int) -> FakeMessage | None:
    for message in server.messages(chat_id):
        match = ALERT_HEAD.match(message.text or "") if message.from_bot else None
        if match and int(match.group(2)) == task_id:
            return message
    return None


async def wait(predicate: Callable[[], object], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return False


def newest_reply(server: FakeTelegram, chat_id: int, to: FakeMessage,
                 after: int) -> FakeMessage | None:
    for message in reversed(server.messages(chat_id)):
        if message.from_bot and message.message_id > after and message.reply_to is not None \
                and message.reply_to.message_id == to.message_id:
            return message
    return None


def sent_at(server: FakeTelegram, message: FakeMessage) -> float:
    """When a bot message reached its chat (the fake's record of the send)."""
    for call in server.calls:
        result = (call.response or {}).get("result")
        if call.method == "sendMessage" and isinstance(result, dict) \
                and result.get("message_id") == message.message_id \
                and result.get("chat", {}).get("id") == message.chat.id:
            return call.at
    return time.time()


async def press(server: FakeTelegram, user: int, message: FakeMessage, label: str) -> float:
    before = time.time()
    await server.press_button(user, message.chat, message.message_id, label)
    return before


def has_ack_button(message: FakeMessage) -> bool:
    return any(label == "🙋 I'm on it" for row in message.buttons for label, *_ in row)


def is_digest(message: FakeMessage) -> bool:
    return message.from_bot and bool(DIGEST_HEAD.match(message.text or ""))


async def digest_tasks(store: TaskStore, message: FakeMessage) -> list[int]:
    """Every task a digest message took in (all its pages, from the store)."""
    view = await store.console.find(message.chat.id, message.message_id, "digest")
    if view is None:
        return []
    ids: list[int] = []
    page = 1
    while True:
        found = await store.push.digest_page(view.key, page, 50)
        ids += [i.task_id for i in found.items]
        if len(ids) >= found.total or not found.items:
            return ids
        page += 1


async def announcement(inc: Incident, chat_id: int, task_id: int) -> FakeMessage | None:
    """The message announcing a task in a chat: its alert, else a digest that lists it."""
    alert = alert_message(inc.server, chat_id, task_id)
    if alert is not None:
        return alert
    for message in inc.server.messages(chat_id):
        if is_digest(message) and task_id in await digest_tasks(inc.store, message):
            return message
    return None


async def ack(inc: Incident, who: int, message: FakeMessage, what: str) -> None:
    """🙋 on an alert or a digest; the time until the chat sees who is on it."""
    server = inc.server
    before = await press(server, who, message, "🙋 I'm on it")

    def shown() -> Call | None:
        return next((c for c in server.calls if c.method == "editMessageText"
                     and c.status == 200 and c.at >= before
                     and str(c.params.get("message_id")) == str(message.message_id)
                     and "is on it" in str(c.params.get("text"))), None)

    if await wait(shown, 30):
        edit = shown()
        assert edit is not None
        inc.acks.append(edit.at - before)
        inc.acked.append((sent_at(server, message), before))
    else:
        inc.errors.append(f"ack of {what} never shown")


async def act_on_digest(inc: Incident, digest: FakeMessage, rng: random.Random) -> None:
    """The group's admins take a digest: 🙋, then answer one question from its 💬."""
    server = inc.server
    await asyncio.sleep(rng.uniform(2, 4))
    who = rng.choice([ANN, OLAF])
    if has_ack_button(digest):
        await ack(inc, who, digest, f"digest {digest.message_id}")
    inc.digests_acked.add(digest.message_id)
    answers = [label for row in digest.buttons for label, *_ in row
               if label.startswith("💬 #")]
    if not answers:
        return
    task_id = int(answers[0].split("#")[1])
    last = max(m.message_id for m in server.messages(GROUP))
    await press(server, who, digest, answers[0])
    await wait(lambda: any(m.keyboard for m in server.messages(GROUP)
                           if m.from_bot and m.message_id > last), 60)
    prompt = next((m for m in reversed(server.messages(GROUP))
                   if m.from_bot and m.keyboard and m.message_id > last), None)
    if prompt is None:
        inc.errors.append("no answer prompt from the digest")
        return
    await server.reply_to(who, GROUP, prompt.message_id, "skip them")
    shown = await wait(lambda: "answered by" in (digest.text or ""), 30)
    inc.digest_answered = (task_id, shown)
    if shown:
        await asyncio.sleep(30 / inc.clock.speed)
        await inc.store.finish_task(task_id, "STATUS: completed\nSUMMARY: Imported.")


async def act_on(inc: Incident, task_id: int, what: str, rng: random.Random,
                 digests: set[int]) -> None:
    """The group's admins deal with one alert (or the digest it came in)."""
    server = inc.server
    found: list[FakeMessage | None] = [None]

    async def announced() -> bool:
        found[0] = await announcement(inc, GROUP, task_id)
        return found[0] is not None

    with contextlib.suppress(AssertionError):
        await server.wait_for(announced, timeout=60)
    alert = found[0]
    if alert is None:
        inc.errors.append(f"no group alert for #{task_id}")
        return
    if is_digest(alert):
        if alert.message_id not in digests:
            digests.add(alert.message_id)
            await act_on_digest(inc, alert, rng)
        elif await wait(lambda: alert.message_id in inc.digests_acked
                        and has_ack_button(alert), 10):
            # It joined the digest after someone took it: the digest shows 🙋 again for
            # it, and someone takes that too.
            await asyncio.sleep(rng.uniform(2, 4))
            if has_ack_button(alert):
                await ack(inc, rng.choice([ANN, OLAF]), alert, f"#{task_id} in a digest")
        return
    await asyncio.sleep(rng.uniform(2, 4))  # someone reads it
    if task_id == inc.unacked:
        return
    who = rng.choice([ANN, OLAF])
    await ack(inc, who, alert, f"#{task_id}")
    last = max(m.message_id for m in server.messages(GROUP))
    if what == "failure" and not inc.restarted:
        await press(server, who, alert, "🔁 Restart")
        await wait(lambda: newest_reply(server, GROUP, alert, last) is not None)
        form = newest_reply(server, GROUP, alert, last)
        if form is None:
            inc.errors.append("no restart form")
            return
        await press(server, who, form, "Save & restart")
        await wait(lambda: bool(form.edits) and "Edit & restart" not in (form.text or ""))
        new_ids = await inc.store.restarted_as(task_id)
        if not new_ids:
            inc.errors.append("restart made no task")
            return
        inc.restarted.append((task_id, new_ids[0]))
        await inc.store.start_task(new_ids[0])
        await asyncio.sleep(60 / inc.clock.speed)
        await inc.store.finish_task(new_ids[0], "STATUS: completed\nSUMMARY: Deployed.")
    elif what == "pause":
        await press(server, who, alert, "💬 Answer")
        await wait(lambda: any(m.keyboard for m in server.messages(GROUP)
                               if m.from_bot and m.message_id > last), 60)
        prompt = next((m for m in reversed(server.messages(GROUP))
                       if m.from_bot and m.keyboard and m.message_id > last), None)
        if prompt is None:
            inc.errors.append("no answer prompt")
            return
        await server.reply_to(who, GROUP, prompt.message_id, "staging")
        if await wait(lambda: "answered by" in (alert.text or ""), 30):
            await asyncio.sleep(60 / inc.clock.speed)
            await inc.store.finish_task(task_id, "STATUS: completed\nSUMMARY: Notes ready.")
    elif what == "stuck":
        await press(server, who, alert, "🛑 Kill")
        await wait(lambda: newest_reply(server, GROUP, alert, last) is not None)
        confirm = newest_reply(server, GROUP, alert, last)
        if confirm is not None:
            await press(server, who, confirm, "🛑 Kill")


async def admins(inc: Incident, rng: random.Random, minutes: int) -> None:
    handled: set[int] = set()
    digests: set[int] = set()
    acting: list[asyncio.Task[None]] = []
    while inc.clock.minutes() < minutes + 0.5:
        for task_id, (what, _) in list(inc.alerts.items()):
            if task_id in handled:
                continue
            if what == "stuck" and alert_message(inc.server, GROUP, task_id) is None:
                continue
            handled.add(task_id)
            acting.append(asyncio.create_task(act_on(inc, task_id, what, rng, digests)))
        await asyncio.sleep(0.2)
    await asyncio.gather(*acting)


# --- the run ------------------------------------------------------------------------------


@asynccontextmanager
async def database(kind: str) -> AsyncIterator[str]:
    if kind == "sqlite":
        path = DATA_DIR / f"incident_{uuid.uuid4().hex[:8]}.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        url = sqlite_url(path)
        await migrate(url)
        try:
            yield url
        finally:
            remove_sqlite(path)
    else:
        name = f"taskops_bench_incident_{uuid.uuid4().hex[:8]}"
        await create_pg_database(name)
        url = pg_url(name)
        await migrate(url)
        try:
            yield url
        finally:
            await drop_pg_database(name)


class ConsoleProcess:
    """The console as ``taskops run`` holds it: an Application and a store of its own,
    stopped and made anew by a restart (the tasks' store goes on)."""

    def __init__(self, settings: Settings, clock: SimClock, options: PushOptions) -> None:
        self.settings, self.clock, self.options = settings, clock, options
        self.store: TaskStore | None = None
        self.app: Any = None

    async def start(self) -> PushService:
        self.store = await TaskStore.open(self.settings, clock=self.clock)
        self.app = build_application(self.settings, self.store)
        self.app.bot_data[OPTIONS_KEY] = self.options
        await self.app.initialize()
        await start_console(self.app)
        service = deps_of(self.app).push
        assert isinstance(service, PushService)
        return service

    async def stop(self) -> None:
        if self.app is not None:
            try:
                await stop_console(self.app)
            finally:
                await self.app.shutdown()
                self.app = None
        if self.store is not None:
            await self.store.close()
            self.store = None


def group_alerts(server: FakeTelegram) -> int:
    return sum(1 for m in server.messages(GROUP)
               if m.from_bot and (ALERT_HEAD.match(m.text or "") or is_digest(m)))


async def restarts(inc: Incident, console: ConsoleProcess, at: list[float]) -> None:
    """Restart the console at each minute of ``at`` — right after the next alert reaches the
    group (within a simulated minute), so its 🙋 is pressed to the new process."""
    for minute in at:
        await inc.clock.until(minute)
        shown = group_alerts(inc.server)
        await wait(lambda n=shown: group_alerts(inc.server) > n, 60 / inc.clock.speed)
        down = time.time()
        await console.stop()
        service = await console.start()
        await wait(lambda s=service: len(s.notifier.workers) == 3, 30)
        inc.restarts.append((down, time.time()))


async def run(url: str, args: argparse.Namespace) -> tuple[Incident, FakeTelegram]:
    rng = random.Random(args.seed)
    server = FakeTelegram(token=TOKEN)
    await server.start()
    server.private_chat(server.add_user(ANN, "Ann"))
    server.private_chat(server.add_user(OLAF, "Olaf"))
    server.add_group(GROUP, "Ops", members=[server.user(ANN), server.user(OLAF)])
    speed = args.speed
    settings = Settings(
        telegram=TelegramSettings(token=Secret(TOKEN), admin_ids=frozenset({ANN, OLAF}),
                                  base_url=server.bot_base_url),
        database=DatabaseSettings(url=url),
        notifications=NotificationSettings(stuck_after_minutes=args.stuck_after,
                                           digest_window_seconds=10.0 / speed,
                                           escalate_after_minutes=args.escalate_after))
    clock = SimClock(speed)
    # the tasks' side (as a worker writes them); the console has a store of its own
    store = await TaskStore.open(settings, clock=clock)
    console = ConsoleProcess(settings, clock, PushOptions(
        stuck_check_seconds=30.0 / speed, escalate_check_seconds=20.0 / speed,
        digest_max_span_seconds=60.0 / speed))
    inc = Incident(server, store, clock)
    try:
        for chat_id, wants in ((ANN, NotifySettings()), (GROUP, NotifySettings()),
                               (OLAF, NotifySettings(statuses=frozenset(
                                   {TaskStatus.FAILED, TaskStatus.PAUSED,
                                    TaskStatus.COMPLETED})))):
            await store.push.subscribe(chat_id, wants.to_json(), ANN)
        try:
            service = await console.start()
            await server.wait_for(lambda: len(service.notifier.workers) == 3)
            clock.real0 = time.time()
            minutes = args.minutes
            at = sorted(rng.sample(range(2, minutes - 2), 5))
            inc.unacked = -1
            jobs = [cron_runs(inc, minutes), status_updates(inc, minutes),
                    looping(inc, rng.uniform(2, 4)), pausing(inc, rng.uniform(4, 6)),
                    going_stuck(inc, 1.0, minutes), admins(inc, rng, minutes)]
            jobs += [failure(inc, name, m + rng.uniform(0, 0.9))
                     for name, m in zip(FAILING, at, strict=True)]
            if args.burst:
                jobs.append(burst(inc, args.burst_at, args.burst))
            jobs.append(restarts(inc, console, sorted(args.restart_at)))
            pick = rng.randrange(5)

            async def choose_unacked() -> None:
                # one failure early enough to be re-announced within the run (not one of
                # the burst: those are the digest's)
                while True:
                    early = [t for t, (w, r) in inc.alerts.items() if w == "failure"
                             and t not in inc.burst
                             and clock.minutes(r) < minutes - args.escalate_after - 1]
                    if len(early) > pick or clock.minutes() > minutes:
                        if early:
                            inc.unacked = early[min(pick, len(early) - 1)]
                        return
                    await asyncio.sleep(0.1)

            jobs.append(choose_unacked())
            await asyncio.gather(*jobs)
            await asyncio.sleep(5)  # the last deliveries
        finally:
            await console.stop()
        for chat_id in (ANN, GROUP, OLAF):
            counts: dict[int, int] = {}
            for message in server.messages(chat_id):
                if is_digest(message):
                    for task_id in await digest_tasks(store, message):
                        counts[task_id] = counts.get(task_id, 0) + 1
            inc.digested[chat_id] = counts
        inc.acked_at = {a.task_id: a.acked_at for a in await store.push.alerts_following(
            list(inc.alerts), GROUP) if a.acked_at is not None}
    finally:
        await store.close()
        await server.stop()
    return inc, server


# --- the figures --------------------------------------------------------------------------


TAG = re.compile(r"<[^>]+>")


def plain(call: Call) -> str:
    return TAG.sub("", str(call.params.get("text", "")))


def bot_sends(server: FakeTelegram, chat_id: int) -> list[Call]:
    return [c for c in server.calls if c.method == "sendMessage" and c.status == 200
            and int(c.params.get("chat_id", 0)) == chat_id]


def report(inc: Incident, server: FakeTelegram, args: argparse.Namespace) -> bool:
    chats = {"Ann (private)": ANN, "Ops group": GROUP, "Olaf (private, +completed)": OLAF}
    rows = []
    once_ok = True
    announced: dict[int, dict[int, int]] = {}
    for chat_id in chats.values():
        counts: dict[int, int] = {}
        for message in server.messages(chat_id):
            match = ALERT_HEAD.match(message.text or "") if message.from_bot else None
            if match:
                counts[int(match.group(2))] = counts.get(int(match.group(2)), 0) + 1
        for task_id, n in inc.digested.get(chat_id, {}).items():
            counts[task_id] = counts.get(task_id, 0) + n
        announced[chat_id] = counts
    for label, chat_id in chats.items():
        sends = bot_sends(server, chat_id)
        texts = [plain(c) for c in sends]
        alerts = sum(bool(ALERT_HEAD.match(t)) for t in texts)
        escalations = sum(t.startswith("⏰") for t in texts)
        replies = sum(bool(c.params.get("reply_parameters"))
                      and not plain(c).startswith("⏰") for c in sends)
        recurring = sum(" ×" in t.split("\n", 1)[0] or "Task completed" in t.split("\n", 1)[0]
                        for t in texts)
        edits = sum(1 for c in server.calls if c.method == "editMessageText"
                    and c.status == 200 and int(c.params.get("chat_id", 0)) == chat_id)
        rows.append([label, str(len(sends)), str(alerts), str(recurring), str(escalations),
                     str(replies), str(len(sends) - alerts - recurring - escalations - replies),
                     str(edits)])
    print(markdown_table(["chat", "messages sent", "alerts", "completions", "re-announced",
                          "screens opened (replies)", "other", "edits"], rows,
                         right=[1, 2, 3, 4, 5, 6, 7]))
    print()
    once_rows = []
    for task_id, (what, _) in sorted(inc.alerts.items()):
        per_chat = [announced[c].get(task_id, 0) for c in chats.values()]
        once_ok = once_ok and all(n == 1 for n in per_chat)
        how = [("in a digest" if inc.digested.get(c, {}).get(task_id) else "alone")
               for c in chats.values()]
        once_rows.append([f"#{task_id} {what}" + (" (burst)" if task_id in inc.burst else ""),
                          *(f"{n} ({h})" for n, h in zip(per_chat, how, strict=True))])
    print(markdown_table(["alert", *chats], once_rows, right=[1, 2, 3]))
    # stuck: simulated minutes from its last own event to the announcement
    stuck_calls = [c for c in server.calls if c.method == "sendMessage" and c.status == 200
                   and f"#{inc.stuck_id} " in plain(c).split("\n", 1)[0]
                   and "stuck" in plain(c)]
    stuck_after = [(inc.clock.at_real(c.at) - inc.clock.at_real(inc.stuck_active_real))
                   .total_seconds() / 60 for c in stuck_calls]
    silent_pushed = sum(1 for c in server.calls if c.method in ("sendMessage",
                                                                "editMessageText")
                        and any(f"#{i} " in str(c.params.get("text", "")) for i in inc.silent))
    silent_pushed += sum(1 for c in server.calls if c.method == "sendMessage"
                         and "Disk fine" in str(c.params.get("text", "")))
    # status change → notification (each alert of a status change, each chat)
    latency: list[float] = []
    slow: list[str] = []
    for task_id, (what, real) in inc.alerts.items():
        if what == "stuck":
            continue
        listed = re.compile(rf"^\S+ #{task_id} ", re.MULTILINE)
        for chat_id in chats.values():
            # its alert, or the digest's send or edit that first lists it
            first = next((c for c in server.calls
                          if c.method in ("sendMessage", "editMessageText") and c.at >= real
                          and c.status == 200 and int(c.params.get("chat_id", 0)) == chat_id
                          and (f"#{task_id} " in plain(c).split("\n")[0]
                               or (DIGEST_HEAD.match(plain(c))
                                   and listed.search(plain(c))))),
                         None)
            if first is not None:
                latency.append(first.at - real)
                if first.at - real > 2.0:
                    slow.append(f"#{task_id} {what} → chat {chat_id}: {first.at - real:.1f} s")
    escalated = {label: sum(plain(c).startswith("⏰")
                            for c in bot_sends(server, chat_id))
                 for label, chat_id in chats.items()}
    # the tasks each of the group's re-announcements names (one, or a digest's), and any
    # of them acked before it was sent
    named_at = [(int(i), c.at) for c in bot_sends(server, GROUP) if plain(c).startswith("⏰")
                for i in re.findall(r"#(\d+) ", plain(c))]
    named = [i for i, _ in named_at]
    acked_first = [i for i, at in named_at
                   if i in inc.acked_at and inc.acked_at[i] <= inc.clock.at_real(at)]
    flood = len(server.flood_violations)
    other = [v for v in server.violations if not (v.error_code == 429 and not v.injected)]
    lifecycle = []
    for old, _new in inc.restarted:
        alert = alert_message(server, GROUP, old)
        lifecycle.append((alert.text or "").rsplit("\n\n", 2)[-2:] if alert else "?")
    repeats = [(m.text or "").split("\n", 1)[0] for m in server.messages(OLAF)
               if m.from_bot and " ×" in (m.text or "").split("\n", 1)[0]]
    restarted_between = [
        (seen, pressed) for seen, pressed in inc.acked
        if any(seen < down and pressed > up for down, up in inc.restarts)]
    escalation_calls = [c for c in bot_sends(server, GROUP) if plain(c).startswith("⏰")]
    escalated_across = bool(escalation_calls) and any(
        inc.alerts.get(inc.unacked, ("", 0.0))[1] < down
        and escalation_calls[0].at > up for down, up in inc.restarts)
    digests = {label: sum(1 for m in server.messages(chat_id) if is_digest(m))
               for label, chat_id in chats.items()}
    in_digests = {label: sum(inc.digested.get(chat_id, {}).values())
                  for label, chat_id in chats.items()}
    print()
    ok_stuck = bool(stuck_after) and max(stuck_after) <= args.stuck_after + 1
    ok_ack = bool(inc.acks) and max(inc.acks) <= 2.0
    # Once per alert nobody acked, in the group only: the one left unacked on purpose, and
    # none that was acked before it was due.
    ok_escalation = (sorted(named) == sorted(set(named)) and inc.unacked in named
                     and not acked_first
                     and escalated["Ann (private)"] == 0
                     and escalated["Olaf (private, +completed)"] == 0)
    ok_latency = bool(latency) and percentile(latency, 95) <= 2.0
    figures = [
        ["each failure/pause/loop/stuck announced exactly once per chat",
         f"{'yes' if once_ok else 'NO'} ({len(inc.alerts)} alerts × {len(chats)} chats)"],
        ["stuck announced after its last own event (simulated min)",
         ", ".join(f"{m:.1f}" for m in stuck_after) + f" (limit {args.stuck_after + 1})"],
        ["silent completions pushed", f"{silent_pushed} (of {len(inc.silent)} runs)"],
        ["completions of the minutely cronjob in the opt-in chat",
         f"{len(inc.completed)} runs → {repeats[-1] if repeats else 'no recurring message'}"],
        ["ack → alert edited in the group (s): n, p50, p95, max",
         f"{len(inc.acks)}, {percentile(inc.acks, 50):.3f}, {percentile(inc.acks, 95):.3f}, "
         f"{max(inc.acks):.3f}" if inc.acks else "none"],
        [f"re-announced (unacked alert #{inc.unacked})",
         ", ".join(f"{k}: {v}" for k, v in escalated.items())
         + f" (naming {', '.join(f'#{i}' for i in named) or 'none'}"
         + (f"; acked before: {acked_first}" if acked_first else "") + ")"
         + (" — sent before a restart, re-announced after it" if escalated_across else "")],
        ["console restarts (real s down each)",
         ", ".join(f"{up - down:.1f}" for down, up in inc.restarts) or "none"],
        ["acks of alerts sent before a restart, pressed after it",
         f"{len(restarted_between)} of {len(inc.acked)} acks"],
        ["digests (messages) · alerts carried in them, per chat",
         ", ".join(f"{k}: {digests[k]} · {in_digests[k]}" for k in chats)],
        ["digest: its question answered from 💬 → lifecycle line on the digest",
         (f"#{inc.digest_answered[0]}: {'shown' if inc.digest_answered[1] else 'NOT shown'}"
          if inc.digest_answered else "no question in the group's digest")],
        ["restart from the card → lifecycle line", "; ".join(
            " / ".join(x) if isinstance(x, list) else x for x in lifecycle) or "none"],
        ["Telegram rule violations (flood 429s; other refusals)",
         f"{flood}; {len(other)}" + (f" {sorted({v.description for v in other})[:3]}"
                                     if other else "")],
        ["status change → notification (s): n, p50, p95, max",
         f"{len(latency)}, {percentile(latency, 50):.3f}, {percentile(latency, 95):.3f}, "
         f"{max(latency):.3f}" if latency else "none"],
    ]
    print(markdown_table(["figure", "value"], figures))
    if slow:
        print("\nslower than 2 s:", "; ".join(slow))
        # what the group's Telegram budget (20 a minute) went to in the minute before
        first_slow = min((c.at for c in server.calls if c.status == 200
                          and int(c.params.get("chat_id", 0) or 0) == GROUP
                          and c.method in ("sendMessage", "editMessageText")), default=0.0)
        for task_id, (_what, real) in sorted(inc.alerts.items()):
            if any(x.startswith(f"#{task_id} ") for x in slow):
                first_slow = real
                break
        window = [c for c in server.calls if c.status == 200
                  and str(c.params.get("chat_id", "")) == str(GROUP)
                  and first_slow - 60 <= c.at <= first_slow + 20
                  and c.method in ("sendMessage", "editMessageText")]
        print(f"the group's requests from 60 s before to 20 s after the first slow change "
              f"({len(window)}):")
        for c in window:
            print(f"  {c.at - first_slow:+7.1f} s {c.method:16} {plain(c)[:60]!r}")
    if other:
        print("\nrefusals:", "; ".join(
            f"{v.method} chat {v.params.get('chat_id')} message {v.params.get('message_id')}: "
            f"{str(v.params.get('text', ''))[:60]!r}" for v in other))
    if inc.errors:
        print("\nscript problems:", "; ".join(inc.errors))
    ok_digest = not args.burst or (all(digests.values()) and inc.digest_answered is not None
                                   and inc.digest_answered[1])
    ok = (once_ok and ok_stuck and silent_pushed == 0 and ok_ack and ok_escalation
          and flood == 0 and not other and ok_latency and not inc.errors and ok_digest
          and len(inc.restarts) == len(args.restart_at))
    print("\nall figures met" if ok else "\nNOT MET")
    return ok


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed", type=float, default=2.0,
                        help="simulated seconds per real second")
    parser.add_argument("--minutes", type=int, default=15)
    parser.add_argument("--stuck-after", type=int, default=10)
    parser.add_argument("--escalate-after", type=int, default=5)
    parser.add_argument("--restart-at", type=float, nargs="*", default=[5.5, 10.5],
                        help="simulated minutes at which the console restarts (none: no value)")
    parser.add_argument("--burst-at", type=float, default=7.5,
                        help="simulated minute of the burst that becomes a digest")
    parser.add_argument("--burst", type=int, default=8,
                        help="tasks in the burst (0: none)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    print("command: python bench/push_incident.py "
          + shlex.join(sys.argv[1:] if argv is None else argv))
    print(f"seed: {args.seed}")
    print_facts({**machine_facts(), "database": args.db})
    async with database(args.db) as url:
        inc, server = await run(url, args)
    print()
    ok = report(inc, server, args)
    print(f"load average at end: {load_average()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
