"""The list matrix through the bot: every filter × search × sort × page as a press on a
real console message, against the bare python-telegram-bot floor, interleaved.

    python bench/list_bot.py [--tasks 1000000] [--db sqlite|postgresql|both]
        [--combos 400] [--repeat 3] [--seed S] [--lanes 24] [--gap-ms 50]
        [--unfiltered 300] [--aiosqlite-reads]

The databases are bench/list_tasks.py's (``bench/data/list_tasks_<N>.db`` and
``taskops_bench_list_<N>``): seeded by it if missing (run it with --keep first to time
the seed), never dropped here. The matrix is bench/list_matrix.py's: the same --seed
draws the same combinations as ``bench/list_tasks.py --seed`` on the same store.

For each engine, in this one process and event loop, the real taskops Application
(``bot.app.build_application`` + ``start_console``, as bench/console_latency.py runs it:
clock frozen at the data's "now", auto-refresh removed, fakes without flood limits) and
the bare echo bot (``bench.echo_floor.FloorBench``) each poll a fake Telegram server
over HTTP. A sample is one combination:

1. untimed: ``/tasks <its filters, words, sort> page:P`` sends a console message showing
   the page the press starts from (P = 2 for "first", the page before/after for ▶/◀,
   else 1);
2. timed: the press — "first" PAGE 1 (⏮), "last" PAGE <page count> (⏭), "middle",
   "random" and "deep" PAGE N (a typed ``page:N`` reads the same), "next" Next ▶ and
   "prev" ◀ Prev (keyset, from the rows shown); from the fake being handed the press to
   the fake recording the edited message (bench/latency_common.py), or, for a press of
   the page already shown (a list of one page), its answer: the bot does not send an
   edit Telegram would refuse as "not modified";
3. timed: one press of the floor's button.

Each combination runs --repeat times, in a fresh shuffled order per round, spread over
--lanes admin chats (one chat is pressed at most every 2.5 s: the bot paces each chat's
sends, bot/flood.py). Then --unfiltered Next ▶ presses on the unfiltered list, each
followed by a floor press. Reported: press p50/p95/max over the matrix, the floor's
p50/p95, the ratios, the worst presses with their combination, and the same for the
unfiltered Next ▶.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import gc
import random
import shlex
import statistics
import time
from dataclasses import dataclass, field

from sqlalchemy import func, select

from bench.common import (
    DATA_DIR,
    load_average,
    markdown_table,
    pg_database_exists,
    pg_facts,
    pg_url,
    print_facts,
    sqlite_url,
)
from bench.console_latency import BenchClock, Console, Lane, close_console, open_console
from bench.echo_floor import FloorBench
from bench.latency_common import (
    NO_EDIT,
    ROUND_TRIP_TIMEOUT,
    CpuWatch,
    PressTiming,
    button_data,
    latency_facts,
    percentile,
    timed_press,
)
from bench.list_matrix import Combo, matrix, search_words, sort_label
from bench.list_tasks import NOW, open_store
from bench.list_tasks import Run as ListRun
from taskops.bot.callbacks import Action, Callback
from taskops.bot.filters_text import to_text
from taskops.bot.views import ListPart
from taskops.storage.models import TaskRow

BUDGET_P95, BUDGET_MAX = 50.0, 150.0
RATIO_P50, RATIO_P95 = 2.0, 3.0
LANE_INTERVAL = 2.5


@dataclass
class Sample:
    combo: Combo
    press: PressTiming
    floor: PressTiming


@dataclass
class EngineRun:
    kind: str
    tasks: int
    samples: list[Sample] = field(default_factory=list)
    unfiltered: list[tuple[PressTiming, PressTiming]] = field(default_factory=list)
    other_cores: float = 0.0
    load_start: str = ""
    load_end: str = ""
    not_modified: int = 0
    #: presses of the page shown (the bot answered without an edit)
    unchanged: int = 0


def view_key(lane: Lane) -> str:
    data = next(d for row in lane.message.buttons for _, d in row if d)
    return Callback.parse(data).view


async def show(console: Console, lane: Lane, text: str) -> None:
    """Send ``text`` as the lane's admin and make the bot's answer the lane's message."""
    server = console.server
    chat = lane.message.chat
    before = len([m for m in server.messages(chat) if m.from_bot])
    await server.send_text(lane.user_id, chat, text)
    deadline = time.perf_counter() + ROUND_TRIP_TIMEOUT
    while len([m for m in server.messages(chat) if m.from_bot]) <= before:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"no answer to {text!r}\n{server.dump()}")
        await asyncio.sleep(0.002)
    message = server.last_bot_message(chat)
    assert message is not None
    lane.message = message


def plan(combo: Combo, count: int) -> tuple[int, str | int]:
    """The page the message starts on, and the press: a button label or a page number."""
    if combo.page == "first":
        return (2, 1) if count > 1 else (1, 1)
    if combo.page == "last":
        return 1, count
    if combo.page == "middle":
        return 1, (count + 1) // 2
    if combo.page == "random":
        return 1, 1 + min(count - 1, int(combo.at * count))
    if combo.page == "deep":
        return 1, max(1, int(count * (0.25 + combo.at / 2)))
    if combo.page == "next":
        start = 1 + int(combo.at * max(1, count - 1))
        return (start, "▶") if start < count else (start, start)
    start = min(count, 2 + int(combo.at * max(1, count - 1)))
    return (start, "◀") if start > 1 else (start, start)


async def one(console: Console, floor: FloorBench, lane: Lane, combo: Combo,
              count: int) -> Sample:
    start_page, target = plan(combo, count)
    wait = lane.last_press + LANE_INTERVAL - time.perf_counter()
    if wait > 0:
        await asyncio.sleep(wait)
    lane.last_press = time.perf_counter()
    args = to_text(ListPart(filters=combo.filters, sort=combo.sort, page=start_page))
    await show(console, lane, f"/tasks {args}".rstrip())
    await asyncio.sleep(console.gap)
    if isinstance(target, str):
        data = button_data(lane.message, target)
    else:
        data = Callback(Action.PAGE, view_key(lane), str(target)).encode()
    timing = await timed_press(console.server, console.watch, lane.user_id, lane.message, data,
                               changes=target != start_page)
    await asyncio.sleep(console.gap)
    floor_timing = await floor.press()
    await asyncio.sleep(console.gap)
    return Sample(combo, timing, floor_timing)


async def unfiltered(console: Console, floor: FloorBench, presses: int
                     ) -> list[tuple[PressTiming, PressTiming]]:
    out = []
    for lane in console.lanes:
        await show(console, lane, "/tasks")
    for i in range(presses):
        lane = console.lanes[i % len(console.lanes)]
        wait = lane.last_press + LANE_INTERVAL / 2 - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        lane.last_press = time.perf_counter()
        data = button_data(lane.message, "▶")
        timing = await timed_press(console.server, console.watch, lane.user_id, lane.message,
                                   data)
        await asyncio.sleep(console.gap)
        out.append((timing, await floor.press()))
        await asyncio.sleep(console.gap)
    return out


def url_of(kind: str, tasks: int) -> str:
    if kind == "sqlite":
        return sqlite_url(DATA_DIR / f"list_tasks_{tasks}.db")
    return pg_url(f"taskops_bench_list_{tasks}")


async def ensure_seeded(kind: str, args: argparse.Namespace) -> None:
    """bench/list_tasks.py's database of this size, seeded by it when missing."""
    exists = ((DATA_DIR / f"list_tasks_{args.tasks}.db").exists() if kind == "sqlite"
              else await pg_database_exists(f"taskops_bench_list_{args.tasks}"))
    if not exists:
        print(f"  seeding {args.tasks:,} tasks for {kind} (bench/list_tasks.py's database)")
    opened = argparse.Namespace(reuse=True, page_size=10, data_seed=args.data_seed)
    store = await open_store(kind, args.tasks, opened, ListRun(kind, args.tasks))
    await store.close()


async def bench_engine(kind: str, args: argparse.Namespace) -> EngineRun:
    print(f"\n== {kind}, {args.tasks:,} tasks", flush=True)
    await ensure_seeded(kind, args)
    run = EngineRun(kind, args.tasks, load_start=load_average())
    console = await open_console(url_of(kind, args.tasks), BenchClock(NOW), args.gap_ms / 1000,
                                 args.lanes)
    if args.aiosqlite_reads:  # the design before storage.db.Database.run_read, to compare
        object.__setattr__(console.store.db.engines, "sync_reads", None)
    try:
        async with FloorBench() as floor:
            store = console.store
            async with store.engines.read.connect() as conn:
                max_id = int((await conn.execute(select(func.max(TaskRow.id)))).scalar_one())
            words = await search_words(store, args.tasks)
            combos = matrix(args.seed, args.combos, await store.provider_options(),
                            NOW.date(), words, max_id)
            counts = [(await store.list_tasks(c.filters, c.sort, 1)).page_count
                      for c in combos]
            # untimed: one pass warms the caches as a first use of each combination would
            for i in range(min(len(combos), 2 * len(console.lanes))):
                await one(console, floor, console.lanes[i % len(console.lanes)], combos[i],
                          counts[i])
            order = list(range(len(combos)))
            shuffle = random.Random(args.seed + 1)
            gc.collect()
            cpu = CpuWatch()
            k = 0
            for _ in range(args.repeat):
                shuffle.shuffle(order)
                for i in order:
                    lane = console.lanes[k % len(console.lanes)]
                    k += 1
                    run.samples.append(await one(console, floor, lane, combos[i], counts[i]))
            run.unfiltered = await unfiltered(console, floor, args.unfiltered)
            run.other_cores = cpu.other_cores()
            run.not_modified = sum(s.press.edit_status not in (200, NO_EDIT)
                                   for s in run.samples)
            run.unchanged = sum(s.press.edit_status == NO_EDIT for s in run.samples)
    finally:
        await close_console(console)
    run.load_end = load_average()
    print(f"  {len(run.samples)} matrix presses, {len(run.unfiltered)} unfiltered, load "
          f"{run.load_start} → {run.load_end}", flush=True)
    return run


def triple(values: list[float]) -> str:
    return (f"{statistics.median(values):.1f} / {percentile(values, 95):.1f} / "
            f"{max(values):.1f}")


def ratios(press: list[float], floor: list[float]) -> str:
    r50 = statistics.median(press) / statistics.median(floor)
    r95 = percentile(press, 95) / percentile(floor, 95)
    ok = "met" if r50 <= RATIO_P50 and r95 <= RATIO_P95 else "MISSED"
    return f"{r50:.2f}× p50 · {r95:.2f}× p95 ({ok})"


def report(run: EngineRun) -> str:
    press = [s.press.edit_ms for s in run.samples]
    floor = [s.floor.edit_ms for s in run.samples]
    u_press = [p.edit_ms for p, _ in run.unfiltered]
    u_floor = [f.edit_ms for _, f in run.unfiltered]
    rows = [["matrix: press → edited message", triple(press)],
            ["matrix: floor press → edit", triple(floor)],
            ["matrix: ratio", ratios(press, floor)]]
    if run.unfiltered:
        rows += [["unfiltered Next ▶: press → edited message", triple(u_press)],
                 ["unfiltered Next ▶: floor", triple(u_floor)],
                 ["unfiltered Next ▶: ratio", ratios(u_press, u_floor)]]
    over = sum(p > BUDGET_P95 for p in press)
    lines = [f"### through the bot: {run.kind}, {run.tasks:,} tasks", "",
             markdown_table(["", "p50 / p95 / max ms"], rows), "",
             f"Matrix presses: {len(press)}; over {BUDGET_P95:.0f} ms: {over / len(press):.1%}; "
             f"over {BUDGET_MAX:.0f} ms: {sum(p > BUDGET_MAX for p in press)}; presses of the page "
             f"shown, settled by the answer (no edit): {run.unchanged}; edits answered "
             f"'not modified': {run.not_modified}. Load {run.load_start} → {run.load_end}; "
             f"other processes kept {run.other_cores:.2f} cores busy on average.", ""]
    worst = sorted(run.samples, key=lambda s: -s.press.edit_ms)[:10]
    lines.append(markdown_table(
        ["#", "press ms", "floor ms", "combination"],
        [[str(s.combo.n), f"{s.press.edit_ms:.1f}", f"{s.floor.edit_ms:.1f}",
          s.combo.describe()] for s in worst], right=(0, 1, 2)))
    by_sort: dict[str, list[float]] = {}
    for s in run.samples:
        by_sort.setdefault(sort_label(s.combo.sort), []).append(s.press.edit_ms)
    lines += ["", "By sort (p50 / p95 ms): " + "; ".join(
        f"{k} {statistics.median(v):.0f} / {percentile(v, 95):.0f}"
        for k, v in sorted(by_sort.items())), ""]
    return "\n".join(lines)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--combos", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None, help="matrix seed (random)")
    parser.add_argument("--data-seed", type=int, default=0, help="seed_demo's seed")
    parser.add_argument("--lanes", type=int, default=24)
    parser.add_argument("--gap-ms", type=float, default=50.0)
    parser.add_argument("--unfiltered", type=int, default=300)
    parser.add_argument("--aiosqlite-reads", action="store_true",
                        help="SQLite: read list pages through aiosqlite, statement by statement "
                             "(the design before the read threads), for comparison")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1_000_000)
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    facts = latency_facts()
    if "postgresql" in kinds:
        facts.update(await pg_facts())
    shown = sys.argv[1:] if argv is None else argv
    print(f"command: python bench/list_bot.py {shlex.join(shown)}  (matrix seed {args.seed})")
    print_facts(facts)
    runs = [await bench_engine(kind, args) for kind in kinds]
    print()
    for run in runs:
        print(report(run))
    print(f"matrix seed {args.seed}; load average at the end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
