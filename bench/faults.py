"""Faults: what the store or Telegram faltering costs, end to end (issue 16).

    python bench/faults.py [--only NAME ...] [--warmup 15] [--recovery 20] [--steps 12]
                           [--burst 250] [--seed 0]

Each scenario runs what ``taskops run`` runs, in this process (bench/fault_kit.py): the
Application against the fake Telegram server with its push jobs, the worker, and the
product's own logging. Scripted tasks are submitted every 2 s (each writes ``--steps``
numbered marks, a tool call per mark, 1 s apart); two admins send /tasks or press
🔄 Refresh about once a second; an on-call admin's private chat and a group are subscribed to every
status. After ``--warmup`` s the fault is injected; after it ends the system is left
``--recovery`` s, then new work stops and every task is waited for.

Faults: the SQLite write lock held by another process (``BEGIN IMMEDIATE``) 10 s and 60 s;
a PostgreSQL database of our own on the shared server refusing connections (``ALTER
DATABASE … ALLOW_CONNECTIONS false`` and its sessions terminated) 10 s and 60 s; a
PostgreSQL server of our own (system binaries, temporary directory, port 55439) restarted
with a fast shutdown; and, on SQLite, Telegram answering 429 (retry_after 2), 500,
dropping the connection after performing the call, or answering only after 12 s (past the
client's timeout) — 8 of each on sendMessage and on editMessageText — while ``--burst``
quick tasks make 2 changes each (a burst of 500 changes by default); on SQLite
(``telegram-…``) and on PostgreSQL (``telegram-…-pg``).

Reported per scenario:
* runs failed — tasks of the workload that ended ``failed`` (none is scripted to fail);
* events lost / doubled — marks missing from, or twice in, a finished task's events;
* console during the fault — requests answered (of those sent), how many said the store
  is unavailable, and the latency of the answers (median, p95, max);
* full service after the fault — seconds from its end until a /tasks gets a real list,
  the worker's events commit again, and a push message goes out (the largest is shown);
* notifications lost / repeated — per chat, status changes not counted in any delivered
  notification or digest, and messages delivered more than once (with the most copies of
  one message);
* ERROR lines per minute of the product's log over the whole scenario.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import random
import re
import statistics
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import text

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
from bench.fault_kit import (
    PUSH_TEXT,
    SUBSCRIBED,
    LineLog,
    OwnPostgres,
    System,
    Workload,
    capture_logs,
    until_console_answers,
)
from taskops.bot.render import render
from taskops.storage.db import migrate
from taskops.storage.domain import EventKind, TaskDraft, TaskStatus
from tests.faults import postgres_refusing, sqlite_locked

SINGLE_HEAD = re.compile(r"^\S+ Task (started|resumed|failed|completed|paused)\b")
DIGEST_HEAD = re.compile(r"^\S+ ([\d,]+) tasks? ")
TAG = re.compile(r"<[^>]*>")
#: the line a repeated message ends with, as the chat shows it
AGAIN = "\n\n" + TAG.sub("", render("sent_again"))
MARK = re.compile(r"^mark (\d+):(\d+)$")
#: where ``notifications`` writes what each subscribed chat got (set per scenario)
DUMP: Path | None = None
QUICK = "A quick task.\n!say quick\n!end completed quick"
TELEGRAM_FAULTS = {"429": {"kind": "429", "retry_after": 2}, "500": {"kind": "500"},
                   "drop-after-delivery": {"kind": "drop_after"},
                   "answer-after-timeout": {"kind": "slow", "delay": 12.0}}


@dataclass
class Result:
    name: str
    runs: int
    runs_failed: int
    events_lost: int
    events_doubled: int
    sent_during: int
    answered_during: int
    unavailable_during: int
    latencies: list[float]
    full_service: dict[str, float | None]
    notifications_lost: int
    repeated: int
    most_copies: int
    error_lines_per_minute: float
    resumed: int
    fault_seconds: float
    #: the slowest answers during the fault: (kind, seconds into the fault, latency, said
    #: unavailable), for reading a miss
    slowest: list[tuple[str, float, float, bool]]


# --- databases ----------------------------------------------------------------------------


@asynccontextmanager
async def database(kind: str, name: str) -> AsyncIterator[tuple[str, OwnPostgres | None]]:
    if kind == "sqlite":
        path = DATA_DIR / f"faults-{name}.db"
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        remove_sqlite(path)
        url = sqlite_url(path)
        await migrate(url)
        try:
            yield url, None
        finally:
            remove_sqlite(path)
        return
    db = f"taskops_faults_bench_{uuid.uuid4().hex[:8]}"
    own = OwnPostgres() if kind == "own-postgresql" else None
    if own is not None:
        await asyncio.to_thread(own.start)
    server = own.server_url if own else None
    try:
        await (create_pg_database(db, server) if server else create_pg_database(db))
        url = pg_url(db, server) if server else pg_url(db)
        await migrate(url)
        yield url, own
        await (drop_pg_database(db, server) if server else drop_pg_database(db))
    finally:
        if own is not None:
            await asyncio.to_thread(own.stop)


# --- faults: each returns when it is over, with (start, end) ------------------------------

Fault = Callable[[System, str, OwnPostgres | None], Awaitable[tuple[float, float]]]


def sqlite_lock(seconds: float) -> Fault:
    async def inject(system: System, url: str, own: OwnPostgres | None) -> tuple[float, float]:
        async with sqlite_locked(url):
            start = time.time()
            await asyncio.sleep(seconds)
        return start, time.time()
    return inject


def pg_refusing(seconds: float) -> Fault:
    async def inject(system: System, url: str, own: OwnPostgres | None) -> tuple[float, float]:
        async with postgres_refusing(url):
            start = time.time()
            await asyncio.sleep(seconds)
        return start, time.time()
    return inject


async def pg_restart(system: System, url: str, own: OwnPostgres | None) -> tuple[float, float]:
    assert own is not None
    start = time.time()
    await asyncio.to_thread(own.restart)
    return start, time.time()


def telegram(kind: str, burst: int) -> Fault:
    async def inject(system: System, url: str, own: OwnPostgres | None) -> tuple[float, float]:
        server = system.server
        start = time.time()
        for method in ("sendMessage", "editMessageText"):
            for chat in (None, *SUBSCRIBED):  # any call, and the push side's own calls
                server.fail(method, count=8, chat_id=chat,
                            **TELEGRAM_FAULTS[kind])  # type: ignore[arg-type]
        for i in range(burst):
            await submit_surely(system, QUICK, f"quick {i}")
        # The fault lasts until every injected answer has been given (the fake's own queue).
        while server.faults_pending():  # noqa: ASYNC110 (nothing to wait on but this)
            await asyncio.sleep(0.05)
        return start, time.time()
    return inject


async def submit_surely(system: System, prompt: str, name: str) -> int:
    """A task of the burst: submitted again until the store takes it (the burst is the
    load of the scenario, not what it measures)."""
    while True:
        try:
            task = await system.store.create_task(TaskDraft(name=name, prompt=prompt))
        except Exception:
            await asyncio.sleep(0.2)
            continue
        return task.id


# --- measuring ----------------------------------------------------------------------------


async def watch_events(system: System, samples: list[tuple[float, int]],
                       stop: asyncio.Event) -> None:
    """The highest event id, every 0.1 s (when the store answers)."""
    while not stop.is_set():
        try:
            async with system.store.engines.quick_read.connect() as conn:
                top = (await conn.execute(text("SELECT max(id) FROM task_events"))).scalar()
            samples.append((time.time(), int(top or 0)))
        except Exception:
            pass
        await asyncio.sleep(0.1)


def worker_back(samples: list[tuple[float, int]], end: float) -> float | None:
    before = max((top for at, top in samples if at < end), default=0)
    return next((at - end for at, top in samples if at >= end and top > before), None)


def push_back(system: System, end: float) -> float | None:
    chats = {str(c) for c in SUBSCRIBED}
    return next((c.at - end for c in system.server.calls
                 if c.at >= end and c.status == 200
                 and c.method in ("sendMessage", "editMessageText")
                 and str(c.params.get("chat_id")) in chats
                 and PUSH_TEXT.match(TAG.sub("", str(c.params.get("text", ""))))), None)


async def finished(system: System, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if not await system.store.running_tasks(limit=1):
                return
        except Exception:
            pass
        await asyncio.sleep(1)


async def caught_up(system: System, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        pending = False
        for sub in await system.store.push.subscriptions():
            pending = pending or bool((await system.store.read_changes(sub.cursor, 1)).events)
        if not pending:
            await asyncio.sleep(3)  # digests still being edited
            return
        await asyncio.sleep(0.5)


async def notifications(system: System) -> tuple[int, int, int]:
    """(lost, repeated, most copies of one message) over every subscribed chat."""
    expected = 0
    ids = await all_task_ids(system)
    for task_id in ids:
        expected += (await system.store.list_events(task_id, 0, 1,
                                                    kinds=[EventKind.STATUS_CHANGE])).total
    lost = repeated = most = 0
    for chat in SUBSCRIBED:
        # Copies are told by the text as sent (a digest is edited afterwards, but only the
        # copy whose id the bot knows); a repeat is marked (bot/delivery.py) and is a copy
        # all the same. What a group of copies delivered is what its most edited one shows.
        groups: dict[str, list[str]] = {}
        for m in system.server.messages(chat):
            sent = (m.edits[0].text if m.edits else m.text) or ""
            if m.from_bot and is_push(sent):
                groups.setdefault(sent.removesuffix(AGAIN), []).append(
                    (m.text or "").removesuffix(AGAIN))
        delivered = 0
        for finals in groups.values():
            delivered += max(covered(t) for t in finals)
            repeated += len(finals) - 1
            most = max(most, len(finals))
        lost += max(0, expected - delivered)
        if DUMP is not None:
            with DUMP.open("a", encoding="utf-8") as out:
                out.write(f"== chat {chat}: {expected} changes, {delivered} told\n")
                for m in system.server.messages(chat):
                    if m.from_bot:
                        sent = ((m.edits[0].text if m.edits else m.text) or "").split("\n")[0]
                        out.write(f"#{m.message_id} edits {len(m.edits)} sent [{sent}] now "
                                  f"[{(m.text or '').splitlines()[0] if m.text else ''}]\n")
    return lost, repeated, most


def is_push(text: str) -> bool:
    return bool(SINGLE_HEAD.match(text) or (
        DIGEST_HEAD.match(text) and "in the last" in text.split("\n", 1)[0]))


def covered(text: str) -> int:
    """Status changes a notification (1) or a digest (its total) tells of."""
    match = DIGEST_HEAD.match(text)
    return int(match.group(1).replace(",", "")) if match and not SINGLE_HEAD.match(text) else 1


async def all_task_ids(system: System) -> list[int]:
    async with system.store.engines.read.connect() as conn:
        return [r[0] for r in await conn.execute(text("SELECT id FROM tasks ORDER BY id"))]


async def marks(system: System, workload: Workload) -> tuple[int, int, int, int, int]:
    """(runs, failed) of every task, (marks lost, marks doubled) of the marked ones, and
    how often runs were taken up again."""
    ids = await all_task_ids(system)
    failed = lost = doubled = resumed = 0
    for task_id in ids:
        failed += (await system.store.get_task(task_id)).status is TaskStatus.FAILED
    for number, task_id in workload.tasks.items():
        task = await system.store.get_task(task_id)
        events = (await system.store.list_events(task_id, 0, 10_000)).events
        resumed += sum(e.kind is EventKind.RESUMED for e in events)
        seen = Counter(int(m.group(2)) for e in events if e.kind is EventKind.TEXT
                       and (m := MARK.match(str(e.payload.get("text", ""))))
                       and int(m.group(1)) == number)
        if task.status is TaskStatus.COMPLETED:
            lost += sum(1 for i in range(workload.steps) if not seen[i])
        doubled += sum(n - 1 for n in seen.values() if n > 1)
    return len(ids), failed, lost, doubled, resumed


# --- one scenario -------------------------------------------------------------------------


async def scenario(name: str, db: str, fault: Fault, log: LineLog,
                   args: argparse.Namespace) -> Result:
    async with database(db, name) as (url, own):
        began = time.time()
        system = await System.start(url)
        workload = Workload(system, steps=args.steps)
        workload.start()
        samples: list[tuple[float, int]] = []
        watching = asyncio.Event()
        watcher = asyncio.create_task(watch_events(system, samples, watching))
        await asyncio.sleep(args.warmup)
        start, end = await fault(system, url, own)
        console = await asyncio.wait_for(until_console_answers(workload, end), 120)
        await asyncio.sleep(args.recovery)
        await workload.stop_admins()
        await finished(system, 300)
        await caught_up(system, 120)
        watching.set()
        await watcher
        during = [a for a in workload.answers if start <= a.sent < end]
        answered = [a for a in during if a.latency is not None]
        runs, failed, lost, doubled, resumed = await marks(system, workload)
        global DUMP
        DATA_DIR.mkdir(parents=True, exist_ok=True)  # a PostgreSQL-only run made none yet
        DUMP = DATA_DIR / f"faults-{name}-chats.txt"
        DUMP.unlink(missing_ok=True)
        n_lost, repeated, most = await notifications(system)
        over = time.time()
        await system.close()
    full = {"console": console, "worker": worker_back(samples, end),
            "push": push_back(system, end)}
    log.dump(DATA_DIR / f"faults-{name}.log", began, over)
    return Result(name, runs, failed, lost, doubled, len(during),
                  len(answered), sum(a.unavailable for a in during),
                  [a.latency for a in answered if a.latency is not None], full, n_lost,
                  repeated, most, log.level_lines("ERROR", began, over) / ((over - began) / 60),
                  resumed, end - start,
                  sorted(((a.kind, a.sent - start, a.latency, a.unavailable) for a in answered
                          if a.latency is not None), key=lambda x: -x[2])[:3])


def row(r: Result) -> list[str]:
    lat = r.latencies
    latency = (f"{statistics.median(lat):.2f} / {percentile(lat, 95):.2f} / {max(lat):.2f}"
               if lat else "—")
    known = {k: v for k, v in r.full_service.items() if v is not None}
    slowest = max(known, key=lambda k: known[k]) if known else None
    full = f"{known[slowest]:.1f} ({slowest})" if slowest else "—"
    return [r.name, f"{r.fault_seconds:.0f}", f"{r.runs_failed} of {r.runs}",
            f"{r.events_lost} / {r.events_doubled}",
            f"{r.answered_during} of {r.sent_during} ({r.unavailable_during} unavailable)",
            latency, full, str(r.notifications_lost), f"{r.repeated} (max {r.most_copies})",
            f"{r.error_lines_per_minute:.1f}", str(r.resumed)]


HEADERS = ["fault", "s", "runs failed", "events lost / doubled", "console answers in fault",
           "latency s p50 / p95 / max", "full service s", "notif. lost",
           "repeated (copies)", "ERROR/min", "resumes"]


def scenarios(args: argparse.Namespace) -> list[tuple[str, str, Fault]]:
    found: list[tuple[str, str, Fault]] = [
        ("sqlite-lock-10s", "sqlite", sqlite_lock(10)),
        ("sqlite-lock-60s", "sqlite", sqlite_lock(60)),
        ("pg-refusing-10s", "postgresql", pg_refusing(10)),
        ("pg-refusing-60s", "postgresql", pg_refusing(60)),
        ("pg-restart", "own-postgresql", pg_restart),
    ]
    found += [(f"telegram-{kind}{suffix}", db, telegram(kind, args.burst))
              for suffix, db in (("", "sqlite"), ("-pg", "postgresql"))
              for kind in TELEGRAM_FAULTS]
    return [s for s in found if not args.only or s[0] in args.only]


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", nargs="*", default=[])
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--recovery", type=float, default=20.0)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--burst", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    random.seed(args.seed)
    print_facts({**machine_facts(), "seed": str(args.seed)})
    log = capture_logs()
    results = []
    for name, db, fault in scenarios(args):
        print(f"{name} … (load average {load_average()})", file=sys.stderr, flush=True)
        results.append(await scenario(name, db, fault, log, args))
        print(markdown_table(HEADERS, [row(results[-1])]), file=sys.stderr, flush=True)
    print(markdown_table(HEADERS, [row(r) for r in results], right=[1, 7, 9, 10]))
    for r in results:
        print(f"{r.name}: slowest answers in the fault " + ", ".join(
            f"{kind} at +{at:.1f} s: {lat:.2f} s{' (unavailable)' if unavailable else ''}"
            for kind, at, lat, unavailable in r.slowest))
        print(f"{r.name}: full service " + ", ".join(
            f"{k} {v:.1f} s" if v is not None else f"{k} —" for k, v in r.full_service.items()))
    print(f"load average at the end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
