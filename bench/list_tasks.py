"""List queries at a million tasks, on SQLite and PostgreSQL (DESIGN.md: ≤ 50 ms p95).

    python bench/list_tasks.py [--tasks 1000000] [--db sqlite|postgresql|both]
                               [--repeat 30] [--seed 0] [--keep] [--reuse] [--matrix]

For each database: a fresh SQLite file under bench/data/ or a fresh PostgreSQL database
(dropped at the end unless --keep), seeded by ``storage.seed.seed_demo`` (about ten
events a task; the seeding time is printed), then every query below is run through
``TaskStore.list_tasks`` — the page's ids, its rows and the filtered total, with a
page size of 20 — ``--repeat`` times after a warm-up. The table gives p50 and p95 in
milliseconds and the ratio of p50 to a floor query's p50: 20 rows by primary key
(``SELECT * FROM tasks WHERE id IN (...)``) through the same engine. Queries whose p95
misses the budget get their SQL statements timed one by one, with the query plan.
Both databases are seeded with the same data (same seed, same ``now``).

Queries marked * in the table go beyond the issue's list: more filter × sort pairs and
the deep pages that are the worst case of each strategy. --matrix adds a grid of every
single filter × every sort (page 1), timed fewer times, and lists the ones over budget.

--reuse takes a database left by an earlier --keep run when it holds exactly --tasks
tasks (seeding is skipped), and keeps it again. Rendering is not measured here.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import random
import shlex
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, func, select, text

from bench.common import (
    DATA_DIR,
    create_pg_database,
    drop_pg_database,
    human_bytes,
    load_average,
    machine_facts,
    markdown_table,
    measure,
    pg_database_exists,
    pg_facts,
    pg_url,
    print_facts,
    remove_sqlite,
    sqlite_url,
    summarize,
)
from taskops.config import DatabaseSettings, Settings, UISettings
from taskops.storage.db import migrate
from taskops.storage.domain import ListFilters, ProviderChoice, Sort, SortField, TaskStatus, Trigger
from taskops.storage.models import TaskRow
from taskops.storage.seed import seed_demo
from taskops.storage.store import TaskStore

BUDGET_MS = 50.0
PAGE_SIZE = 20


@dataclass(frozen=True)
class Query:
    name: str
    filters: ListFilters = field(default_factory=ListFilters)
    sort: Sort = field(default_factory=Sort)
    page: str = "first"  # first | middle | last | 99% (the page at 99 % of the list)
    #: part of the issue's required set (the others probe more filter × sort pairs)
    required: bool = True


@dataclass
class Result:
    query: Query
    page: int
    rows: int
    total: int
    p50: float
    p95: float

    @property
    def missed(self) -> bool:
        return self.p95 > BUDGET_MS


@dataclass(frozen=True)
class Cell:
    """One filter × sort pair of the --matrix grid (page 1)."""

    filter: str
    sort: str
    p50: float
    worst: float


@dataclass
class DbRun:
    kind: str
    seed_seconds: float | None = None
    seed_rows_seconds: float | None = None
    tasks: int = 0
    events: int = 0
    size: str = ""
    floor: tuple[float, float] = (0.0, 0.0)
    results: list[Result] = field(default_factory=list)
    plans: list[str] = field(default_factory=list)
    matrix: list[Cell] = field(default_factory=list)


def queries(store: TaskStore) -> list[Query]:
    today = store.clock().astimezone(store.tz).date()
    week = ListFilters(date_from=today - timedelta(days=6), date_to=today)
    failed, paused = TaskStatus.FAILED, TaskStatus.PAUSED
    cron = Trigger.CRONJOB
    gpt4o = ProviderChoice("openai", "gpt-4o")
    out = [
        Query("no filter"),
        Query("status=failed", ListFilters(status=failed)),
        Query("status=paused", ListFilters(status=paused)),
        Query("trigger=cronjob", ListFilters(trigger=cron)),
        Query("provider=openai/gpt-4o", ListFilters(provider=gpt4o)),
        Query("provider=Default", ListFilters(provider=ProviderChoice.default())),
        Query("from/to last 7 days", week),
        Query("status=failed trigger=cronjob", ListFilters(status=failed, trigger=cron)),
        Query("provider=openai/gpt-4o + last 7 days", replace(week, provider=gpt4o)),
        Query("status+trigger+provider+7 days",
              replace(week, status=failed, trigger=cron, provider=gpt4o)),
    ]
    for sort_field in SortField:
        for descending in (True, False):
            if (sort_field, descending) != (SortField.CREATED, True):
                out.append(Query(f"sort {sort_field.value} {'▼' if descending else '▲'}",
                                 sort=Sort(sort_field, descending)))
    for sort_field in (SortField.CREATED, SortField.COST, SortField.DURATION):
        for page in ("middle", "last"):
            out.append(Query(f"sort {sort_field.value} ▼", sort=Sort(sort_field), page=page))
    more = [
        Query("status=failed, sort cost ▼", ListFilters(status=failed), Sort(SortField.COST)),
        Query("status=failed", ListFilters(status=failed), page="middle"),
        Query("status=failed", ListFilters(status=failed), page="last"),
        Query("status=failed trigger=cronjob", ListFilters(status=failed, trigger=cron),
              page="middle"),
        Query("status=paused, sort name ▲", ListFilters(status=paused),
              Sort(SortField.NAME, False)),
        Query("status=running, sort duration ▼", ListFilters(status=TaskStatus.RUNNING),
              Sort(SortField.DURATION)),
        Query("provider=local/llama-3.1-70b, sort name ▲",
              ListFilters(provider=ProviderChoice("local", "llama-3.1-70b")),
              Sort(SortField.NAME, False)),
        Query("last 7 days, sort tokens ▼", week, Sort(SortField.TOKENS)),
        Query("trigger=cronjob, sort duration ▲", ListFilters(trigger=cron),
              Sort(SortField.DURATION, False)),
        Query("status+trigger+provider+7 days, sort cost ▼",
              replace(week, status=failed, trigger=cron, provider=gpt4o),
              Sort(SortField.COST)),
        # Never-started tasks come last in the duration order, so "last" is cheap; the
        # finished tasks just before them are the deep end of the duration index.
        Query("sort duration ▼", sort=Sort(SortField.DURATION), page="99%"),
    ]
    return out + [Query(q.name, q.filters, q.sort, q.page, required=False) for q in more]


MATRIX_REPEAT = 5
MATRIX_SORTS = [Sort(f, d) for f in SortField for d in (True, False)]


def sort_label(sort: Sort) -> str:
    return f"{sort.field.value} {'▼' if sort.descending else '▲'}"


async def matrix_filters(store: TaskStore) -> list[tuple[str, ListFilters]]:
    today = store.clock().astimezone(store.tz).date()
    out: list[tuple[str, ListFilters]] = [("none", ListFilters())]
    out += [(f"status={s.value}", ListFilters(status=s)) for s in TaskStatus]
    out += [(f"trigger={t.value}", ListFilters(trigger=t)) for t in Trigger]
    out += [(f"provider={p.key() if p.provider else 'Default'}", ListFilters(provider=p))
            for p in await store.provider_options()]
    out += [(f"last {days} d", ListFilters(date_from=today - timedelta(days=days - 1),
                                           date_to=today)) for days in (1, 7, 30)]
    return out


async def run_matrix(store: TaskStore) -> list[Cell]:
    """Every single filter × every sort, page 1: a warm-up, then up to MATRIX_REPEAT runs
    (two when a run takes over half a second). The grid looks for bad plans, which are
    slow every time, so it reports the median, not the noisier worst run."""
    cells = []
    for name, filters in await matrix_filters(store):
        for sort in MATRIX_SORTS:
            await store.list_tasks(filters, sort, 1, PAGE_SIZE)
            samples: list[float] = []
            for _ in range(MATRIX_REPEAT):
                start = time.perf_counter()
                await store.list_tasks(filters, sort, 1, PAGE_SIZE)
                samples.append((time.perf_counter() - start) * 1000)
                if len(samples) >= 2 and max(samples) > 500:
                    break
            cell = Cell(name, sort_label(sort), sorted(samples)[len(samples) // 2],
                        max(samples))
            cells.append(cell)
            if cell.p50 > BUDGET_MS:
                print(f"  matrix: {name} × {cell.sort}: p50 {cell.p50:.1f} ms, "
                      f"worst {cell.worst:.1f} ms", flush=True)
    return cells


def matrix_report(run: DbRun) -> str:
    sorts = [sort_label(s) for s in MATRIX_SORTS]
    names = list(dict.fromkeys(c.filter for c in run.matrix))
    p50 = {(c.filter, c.sort): c.p50 for c in run.matrix}
    rows = [[name] + [(f"**{p50[name, s]:.0f}**" if p50[name, s] > BUDGET_MS
                       else f"{p50[name, s]:.0f}") for s in sorts] for name in names]
    misses = sum(c.p50 > BUDGET_MS for c in run.matrix)
    return (f"Matrix, {run.kind}: p50 of up to {MATRIX_REPEAT} runs in ms, page 1; "
            f"{misses} of {len(run.matrix)} over {BUDGET_MS:.0f} ms (bold).\n\n"
            + markdown_table(["filter", *sorts], rows, right=range(1, len(sorts) + 1))
            + "\n")


async def page_number(store: TaskStore, query: Query) -> int:
    if query.page == "first":
        return 1
    count = (await store.list_tasks(query.filters, query.sort, 1, PAGE_SIZE)).page_count
    if query.page == "99%":
        return max(1, count * 99 // 100)
    return count if query.page == "last" else (count + 1) // 2


async def floor_query(store: TaskStore, ids: list[int]) -> None:
    async with store.engines.read.connect() as conn:
        rows = (await conn.execute(select(TaskRow).where(TaskRow.id.in_(ids)))).all()
    assert len(rows) == len(ids)


async def explain(store: TaskStore, query: Query, page: int) -> list[str]:
    """Each SQL statement of one list_tasks call, timed alone, with its plan."""
    captured: list[tuple[str, Any]] = []

    def hook(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
             _many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            captured.append((statement, parameters))

    engine = store.engines.read.sync_engine
    event.listen(engine, "before_cursor_execute", hook)
    try:
        await store.list_tasks(query.filters, query.sort, page, PAGE_SIZE)
    finally:
        event.remove(engine, "before_cursor_execute", hook)
    lines = [f"### {query.name} (page {page})"]
    sqlite = store.engines.is_sqlite
    async with store.engines.read.connect() as conn:
        for statement, params in captured:
            samples = []
            for _ in range(5):
                start = time.perf_counter()
                (await conn.exec_driver_sql(statement, params)).all()
                samples.append((time.perf_counter() - start) * 1000)
            samples.sort()
            shown = " ".join(statement.split())
            lines.append(f"- {samples[2]:.1f} ms: {shown[:400]}  params={params!r}"[:700])
            prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
            plan = await conn.exec_driver_sql(prefix + statement, params)
            for row in plan:
                cells: tuple[Any, ...] = tuple(row)
                lines.append("      " + str(cells[-1] if sqlite else cells[0]))
    return lines


async def seed(store: TaskStore, tasks: int, seed_value: int, now: datetime,
               run: DbRun) -> None:
    start = time.perf_counter()
    marks: dict[str, float] = {}

    def progress(done: int) -> None:
        if done % 100_000 == 0 or done == tasks:
            elapsed = time.perf_counter() - start
            print(f"    {done:>9,} tasks  {elapsed:6.1f} s", flush=True)
        if done == tasks:
            marks["rows"] = time.perf_counter() - start

    report = await seed_demo(store, tasks, seed_value, now=now, progress=progress)
    run.seed_seconds = report.seconds
    run.seed_rows_seconds = marks.get("rows")
    print(f"  seeded {report.tasks:,} tasks and {report.events:,} events in "
          f"{report.seconds:.1f} s (rows {run.seed_rows_seconds or 0:.1f} s, then counts "
          f"rebuild + ANALYZE{'' if store.engines.is_sqlite else ' + VACUUM'})", flush=True)


async def bench_database(kind: str, args: argparse.Namespace, now: datetime) -> DbRun:
    run = DbRun(kind)
    keep = args.keep or args.reuse
    path = DATA_DIR / f"list_tasks_{args.tasks}.db"
    pg_name = f"taskops_bench_{args.tasks}"
    if kind == "sqlite":
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        url = sqlite_url(path)
        reuse = args.reuse and path.exists()
        if not reuse:
            remove_sqlite(path)
    else:
        url = pg_url(pg_name)
        reuse = args.reuse and await pg_database_exists(pg_name)
        if not reuse:
            await create_pg_database(pg_name)
    print(f"\n== {kind}: {url}", flush=True)
    await migrate(url)
    settings = Settings(database=DatabaseSettings(url=url), ui=UISettings(page_size=PAGE_SIZE))
    store = await TaskStore.open(settings)
    try:
        existing = (await store.list_tasks(page_size=1)).total
        if reuse and existing == args.tasks:
            print(f"  reusing {existing:,} seeded tasks (seeding skipped)")
        else:
            if existing:
                raise SystemExit(f"{url} already holds {existing} tasks; drop it or omit --reuse")
            await seed(store, args.tasks, args.seed, now, run)
        async with store.engines.read.connect() as conn:
            run.tasks = (await conn.execute(select(func.count()).select_from(TaskRow))
                         ).scalar_one()
            run.events = (await conn.execute(text("SELECT count(*) FROM task_events"))
                          ).scalar_one()
            max_id = (await conn.execute(select(func.max(TaskRow.id)))).scalar_one()
            if kind == "sqlite":
                size = path.stat().st_size
            else:
                size = (await conn.execute(text("SELECT pg_database_size(current_database())"))
                        ).scalar_one()
        run.size = human_bytes(size)
        print(f"  {run.tasks:,} tasks, {run.events:,} events, database {run.size}")

        ids = random.Random(0).sample(range(1, max_id + 1), PAGE_SIZE)
        floor_samples = await measure(lambda: floor_query(store, ids), args.repeat)
        run.floor = summarize(floor_samples)
        print(f"  floor (20 rows by primary key): p50 {run.floor[0]:.2f} ms, "
              f"p95 {run.floor[1]:.2f} ms\n", flush=True)
        for query in queries(store):
            page = await page_number(store, query)
            last = await store.list_tasks(query.filters, query.sort, page, PAGE_SIZE)

            async def call(q: Query = query, p: int = page) -> object:
                return await store.list_tasks(q.filters, q.sort, p, PAGE_SIZE)

            p50, p95 = summarize(await measure(call, args.repeat))
            result = Result(query, page, len(last.tasks), last.total, p50, p95)
            run.results.append(result)
            print(f"  {query.name:<45} {query.page:<6} p50 {p50:8.2f}  p95 {p95:8.2f} ms"
                  f"{'  MISS' if result.missed else ''}", flush=True)
        for result in run.results:
            if result.missed:
                run.plans += await explain(store, result.query, result.page)
        if args.matrix:
            print("  matrix of single filters × sorts ...", flush=True)
            run.matrix = await run_matrix(store)
    finally:
        await store.close()
        if not keep:
            if kind == "sqlite":
                remove_sqlite(path)
            else:
                await drop_pg_database(pg_name)
    return run


def report(run: DbRun) -> str:
    floor = run.floor[0] or 1e-9
    rows = []
    for n, r in enumerate(run.results, 1):
        q = r.query
        rows.append([
            str(n) + ("" if q.required else "*"), q.name,
            f"{q.page} ({r.page:,})", f"{r.total:,}", f"{r.p50:.2f}", f"{r.p95:.2f}",
            f"{r.p50 / floor:.1f}", "**miss**" if r.missed else "ok",
        ])
    table = markdown_table(["#", "query (sort created ▼ unless named)", "page", "total",
                            "p50 ms", "p95 ms", "× floor", "≤ 50 ms"], rows,
                           right=(3, 4, 5, 6))
    head = [f"### {run.kind}", ""]
    if run.seed_seconds is not None:
        head.append(f"Seeding {run.tasks:,} tasks / {run.events:,} events: "
                    f"{run.seed_seconds:.0f} s ({run.seed_rows_seconds or 0:.0f} s writing "
                    f"rows). Database size {run.size}.")
    else:
        head.append(f"{run.tasks:,} tasks / {run.events:,} events (reused). "
                    f"Database size {run.size}.")
    head += ["", f"Floor, 20 rows by primary key: p50 {run.floor[0]:.2f} ms, "
             f"p95 {run.floor[1]:.2f} ms.", ""]
    return "\n".join(head) + table + "\n"


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse a kept database of the same size (implies --keep)")
    parser.add_argument("--matrix", action="store_true",
                        help="also time every single filter × every sort on page 1")
    args = parser.parse_args(argv)
    if args.tasks < 1 or args.repeat < 1:
        parser.error("--tasks and --repeat must be at least 1")

    facts = machine_facts()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    if "postgresql" in kinds:
        facts.update(await pg_facts())
    print("command: python bench/list_tasks.py " + shlex.join(sys.argv[1:] if argv is None
                                                              else argv))
    print_facts(facts)
    now = datetime.now(UTC).replace(microsecond=0)  # the same data on every database
    runs = [await bench_database(kind, args, now) for kind in kinds]
    print("\n" + "\n".join(report(run) for run in runs))
    for run in runs:
        if run.matrix:
            print(matrix_report(run))
    print(f"load average at the end: {load_average()}")
    for run in runs:
        misses = [r for r in run.results if r.missed]
        print(f"{run.kind}: {len(misses)} of {len(run.results)} queries miss the "
              f"{BUDGET_MS:.0f} ms p95 budget")
        if run.plans:
            print("\n".join(run.plans) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
