"""What counting metrics costs on the press path and the event path, side by side with
metrics off (issue 18; goal: within noise, ≤ 3 %).

    python bench/metrics_cost.py [--tasks 20000] [--presses 300] [--events 3000]
                                 [--block 20] [--chats 40] [--seed 0]

One SQLite store under bench/data/ seeded by ``storage.seed.seed_demo`` (``--tasks``,
``--seed``); in this process the real console (``build_application`` + ``start_console``,
push jobs included, the 5 s auto-refresh removed) against the fake Telegram over HTTP
(flood limits off), ``--chats`` admins with a /tasks list each. Metrics are switched on and off
(``taskops.metrics.enable``, what ``[monitoring] port`` does) in alternating blocks of
``--block`` operations, so both modes meet the same machine load:

* press path: 🔄 Refresh on a list, timed from the update handed to the fake until the
  press is settled (bench/latency_common.timed_press: the list does not change, so the
  bot answers without an edit), the lists in turn. Enough chats that each is pressed
  under Telegram's per-chat pace (the bot's flood gate keeps to it: with 4 chats pressed
  every ~50 ms the press's p95 was 850 ms of pacing, and its median swung ±10 % between
  runs of the same code);
* event path: ``journal.append`` of a text event to a running task, awaited one at a time
  (each is one committed write), timed per event.

With metrics on, every press counts its Telegram requests and store statements (latency
histogram), every event its ``taskops_events_written`` and statements. Reported: median
and p95 of each mode, the ratio on / off of the medians and of the means, and the median
(and quartiles) of on / off over neighbouring blocks — the load drifts during a run, and
two neighbouring blocks meet about the same load.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import gc
import random
import statistics
import time

from bench.common import (
    DATA_DIR,
    load_average,
    machine_facts,
    percentile,
    print_facts,
    remove_sqlite,
    sqlite_url,
)
from bench.latency_common import button_data, timed_press, watch_calls
from taskops import metrics
from taskops.bot.app import build_application, start_console, stop_console
from taskops.config import DatabaseSettings, Secret, Settings, TelegramSettings, UISettings
from taskops.storage.db import migrate
from taskops.storage.domain import EventKind, TaskDraft
from taskops.storage.seed import seed_demo
from taskops.storage.store import TaskStore
from tests.fakegram import FakeTelegram
from tests.fakegram.flood import FloodLimits

TOKEN = "123456:BENCH-metrics"
FIRST_ADMIN = 5001


def _counted() -> tuple[float, float]:
    """Store statements observed and Bot API requests counted so far."""
    statements = metrics.REGISTRY.get_sample_value("taskops_store_statement_seconds_count")
    requests = sum(s.value for family in metrics.REGISTRY.collect()
                   if family.name == "taskops_telegram_requests"
                   for s in family.samples if s.name.endswith("_total"))
    return statements or 0.0, requests


def summary(name: str, on: list[float], off: list[float], unit: str = "ms") -> list[str]:
    def row(mode: str, xs: list[float]) -> str:
        return (f"  {name:<6} {mode:<4} n={len(xs):<5} median {statistics.median(xs):8.3f} {unit}"
                f"  p95 {percentile(xs, 95):8.3f} {unit}  mean {statistics.fmean(xs):8.3f} {unit}")

    ratio_median = statistics.median(on) / statistics.median(off)
    ratio_mean = statistics.fmean(on) / statistics.fmean(off)
    return [row("off", off), row("on", on),
            f"  {name:<6} on/off: median ×{ratio_median:.3f} ({(ratio_median - 1) * 100:+.1f} %),"
            f" mean ×{ratio_mean:.3f} ({(ratio_mean - 1) * 100:+.1f} %)"]


def paired_ratios(blocks: list[tuple[bool, float]]) -> list[float]:
    """On / off of each two neighbouring blocks of different modes (block medians): the
    machine's load drifts over a run, and neighbours meet nearly the same load."""
    return [(a if on_a else b) / (b if on_a else a)
            for (on_a, a), (on_b, b) in zip(blocks[::2], blocks[1::2], strict=False)
            if on_a != on_b]


async def main(args: argparse.Namespace) -> None:
    print(f"metrics cost: {args.tasks} tasks (seed {args.seed}), {args.presses} presses and "
          f"{args.events} events per mode, blocks of {args.block}, {args.chats} chats")
    admins = tuple(range(FIRST_ADMIN, FIRST_ADMIN + args.chats))
    print_facts(machine_facts())
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / "metrics-cost.db"
    remove_sqlite(path)
    url = sqlite_url(path)
    await migrate(url)
    server = FakeTelegram(token=TOKEN, flood=FloodLimits.off())
    await server.start()
    watch = watch_calls(server)
    settings = Settings(
        telegram=TelegramSettings(token=Secret(TOKEN), admin_ids=frozenset(admins),
                                  base_url=server.bot_base_url),
        database=DatabaseSettings(url=url), ui=UISettings(timezone="UTC"))
    store = await TaskStore.open(settings)
    report = await seed_demo(store, args.tasks, args.seed)
    print(f"  seeded {report.tasks} tasks, {report.events} events in {report.seconds:.1f} s")
    chats = {uid: server.private_chat(server.add_user(uid, f"Admin {uid}")) for uid in admins}
    app = build_application(settings, store)
    await app.initialize()
    await start_console(app)
    assert app.job_queue is not None
    for job in app.job_queue.get_jobs_by_name("refresh-lists"):
        job.schedule_removal()
    lists = []
    for uid in admins:
        chat = chats[uid]
        await server.send_text(uid, chat, "/tasks")
        message = None
        for _ in range(300):
            if (message := server.last_bot_message(chat)) is not None:
                break
            await asyncio.sleep(0.05)
        assert message is not None, "no list"
        lists.append((uid, message))
    task = await store.create_task(TaskDraft(name="metrics bench", prompt="!wait 3600"))
    rng = random.Random(args.seed)
    times: dict[tuple[str, bool], list[float]] = {(p, m): [] for p in ("press", "event")
                                                   for m in (True, False)}

    async def press(i: int) -> float:
        uid, message = lists[i % len(lists)]
        # The list does not change between presses (nothing runs), so the bot answers
        # without an edit Telegram would refuse as "not modified": timed to the answer.
        timing = await timed_press(server, watch, uid, message,
                                   button_data(message, "🔄 Refresh"), changes=False)
        await asyncio.sleep(0.05)
        return timing.edit_ms

    async def event(i: int) -> float:
        start = time.perf_counter()
        await store.journal.append(task.id, EventKind.TEXT,
                                   {"text": f"event {i} {rng.random()}"})
        return (time.perf_counter() - start) * 1000

    per_op: dict[str, tuple[float, float]] = {}
    #: each block's mode and median, in the order run (for the paired ratios)
    blocks: dict[str, list[tuple[bool, float]]] = {"press": [], "event": []}
    load_start = load_average()
    for path_name, op, total in (("press", press, args.presses), ("event", event, args.events)):
        for i in range(2 * args.block):  # warm-up, both modes
            metrics.enable(i % 2 == 0)
            await op(i)
        counted_before = _counted()
        done = {True: 0, False: 0}
        mode = rng.random() < 0.5
        i = 0
        while min(done.values()) < total:
            metrics.enable(mode)
            gc.collect()
            block: list[float] = []
            for _ in range(args.block):
                block.append(await op(i))
                i += 1
            times[(path_name, mode)] += block
            blocks[path_name].append((mode, statistics.median(block)))
            done[mode] += args.block
            mode = not mode
        statements, requests = (a - b for a, b in zip(_counted(), counted_before, strict=True))
        per_op[path_name] = (statements / done[True], requests / done[True])
    metrics.enable(False)
    load_end = load_average()
    print(f"  load average: start {load_start}, end {load_end}")
    for name in ("press", "event"):
        for line in summary(name, times[(name, True)], times[(name, False)]):
            print(line)
        pairs = paired_ratios(blocks[name])
        print(f"  {name:<6} on/off of neighbouring blocks (n={len(pairs)} pairs): median "
              f"×{statistics.median(pairs):.3f} ({(statistics.median(pairs) - 1) * 100:+.1f} %),"
              f" quartiles ×{percentile(pairs, 25):.3f} – ×{percentile(pairs, 75):.3f}")
    for name, (statements, requests) in per_op.items():
        print(f"  {name}: {statements:.1f} store statements and {requests:.1f} Bot API "
              "requests counted per operation (metrics on)")
    # the helpers alone, for scale
    metrics.enable(True)
    n = 100_000
    start = time.perf_counter()
    for _ in range(n):
        metrics.telegram_request("editMessageText", "ok")
        metrics.store_statement(0.001)
    helper_on = (time.perf_counter() - start) / n * 1e6
    metrics.enable(False)
    start = time.perf_counter()
    for _ in range(n):
        metrics.telegram_request("editMessageText", "ok")
        metrics.store_statement(0.001)
    helper_off = (time.perf_counter() - start) / n * 1e6
    print(f"  one request count + one statement observation: {helper_on:.2f} µs on, "
          f"{helper_off:.2f} µs off")
    await stop_console(app)
    await app.shutdown()
    await store.close()
    await server.stop()
    remove_sqlite(path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--presses", type=int, default=300)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--block", type=int, default=20)
    parser.add_argument("--chats", type=int, default=40,
                        help="admins pressing their lists in turn (each under the chat pace)")
    parser.add_argument("--seed", type=int, default=0)
    asyncio.run(main(parser.parse_args()))
