"""Push: status change → notification latency, a 10,000-change burst to 20 chats, and
event → live-view edit latency (budgets: ≤ 2 s p95 and ≤ 2.5 s p95; nothing lost, zero
flood-limit violations).

    python bench/push.py [--db sqlite|postgresql] [--singles 40] [--burst 10000]
                         [--burst-seconds 60] [--burst-kind started|failed] [--chats 20]
                         [--groups 5] [--live-events 40] [--seed 0]

Each phase runs the real taskops Application (``build_application`` + ``start_console``,
as tests/e2e/harness.py does) in this process against a fresh fake Telegram server with
Telegram's flood limits on (per chat 5 + 1/s, 20/min per group, 30/s overall), on a fresh
SQLite file under bench/data/ or a fresh PostgreSQL database. Changes are written through
the store API in the same process, as the worker of ``taskops run`` writes them (so the
in-process signal wakes the push side; the feed poll is the fallback). Times are the
fake's own record of each Bot API call (``time.time``) against the moment before the
store call.

1. Single change → notification: ``--singles`` running tasks fail one after the other,
   0.8 s apart, each seen by one of five subscribed private chats (one trigger each), so
   no chat gets more than the digest threshold in its window and each change is one
   message. Latency: store call → the fake records the sendMessage naming the task.
2. Burst: ``--burst`` tasks (created beforehand, not timed) start running (or, with
   ``--burst-kind failed``, are killed) evenly over ``--burst-seconds`` — as fast as the
   store allows if that is slower — while ``--chats`` chats (``--groups`` of them groups)
   are subscribed to every status. Drain time: first change → the last message or edit that
   delivers the burst. Lost: changes not counted in any chat's digests or notifications
   (from the final text of every message the chat got). Violations: the fake's 429s from
   its flood limits.
3. Event → live view: an admin opens ``/task N`` of a running task; ``--live-events``
   agent-text events are appended at random intervals of 0.5–4 s. Latency: append → the
   fake records the editMessageText whose text shows the event.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import logging
import random
import re
import shlex
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bench.common import (
    DATA_DIR,
    create_pg_database,
    drop_pg_database,
    machine_facts,
    markdown_table,
    percentile,
    pg_url,
    print_facts,
    remove_sqlite,
    sqlite_url,
)
from taskops.bot.app import build_application, start_console, stop_console
from taskops.bot.app_types import AnyApp
from taskops.bot.context import deps_of
from taskops.bot.push.subscription import NotifySettings
from taskops.config import DatabaseSettings, Secret, Settings, TelegramSettings
from taskops.storage.db import migrate
from taskops.storage.domain import EventKind, TaskDraft, TaskStatus, Trigger
from taskops.storage.store import TaskStore
from tests.fakegram import Call, FakeTelegram

TOKEN = "123456:BENCH-push"
ADMIN = 1001
SINGLE_HEAD = re.compile(r"^\S+ Task \w+ · #(\d+) ")
DIGEST_HEAD = re.compile(r"^\S+ ([\d,]+) tasks? ")


@dataclass
class Bench:
    server: FakeTelegram
    app: AnyApp
    store: TaskStore


@asynccontextmanager
async def console(url: str, admins: list[int]) -> AsyncIterator[Bench]:
    server = FakeTelegram(token=TOKEN)
    await server.start()
    for uid in admins:
        server.private_chat(server.add_user(uid, f"Admin {uid}"))
    settings = Settings(
        telegram=TelegramSettings(token=Secret(TOKEN), admin_ids=frozenset(admins),
                                  base_url=server.bot_base_url),
        database=DatabaseSettings(url=url))
    store = await TaskStore.open(settings)
    app = build_application(settings, store)
    try:
        async with app:
            await start_console(app)
            try:
                yield Bench(server, app, store)
            finally:
                await stop_console(app)
    finally:
        await store.close()
        await server.stop()


async def running(store: TaskStore, n: int, trigger: Trigger = Trigger.USER,
                  start: bool = True) -> list[int]:
    ids = []
    for i in range(n):
        task = await store.create_task(TaskDraft(name=f"bench task {i}", prompt="p",
                                                 trigger=trigger))
        if start:
            await store.start_task(task.id)
        ids.append(task.id)
    return ids


async def subscribe(b: Bench, chat_id: int, **wants: object) -> None:
    """As /subscribe does: store the subscription and tell the notifier, which starts the
    chat's worker (otherwise it would notice within its poll interval)."""
    settings = NotifySettings(**wants) if wants else NotifySettings(  # type: ignore[arg-type]
        statuses=frozenset(TaskStatus))
    await b.store.push.subscribe(chat_id, settings.to_json(), ADMIN)
    service = deps_of(b.app).push
    assert service is not None
    service.poke()
    await b.server.wait_for(lambda: chat_id in service.notifier.workers)


async def first_call(server: FakeTelegram, match: Callable[[Call], bool], since: int,
                     timeout: float = 30.0) -> Call:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for call in server.calls[since:]:
            if call.status == 200 and match(call):
                return call
        await asyncio.sleep(0.002)
    raise TimeoutError("no matching call")


def sent_about(task_id: int) -> Callable[[Call], bool]:
    def match(call: Call) -> bool:
        return call.method == "sendMessage" and f" · #{task_id} " in str(
            call.params.get("text", ""))
    return match


def edit_showing(message_id: int, marker: str) -> Callable[[Call], bool]:
    def match(call: Call) -> bool:
        return (call.method == "editMessageText"
                and str(call.params.get("message_id")) == str(message_id)
                and marker in str(call.params.get("text", "")))
    return match


def stats(samples: list[float]) -> tuple[str, str, str]:
    return (f"{percentile(samples, 50):.3f}", f"{percentile(samples, 95):.3f}",
            f"{max(samples):.3f}")


# --- 1. single change → notification ------------------------------------------------------


async def singles(url: str, n: int) -> list[float]:
    admins = [ADMIN + i for i in range(5)]
    triggers = list(Trigger)
    async with console(url, admins) as b:
        for chat_id, trigger in zip(admins, triggers, strict=True):
            await subscribe(b, chat_id, triggers=frozenset({trigger}))
        ids = [(await running(b.store, 1, triggers[i % 5]))[0] for i in range(n)]
        samples = []
        for task_id in ids:
            since = len(b.server.calls)
            started = time.time()
            await b.store.fail_task(task_id, "bench failure")
            call = await first_call(b.server, sent_about(task_id), since)
            samples.append(call.at - started)
            await asyncio.sleep(0.8)
        return samples


# --- 2. burst ----------------------------------------------------------------------------


@dataclass
class BurstResult:
    drain: float
    write: float
    sends: int
    edits: int
    lost: int
    repeated: int
    violations: int


async def drained(store: TaskStore, chats: int) -> bool:
    """Every chat's cursor has nothing after it."""
    subs = await store.push.subscriptions()
    for sub in subs:
        if (await store.read_changes(sub.cursor, 1)).events:
            return False
    return len(subs) == chats


def delivered_count(server: FakeTelegram, chat_id: int) -> int:
    total = 0
    for message in server.messages(chat_id):
        text = message.text or ""
        if not message.from_bot:
            continue
        if SINGLE_HEAD.match(text):
            total += 1
        elif (match := DIGEST_HEAD.match(text)) and "in the last" in text.split("\n", 1)[0]:
            total += int(match.group(1).replace(",", ""))
    return total


async def burst(url: str, n: int, seconds: float, chats: int, groups: int,
                kind: str) -> BurstResult:
    admins = [ADMIN + i for i in range(chats - groups)]
    async with console(url, admins) as b:
        group_ids = [-100_000 - i for i in range(groups)]
        for gid in group_ids:
            b.server.add_group(gid, f"Ops {gid}", members=[b.server.user(ADMIN)])
        targets = admins + group_ids
        ids = await running(b.store, n, start=False)
        for chat_id in targets:
            await subscribe(b, chat_id)
        since = len(b.server.calls)
        first = time.time()
        for i, task_id in enumerate(ids):
            if kind == "started":
                await b.store.start_task(task_id, "bench")
            else:
                await b.store.kill_task(task_id, by="bench")
            ahead = first + (i + 1) * seconds / n - time.time()
            if ahead > 0:
                await asyncio.sleep(ahead)
        written = time.time() - first
        while True:
            if await drained(b.store, len(targets)):
                break
            await asyncio.sleep(0.25)
        calls = [c for c in b.server.calls[since:] if c.status == 200
                 and c.method in ("sendMessage", "editMessageText")
                 and int(c.params.get("chat_id", 0)) in set(targets)]
        counts = [delivered_count(b.server, chat_id) for chat_id in targets]
        return BurstResult(
            drain=max(c.at for c in calls) - first, write=written,
            sends=sum(c.method == "sendMessage" for c in calls),
            edits=sum(c.method == "editMessageText" for c in calls),
            lost=sum(max(0, n - c) for c in counts), repeated=sum(max(0, c - n) for c in counts),
            violations=len(b.server.flood_violations))


# --- 3. event → live view ---------------------------------------------------------------


async def live(url: str, n: int, rng: random.Random) -> list[float]:
    async with console(url, [ADMIN]) as b:
        [task_id] = await running(b.store, 1)
        chat = b.server.private_chat(ADMIN)
        await b.server.send_text(ADMIN, chat, f"/task {task_id}")
        await b.server.wait_for(lambda: b.server.last_bot_message(chat) is not None)
        message = b.server.last_bot_message(chat)
        assert message is not None
        samples = []
        for i in range(n):
            await asyncio.sleep(rng.uniform(0.5, 4.0))
            marker = f"marker-{i:03d}-"
            since = len(b.server.calls)
            started = time.time()
            await b.store.append_event(task_id, EventKind.TEXT, {"text": marker})
            call = await first_call(b.server, edit_showing(message.message_id, marker), since)
            samples.append(call.at - started)
        return samples


# --- main --------------------------------------------------------------------------------


@asynccontextmanager
async def database(kind: str) -> AsyncIterator[str]:
    if kind == "sqlite":
        path = DATA_DIR / f"push_{uuid.uuid4().hex[:8]}.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        url = sqlite_url(path)
        await migrate(url)
        try:
            yield url
        finally:
            remove_sqlite(path)
    else:
        name = f"taskops_bench_push_{uuid.uuid4().hex[:8]}"
        await create_pg_database(name)
        url = pg_url(name)
        await migrate(url)
        try:
            yield url
        finally:
            await drop_pg_database(name)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--singles", type=int, default=40)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--burst-seconds", type=float, default=60.0)
    parser.add_argument("--burst-kind", choices=["started", "failed"], default="started",
                        help="the status change of the burst: tasks start running (one cheap "
                             "store write each) or are killed (about three times the cost)")
    parser.add_argument("--chats", type=int, default=20)
    parser.add_argument("--groups", type=int, default=5)
    parser.add_argument("--live-events", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    print("command: python bench/push.py " + shlex.join(sys.argv[1:] if argv is None else argv))
    print_facts({**machine_facts(), "database": args.db})
    async with database(args.db) as url:
        single = await singles(url, args.singles)
    async with database(args.db) as url:
        result = await burst(url, args.burst, args.burst_seconds, args.chats, args.groups,
                             args.burst_kind)
    async with database(args.db) as url:
        edits = await live(url, args.live_events, random.Random(args.seed))
    print()
    print(markdown_table(["measure", "samples", "p50 s", "p95 s", "max s", "budget p95"], [
        ["status change → notification", str(len(single)), *stats(single), "2 s"],
        ["event → live-view edit", str(len(edits)), *stats(edits), "2.5 s"],
    ], right=[1, 2, 3, 4]))
    print()
    print(markdown_table(["burst", "value"], [
        ["changes", f"{args.burst:,} ({args.burst_kind}) written over {result.write:.1f} s"],
        ["chats", f"{args.chats} ({args.groups} groups)"],
        ["time to drain (first change → last delivery)", f"{result.drain:.1f} s"],
        ["messages sent (sendMessage + editMessageText)",
         f"{result.sends + result.edits:,} ({result.sends:,} + {result.edits:,})"],
        ["changes lost (over all chats)", str(result.lost)],
        ["changes counted twice", str(result.repeated)],
        ["flood-limit violations", str(result.violations)],
    ]))
    ok = (percentile(single, 95) <= 2.0 and percentile(edits, 95) <= 2.5
          and result.lost == 0 and result.violations == 0)
    print("\nwithin budget" if ok else "\nOUT OF BUDGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
