"""The task list at any combination, on SQLite and PostgreSQL (DESIGN.md: ≤ 50 ms p95,
≤ 150 ms max for query + render, at 1,000,000 tasks).

    python bench/list_tasks.py [--tasks 1000000] [--db sqlite|postgresql|both]
        [--combos 400] [--repeat 3] [--seed S] [--data-seed 0] [--page-size 10]
        [--keep] [--reuse] [--growth 10000,100000,1000000]

Each database — a SQLite file under bench/data/ or a PostgreSQL database — is seeded by
``storage.seed.seed_demo`` (seed time and index sizes printed) unless --reuse finds one of
the right size. A seeded random matrix (bench/list_matrix.py; --seed, printed, random by
default) draws --combos combinations over the whole space; the same combinations run on
every engine, after one untimed pass, --repeat times in a fresh shuffled order. A sample
is ``TaskStore.list_tasks`` plus the bot's list renderer (``bot.list_view.render_list``),
timed apart and together. ◀/▶ combinations read their starting page untimed first.

Reported per engine: p50 / p95 / max of list + render (and of each part), the share of
samples over 50 ms, the ten worst with their combination, and the medians of the worst
combination classes (search kind · sort · page kind). The two engines must return the
same page for every combination: any difference is listed. --growth runs the same seed at
each size and gives the three worst classes' medians per size and the log-log slope
between the last two sizes.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import gc
import itertools
import json
import math
import random
import shlex
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text

from bench.common import (
    DATA_DIR,
    create_pg_database,
    drop_pg_database,
    human_bytes,
    load_average,
    machine_facts,
    markdown_table,
    percentile,
    pg_database_exists,
    pg_facts,
    pg_url,
    print_facts,
    remove_sqlite,
    sqlite_url,
)
from bench.list_matrix import Combo, matrix, prepare, search_words
from taskops.bot.list_view import render_list
from taskops.bot.views import ListPart
from taskops.config import DatabaseSettings, Settings, UISettings
from taskops.storage.db import migrate
from taskops.storage.domain import PageRequest
from taskops.storage.models import TaskRow
from taskops.storage.seed import seed_demo
from taskops.storage.store import TaskStore

BUDGET_P95, BUDGET_MAX = 50.0, 150.0
#: the data's "now": fixed, so every engine and every run sees the same durations
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TZ = "UTC"


@dataclass
class Sample:
    combo: Combo
    list_ms: float
    render_ms: float

    @property
    def total(self) -> float:
        return self.list_ms + self.render_ms


@dataclass
class Run:
    kind: str
    tasks: int
    seed_seconds: float | None = None
    indexes: dict[str, int] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    pages: dict[int, list[int]] = field(default_factory=dict)


async def index_sizes(store: TaskStore) -> dict[str, int]:
    async with store.engines.read.connect() as conn:
        if store.engines.is_sqlite:
            rows = await conn.execute(text(
                "SELECT name, sum(pgsize) FROM dbstat WHERE name IN (SELECT name FROM "
                "sqlite_master WHERE type = 'index' AND tbl_name IN ('tasks', 'task_names')) "
                "OR name LIKE 'task_names_fts%' OR name IN ('tasks', 'task_names') "
                "GROUP BY name"))
        else:
            rows = await conn.execute(text(
                "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND (c.relname IN "
                "('tasks', 'task_names') OR c.oid IN (SELECT indexrelid FROM pg_index WHERE "
                "indrelid IN ('tasks'::regclass, 'task_names'::regclass)))"))
        return {r[0]: int(r[1]) for r in rows}


async def open_store(kind: str, tasks: int, args: argparse.Namespace, run: Run) -> TaskStore:
    path = DATA_DIR / f"list_tasks_{tasks}.db"
    pg_name = f"taskops_bench_list_{tasks}"
    if kind == "sqlite":
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        url, exists = sqlite_url(path), path.exists()
        if not (args.reuse and exists):
            remove_sqlite(path)
    else:
        url, exists = pg_url(pg_name), await pg_database_exists(pg_name)
        if not (args.reuse and exists):
            await create_pg_database(pg_name)
    await migrate(url)
    settings = Settings(database=DatabaseSettings(url=url),
                        ui=UISettings(page_size=args.page_size, timezone=TZ))
    store = await TaskStore.open(settings, clock=lambda: NOW)
    # The rows, not the list's total: a seed killed midway has committed rows but not yet
    # rebuilt the counters the total comes from (seeding on top doubled a store once).
    async with store.engines.read.connect() as conn:
        have = int((await conn.execute(select(func.count()).select_from(TaskRow))).scalar_one())
    if have and have != tasks:
        raise SystemExit(f"{url} holds {have} tasks, not {tasks}: drop it or omit --reuse")
    if not have:
        start = time.perf_counter()
        report = await seed_demo(store, tasks, args.data_seed, now=NOW)
        run.seed_seconds = time.perf_counter() - start
        print(f"  seeded {report.tasks:,} tasks, {report.events:,} events in "
              f"{run.seed_seconds:.0f} s ({report.describe_phases()})", flush=True)
    else:
        print(f"  reusing {have:,} tasks", flush=True)
    run.indexes = await index_sizes(store)
    return store


async def close_store(store: TaskStore, kind: str, tasks: int, keep: bool) -> None:
    await store.close()
    if not keep:
        if kind == "sqlite":
            remove_sqlite(DATA_DIR / f"list_tasks_{tasks}.db")
        else:
            await drop_pg_database(f"taskops_bench_list_{tasks}")


async def one(store: TaskStore, combo: Combo, request: PageRequest, page_size: int,
              tz: ZoneInfo) -> tuple[Sample, list[int]]:
    start = time.perf_counter()
    page = await store.list_tasks(combo.filters, combo.sort, request, page_size)
    listed = time.perf_counter()
    state = ListPart(filters=combo.filters, sort=combo.sort, page=page.page)
    render_list(page, state, "abcdefgh", tz, NOW)
    done = time.perf_counter()
    return (Sample(combo, (listed - start) * 1000, (done - listed) * 1000),
            [t.id for t in page.tasks])


async def bench_engine(kind: str, tasks: int, args: argparse.Namespace,
                       combos_for: dict[int, list[Combo]]) -> Run:
    run = Run(kind, tasks)
    print(f"\n== {kind}, {tasks:,} tasks", flush=True)
    store = await open_store(kind, tasks, args, run)
    try:
        if tasks not in combos_for:
            async with store.engines.read.connect() as conn:
                max_id = (await conn.execute(select(func.max(TaskRow.id)))).scalar_one()
            words = await search_words(store, tasks)
            print(f"  words: common {', '.join(words.common)}; rare {', '.join(words.rare)}")
            combos_for[tasks] = matrix(args.seed, args.combos, await store.provider_options(),
                                       NOW.date(), words, int(max_id))
        combos = combos_for[tasks]
        requests = [await prepare(store, c, args.page_size) for c in combos]
        tz = ZoneInfo(TZ)
        for combo, request in zip(combos, requests, strict=True):  # untimed pass
            _, run.pages[combo.n] = await one(store, combo, request, args.page_size, tz)
        order = list(range(len(combos)))
        shuffle = random.Random(args.seed + 1)
        gc.collect()
        for _ in range(args.repeat):
            shuffle.shuffle(order)
            for i in order:
                sample, _ = await one(store, combos[i], requests[i], args.page_size, tz)
                run.samples.append(sample)
        print(f"  {len(run.samples)} samples, load {load_average()}", flush=True)
    finally:
        await close_store(store, kind, tasks, args.keep or args.reuse)
    return run


def stats(values: list[float]) -> str:
    return (f"{statistics.median(values):.1f} / {percentile(values, 95):.1f} / "
            f"{max(values):.1f}")


def class_medians(run: Run) -> dict[str, float]:
    by: dict[str, list[float]] = defaultdict(list)
    for s in run.samples:
        by[s.combo.klass].append(s.total)
    return {k: statistics.median(v) for k, v in by.items()}


def report(run: Run) -> str:
    totals = [s.total for s in run.samples]
    over = sum(t > BUDGET_P95 for t in totals) / len(totals)
    lines = [f"### {run.kind}, {run.tasks:,} tasks", ""]
    if run.seed_seconds is not None:
        lines.append(f"Seeded in {run.seed_seconds:.0f} s.")
    lines += [
        "",
        markdown_table(["", "p50 / p95 / max ms"], [
            ["list + render", stats(totals)],
            ["list (`TaskStore.list_tasks`)", stats([s.list_ms for s in run.samples])],
            ["render (`render_list`)", stats([s.render_ms for s in run.samples])],
        ]),
        "",
        f"Samples: {len(totals)}; over {BUDGET_P95:.0f} ms: {over:.1%}; over "
        f"{BUDGET_MAX:.0f} ms: {sum(t > BUDGET_MAX for t in totals)}. Goal p95 ≤ "
        f"{BUDGET_P95:.0f} ms: {'met' if percentile(totals, 95) <= BUDGET_P95 else 'MISSED'}"
        f"; max ≤ {BUDGET_MAX:.0f} ms: {'met' if max(totals) <= BUDGET_MAX else 'MISSED'}.",
        "",
    ]
    worst = sorted(run.samples, key=lambda s: -s.total)[:10]
    lines.append(markdown_table(["#", "ms", "combination"],
                                [[str(s.combo.n), f"{s.total:.1f}", s.combo.describe()]
                                 for s in worst], right=(0, 1)))
    medians = sorted(class_medians(run).items(), key=lambda kv: -kv[1])[:5]
    lines += ["", "Worst classes (median ms): "
              + "; ".join(f"{k} {v:.1f}" for k, v in medians), ""]
    sizes = sorted(run.indexes.items(), key=lambda kv: -kv[1])
    indexes = sum(v for k, v in sizes if k.startswith("ix_tasks"))
    lines.append("Sizes: " + ", ".join(f"{k} {human_bytes(v)}" for k, v in sizes)
                 + f"; the ix_tasks_* indexes together {human_bytes(indexes)}")
    return "\n".join(lines) + "\n"


def differences(runs: list[Run]) -> list[str]:
    out = []
    by_size: dict[int, list[Run]] = defaultdict(list)
    for run in runs:
        by_size[run.tasks].append(run)
    for tasks, same in by_size.items():
        for a, b in itertools.pairwise(same):
            for n, ids in a.pages.items():
                if b.pages.get(n) != ids:
                    out.append(f"{tasks:,} tasks, combination {n}: {a.kind} {ids} ≠ "
                               f"{b.kind} {b.pages.get(n)}")
    return out


def growth(runs: list[Run], sizes: list[int]) -> str:
    lines = []
    for kind in dict.fromkeys(r.kind for r in runs):
        mine = {r.tasks: class_medians(r) for r in runs if r.kind == kind}
        top = sorted(mine[sizes[-1]].items(), key=lambda kv: -kv[1])[:3]
        rows = []
        for klass, _ in top:
            values = [mine[n].get(klass, float("nan")) for n in sizes]
            slope = (math.log(values[-1] / values[-2]) / math.log(sizes[-1] / sizes[-2])
                     if len(values) > 1 and values[-2] > 0 else float("nan"))
            rows.append([klass, *(f"{v:.1f}" for v in values), f"{slope:.2f}"])
        lines.append(f"Growth, {kind}: medians (ms) of the three worst classes at "
                     f"{sizes[-1]:,}\n\n" + markdown_table(
                         ["class", *(f"{n:,}" for n in sizes), "slope"], rows,
                         right=range(1, len(sizes) + 2)))
    return "\n\n".join(lines)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--combos", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=None, help="matrix seed (random)")
    parser.add_argument("--data-seed", type=int, default=0, help="seed_demo's seed")
    parser.add_argument("--page-size", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--reuse", action="store_true", help="reuse kept databases")
    parser.add_argument("--growth", default="", help="sizes, e.g. 10000,100000,1000000")
    parser.add_argument("--dump", type=Path, help="write every sample here (JSON lines)")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1_000_000)
    sizes = [int(s) for s in args.growth.split(",")] if args.growth else [args.tasks]
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    facts = machine_facts()
    if "postgresql" in kinds:
        facts.update(await pg_facts())
    shown = sys.argv[1:] if argv is None else argv
    print(f"command: python bench/list_tasks.py {shlex.join(shown)}  (matrix seed {args.seed})")
    print_facts(facts)
    combos_for: dict[int, list[Combo]] = {}
    runs = [await bench_engine(kind, n, args, combos_for) for n in sizes for kind in kinds]
    print()
    for run in runs:
        print(report(run))
    if args.dump:
        args.dump.parent.mkdir(parents=True, exist_ok=True)
        with args.dump.open("w") as out:
            for run in runs:
                for smp in run.samples:
                    out.write(json.dumps({"kind": run.kind, "tasks": run.tasks,
                                          "n": smp.combo.n, "ms": round(smp.total, 2),
                                          "class": smp.combo.klass,
                                          "combo": smp.combo.describe()}) + "\n")
    diffs = differences(runs)
    print(f"Engines agree on every page: {'yes' if not diffs else 'NO'}")
    for line in diffs[:20]:
        print("  " + line)
    if len(sizes) > 1:
        print("\n" + growth(runs, sizes))
    print(f"\nmatrix seed {args.seed}; load average at the end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
