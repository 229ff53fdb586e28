"""Console press latency at a million tasks, as a ratio to the echo floor (budget ≤ 2×).

    python bench/console_latency.py [--tasks 1000000] [--db sqlite|postgresql|both]
                                    [--presses 200] [--reuse PATH_OR_DBNAME ...] [--keep]
                                    [--seed 0] [--lanes 16] [--gap-ms 50] [--warmup 16]
                                    [--profile-presses 30] [--rapid-presses 12]

For each database: a fresh SQLite file under bench/data/ or a fresh PostgreSQL database,
seeded by ``storage.seed.seed_demo`` (dropped at the end unless --keep) — or, with
``--reuse``, an already seeded SQLite file (a path) or PostgreSQL database (a name), for
instance one left by an earlier ``--keep`` run or by ``bench/list_tasks.py --keep``;
reused databases are never dropped. Then, in this one process and event loop, two bots
run against two fake Telegram servers over HTTP on 127.0.0.1:

* the echo floor (``bench.echo_floor.FloorBench``: bare python-telegram-bot, press →
  answer ∥ edit), and
* the real taskops Application (``bot.app.build_application`` + ``start_console``, as
  tests/e2e/harness.py runs it, push jobs included), where ``--lanes`` admins each send
  /tasks in their private chat.

Every press below is followed by one press of the floor's button, so the floor is
measured in the same run, interleaved, under the same conditions (≥ 500 round trips:
one per timed console press). ``--presses`` rounds, each in one chat: 🔄 Refresh; each
filter from its menu (Status → Failed, Trigger → Cronjob, Provider → openai/gpt-4o,
Provider → Default, From → Last 7 days), each as three presses timed on their own — open
the menu, choose (the filter's figure: it runs the query), ✖ Clear filters; the sort menu
(↕) and one of its ten sorts (field × direction, the round's in turn), then the menu again
and Created ▼. Then ``--presses`` Next ▶. The lanes take turns press by press.

A press is timed like the floor (bench/latency_common.py): from the moment the fake is
handed the callback query to the moment it has recorded the bot's editMessageText; the
next press waits until that edit and the answerCallbackQuery are both recorded, then
``--gap-ms``. Ratios: press p50 / floor p50 and press p95 / floor p95.

Set-up that differs from ``taskops run``, and why:

* presses are spread over ``--lanes`` chats and one chat is pressed at most every
  1.25 s: the bot paces each chat's sends and edits (the flood gate, ``bot/flood.py``:
  4 at once, then 0.9/s), so one chat pressed 20 times a second would time that pacing, not the
  press. What pacing does to an impatient user is shown apart (``--rapid-presses``: Next ▶
  in one chat, 250 ms after each edit);
* the fakes run with ``FloodLimits.off()`` (thousands of edits of a few messages);
* the store's clock is frozen at the start (moved on one minute before each Refresh, so
  that Refresh really changes the running tasks' durations) and the 5 s auto-refresh job
  is removed, so that no edit but the press's own lands on a message;
* ``[ui] timezone`` is UTC, as in bench/list_tasks.py, so that a reused database keeps its
  per-day counts; page size 10 (set here: the default is 8).

A final instrumented pass (``--profile-presses`` per kind, not part of the figures) splits
a press into spans — long poll, PTB dispatch, store calls, rendering, the edit's HTTP
request, the fake's own handling — and counts the SQL statements and pool checkouts of
the press's handler.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import gc
import logging
import re
import shlex
import statistics
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import event
from telegram import Update
from telegram.ext import TypeHandler

from bench.common import (
    DATA_DIR,
    create_pg_database,
    drop_pg_database,
    markdown_table,
    pg_database_exists,
    pg_facts,
    pg_url,
    print_facts,
    remove_sqlite,
    sqlite_url,
)
from bench.echo_floor import FloorBench
from bench.latency_common import (
    DEFAULT_GAP_MS,
    ROUND_TRIP_TIMEOUT,
    CallWatch,
    CpuWatch,
    PressTiming,
    Stats,
    button_data,
    latency_facts,
    timed_press,
    watch_calls,
)
from taskops.bot import screens
from taskops.bot.app import build_application, start_console, stop_console
from taskops.bot.app_types import AnyApp
from taskops.bot.format import SORT_LABEL
from taskops.config import DatabaseSettings, Secret, Settings, TelegramSettings, UISettings
from taskops.storage.db import migrate
from taskops.storage.seed import seed_demo
from taskops.storage.store import TaskStore
from tests.fakegram import Call, FakeMessage, FakeTelegram, FloodLimits

BUDGET_RATIO = 2.0
TOKEN = "123456:CONSOLE-latency_token"
FIRST_ADMIN_ID = 1001
#: seconds between two presses in one chat: the bot paces each chat's sends and edits (bot/
#: flood.py, 4 at once then 0.9/s), so one chat pressed faster makes edits wait their turn
LANE_INTERVAL = 1.25
RAPID_GAP = 0.25
PAGE_SIZE = 10
T = TypeVar("T")

#: (row name, menu button prefix, option label) — the filter presses of the issue
FILTERS = (
    ("Status → Failed", "Status:", "🔴 Failed"),
    ("Trigger → Cronjob", "Trigger:", "Cronjob"),
    ("Provider → openai/gpt-4o", "Provider:", "openai/gpt-4o"),
    ("Provider → Default", "Provider:", "Default"),
    ("From → Last 7 days", "From:", "Last 7 days"),
)
NEXT = "Next ▶ (next page)"
SORT_CHOOSE = "↕ menu → a sort"
REFRESH = "🔄 Refresh"
OPEN_MENU = "open Status/Trigger/From menu"
OPEN_PROVIDER = "open Provider menu"
OPEN_SORT = "open Sort menu"
CLEAR = "✖ Clear filters"
BUDGETED = [NEXT, *(f[0] for f in FILTERS), SORT_CHOOSE, REFRESH]
EXTRA = [OPEN_MENU, OPEN_PROVIDER, OPEN_SORT, CLEAR]
#: the sort menu's options (every field both ways), as its buttons read
SORTS = [f"{label} {arrow}" for label in SORT_LABEL.values() for arrow in ("▼", "▲")]
DEFAULT_SORT = "Created ▼"


class BenchClock:
    """The store's clock: frozen, moved on explicitly."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


# --- the console under test -------------------------------------------------------------------


@dataclass
class Lane:
    """One admin's private chat and the /tasks message pressed in it."""

    user_id: int
    message: FakeMessage
    last_press: float = -1e9

    def labels(self) -> list[str]:
        return [label for row in self.message.buttons for label, _ in row]

    def sort_label(self) -> str:
        return next(label for label in self.labels() if label.startswith("↕ "))[2:]


@dataclass(frozen=True)
class Step:
    """A press: the button (by label, or label prefix) and the row it is recorded under."""

    text: str
    prefix: bool = False
    record: str | None = None
    advance_clock: bool = False
    #: False: the press may leave the message as it is (settled by its answer)
    changes: bool = True


@dataclass
class Console:
    server: FakeTelegram
    watch: CallWatch
    app: AnyApp
    store: TaskStore
    clock: BenchClock
    lanes: list[Lane]
    gap: float
    floor: FloorBench | None = None
    samples: dict[str, list[PressTiming]] = field(default_factory=dict)
    by_sort: dict[str, list[float]] = field(default_factory=dict)
    floor_samples: list[PressTiming] = field(default_factory=list)

    async def press(self, lane: Lane, step: Step, *, paced: bool = True,
                    with_floor: bool = True) -> PressTiming:
        """Press a console button; then, with ``with_floor``, the echo floor's button (so
        that the two see the same machine, whatever else runs on it)."""
        if paced:  # never faster than the bot's per-chat pacing admits without waiting
            wait = lane.last_press + LANE_INTERVAL - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
        if step.advance_clock:
            self.clock.advance(60)
        data = button_data(lane.message, step.text, prefix=step.prefix)
        lane.last_press = time.perf_counter()
        timing = await timed_press(self.server, self.watch, lane.user_id, lane.message, data,
                                   changes=step.changes)
        if step.record is not None:
            self.samples.setdefault(step.record, []).append(timing)
            if step.record == SORT_CHOOSE:
                self.by_sort.setdefault(f"↕ → {lane.sort_label()}", []).append(timing.edit_ms)
        await asyncio.sleep(self.gap)
        if with_floor and self.floor is not None:
            floor = await self.floor.press()
            if step.record is not None:
                self.floor_samples.append(floor)
            await asyncio.sleep(self.gap)
        return timing

    async def run(self, plans: list[list[Step]]) -> None:
        """Each lane's steps in order, the lanes taking turns press by press."""
        for k in range(max((len(p) for p in plans), default=0)):
            for lane, plan in zip(self.lanes, plans, strict=True):
                if k < len(plan):
                    await self.press(lane, plan[k])


async def open_console(url: str, clock: BenchClock, gap: float, lanes: int) -> Console:
    server = FakeTelegram(token=TOKEN, flood=FloodLimits.off())
    await server.start()
    watch = watch_calls(server)
    admin_ids = [FIRST_ADMIN_ID + i for i in range(lanes)]
    settings = Settings(
        telegram=TelegramSettings(token=Secret(TOKEN), admin_ids=frozenset(admin_ids),
                                  base_url=server.bot_base_url),
        database=DatabaseSettings(url=url),
        ui=UISettings(timezone="UTC", page_size=PAGE_SIZE))
    chats = []
    for uid in admin_ids:
        chats.append(server.private_chat(server.add_user(uid, f"Admin {uid}")))
    store = await TaskStore.open(settings, clock=clock)
    app = build_application(settings, store)
    await app.initialize()
    await start_console(app)
    assert app.job_queue is not None
    for job in app.job_queue.get_jobs_by_name("refresh-lists"):
        job.schedule_removal()
    console = Console(server, watch, app, store, clock, [], gap)
    for uid, chat in zip(admin_ids, chats, strict=True):
        shown = watch.expect(is_send_to(chat.id))
        await server.send_text(uid, chat, "/tasks")
        await asyncio.wait_for(shown, ROUND_TRIP_TIMEOUT)
        message = server.last_bot_message(chat)
        assert message is not None
        console.lanes.append(Lane(uid, message))
    return console


def is_send_to(chat_id: int) -> Callable[[Call], bool]:
    def predicate(call: Call) -> bool:
        return call.method == "sendMessage" and str(call.params.get("chat_id")) == str(chat_id)

    return predicate


async def close_console(console: Console) -> None:
    await stop_console(console.app)
    await console.app.shutdown()
    await console.store.close()
    await console.server.stop()


def round_steps(index: int, record: bool) -> list[Step]:
    """One round, from and back to Created ▼ on page 1: Refresh; each filter (open its
    menu, choose, ✖ Clear filters); the sort menu and its ``index``-th other sort, then
    the menu and Created ▼ again."""
    def row(name: str) -> str | None:
        return name if record else None

    # Refresh edits when the running tasks' durations moved on; a page without running
    # tasks is left as it is (the bot sends no edit Telegram would refuse).
    steps = [Step("🔄 Refresh", record=row(REFRESH), advance_clock=True, changes=False)]
    for name, menu, option in FILTERS:
        steps += [Step(menu, True, row(OPEN_PROVIDER if menu == "Provider:" else OPEN_MENU)),
                  Step(option, record=row(name)), Step("✖ Clear filters", record=row(CLEAR))]
    others = [sort for sort in SORTS if sort != DEFAULT_SORT]
    steps += [Step("↕", True, row(OPEN_SORT)), Step(others[index % len(others)],
                                                    record=row(SORT_CHOOSE)),
              Step("↕", True, row(OPEN_SORT)), Step(DEFAULT_SORT, record=row(SORT_CHOOSE))]
    return steps


def deal(console: Console, rounds: list[list[Step]]) -> list[list[Step]]:
    """Round ``i`` goes to lane ``i % lanes``."""
    plans: list[list[Step]] = [[] for _ in console.lanes]
    for i, steps in enumerate(rounds):
        plans[i % len(plans)] += steps
    return plans


async def run_presses(console: Console, presses: int, warmup: int) -> None:
    """``warmup`` untimed rounds, ``presses`` timed rounds (every kind of press, spread
    over the lanes), then ``presses`` timed Next ▶ (each lane paging on from page 1)."""
    await console.run(deal(console, [round_steps(i, False) for i in range(warmup)]))
    gc.collect()
    await console.run(deal(console, [round_steps(i, True) for i in range(presses)]))
    for lane in console.lanes:
        if f"↕ {DEFAULT_SORT}" not in lane.labels():
            raise RuntimeError(f"lane {lane.user_id} is not back on Created ▼: {lane.labels()}")
    await console.run(deal(console, [[Step("▶", record=NEXT)] for _ in range(presses)]))


async def rapid_presses(console: Console, count: int, gap: float) -> list[float]:
    """``count`` Next ▶ in one chat, ``gap`` s apart, as an impatient user would press."""
    lane = console.lanes[0]
    samples = []
    for _ in range(count):
        timing = await console.press(lane, Step("▶"), paced=False, with_floor=False)
        samples.append(timing.edit_ms)
        await asyncio.sleep(max(0.0, gap - console.gap))
    return samples


# --- profile: where the time of a press goes ------------------------------------------------


class Spans:
    """Per-press timestamps from wrappers around the store, rendering, PTB and the fake."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self.durations: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        #: the press being profiled: set in the handler's context, so the tasks it starts
        #: (the save beside the edit) count too, background jobs' store calls do not
        self.press = 0

    def mine(self) -> bool:
        return self.press != 0 and _PRESS.get() == self.press

    def reset(self) -> None:
        self.marks = {}
        self.durations = {}
        self.counts = {}
        self.press += 1

    def count(self, name: str) -> None:
        if self.mine():
            self.counts[name] = self.counts.get(name, 0) + 1

    def wrap(self, name: str, func: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        async def timed(*args: Any, **kwargs: Any) -> T:
            start = time.perf_counter()
            try:
                return await func(*args, **kwargs)
            finally:
                end = time.perf_counter()
                if self.mine():
                    self.durations[name] = self.durations.get(name, 0.0) + (end - start)
                    self.marks[f"{name}.end"] = end
        return timed

    def wrap_sync(self, name: str, func: Callable[..., T]) -> Callable[..., T]:
        def timed(*args: Any, **kwargs: Any) -> T:
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                if self.mine():
                    self.durations[name] = self.durations.get(name, 0.0) + (
                        time.perf_counter() - start)
        return timed


_PRESS: ContextVar[int] = ContextVar("profiled_press", default=0)

SPAN_ROWS = (
    "update handed to fake → long poll answered",
    "PTB: response → handler runs",
    "store: load view (console.get)",
    "store: list query (list_tasks / provider_options)",
    "render (render_list / render_menu)",
    "other handler code → fake has the edit request (PTB + httpx + aiohttp)",
    "fake: editMessageText handling",
    "total (edit recorded)",
    "store: save view (console.save; beside the edit, not on its path)",
)
COUNT_ROWS = ("SQL statements (count)", "pool checkouts (count)")


def install_spans(console: Console) -> Spans:
    spans = Spans()
    store = console.store
    # instance attributes shadow the methods; bot.screens looks the renderers up globally
    for target, attr, span in ((store.console, "get", "get"), (store.console, "save", "save"),
                               (store, "list_tasks", "query"),
                               (store, "provider_options", "query")):
        setattr(target, attr, spans.wrap(span, getattr(target, attr)))
    for attr in ("render_list", "render_menu"):
        setattr(screens, attr, spans.wrap_sync("render", getattr(screens, attr)))

    async def mark_dispatch(update: Update, context: Any) -> None:
        if update.callback_query is not None and "dispatch" not in spans.marks:
            spans.marks["dispatch"] = time.perf_counter()
            _PRESS.set(spans.press)

    console.app.add_handler(TypeHandler(Update, mark_dispatch), group=-2)

    def on_statement(*_args: Any) -> None:
        spans.count(COUNT_ROWS[0])

    def on_checkout(*_args: Any) -> None:
        spans.count(COUNT_ROWS[1])

    found = store.engines
    engines = {id(e): e.sync_engine for e in (found.read, found.write, found.quick_read,
                                              found.quick_write)}
    for engine in engines.values():
        event.listen(engine, "before_cursor_execute", on_statement)
        event.listen(engine.pool, "checkout", on_checkout)
    if found.sync_reads is not None:
        # SQLite's list reads run on read threads, outside the press's context: counted
        # while a profiled press is between its dispatch and its edit (nothing else reads
        # then: the auto-refresh is removed)
        def in_flight(name: str) -> Callable[..., None]:
            def count(*_args: Any) -> None:
                if "dispatch" in spans.marks and "edit.handled" not in spans.marks:
                    spans.counts[name] = spans.counts.get(name, 0) + 1
            return count

        for sync in (found.sync_reads.read, found.sync_reads.quick_read):
            event.listen(sync, "before_cursor_execute", in_flight(COUNT_ROWS[0]))
            event.listen(sync.pool, "checkout", in_flight(COUNT_ROWS[1]))
    methods = console.server.api.methods
    name, handler = methods["editmessagetext"]
    methods["editmessagetext"] = (name, _fake_timer(spans, handler))

    def polled(call: Call) -> bool:
        if call.method == "getUpdates" and (call.response or {}).get("result"):
            spans.marks.setdefault("polled", time.perf_counter())
        return False  # never resolves: only marks

    console.watch.expect(polled)
    return spans


def _fake_timer(spans: Spans, handler: Callable[[Any], Awaitable[Any]]
                ) -> Callable[[Any], Awaitable[Any]]:
    async def timed(params: Any) -> Any:
        arrived = time.perf_counter()
        try:
            return await handler(params)
        finally:
            spans.marks["edit.arrived"] = arrived
            spans.marks["edit.handled"] = time.perf_counter()
    return timed


async def profile_presses(console: Console, presses: int) -> dict[str, dict[str, float]]:
    """Median span per press kind (ms), from ``presses`` instrumented presses each."""
    spans = install_spans(console)
    per_kind: dict[str, list[dict[str, float]]] = {}

    async def one(lane: Lane, kind: str, step: Step) -> None:
        spans.reset()
        timing = await console.press(lane, step, with_floor=False)
        start = timing.started
        m, d = spans.marks, spans.durations
        if "edit.arrived" not in m:  # a Refresh of a page that did not change: no edit
            return
        try:
            to_edit = m["edit.arrived"] - m["dispatch"]
            row = {
                SPAN_ROWS[0]: m["polled"] - start,
                SPAN_ROWS[1]: m["dispatch"] - m["polled"],
                SPAN_ROWS[2]: d.get("get", 0.0),
                SPAN_ROWS[3]: d.get("query", 0.0),
                SPAN_ROWS[4]: d.get("render", 0.0),
                SPAN_ROWS[5]: to_edit - sum(d.get(k, 0.0) for k in ("get", "query", "render")),
                SPAN_ROWS[6]: m["edit.handled"] - m["edit.arrived"],
                SPAN_ROWS[7]: timing.edit_ms / 1000,
                SPAN_ROWS[8]: d.get("save", 0.0),
            }
        except KeyError as exc:
            raise RuntimeError(f"span mark {exc} missing for {kind}: {m}") from None
        values = {k: v * 1000 for k, v in row.items()}
        values.update({k: float(spans.counts.get(k, 0)) for k in COUNT_ROWS})
        per_kind.setdefault(kind, []).append(values)

    # the Next ▶ run left each lane on a later page; the first clear brings it to page 1
    cycle = [
        (OPEN_MENU, Step("Status:", True)), ("Status → Failed", Step("🔴 Failed")),
        (CLEAR, Step("✖ Clear filters")),
        (REFRESH, Step("🔄 Refresh", advance_clock=True, changes=False)),
        (NEXT, Step("▶")),
        (OPEN_PROVIDER, Step("Provider:", True)),
        ("Provider → openai/gpt-4o", Step("openai/gpt-4o")), (CLEAR, Step("✖ Clear filters")),
        (OPEN_SORT, Step("↕", True)), (SORT_CHOOSE, Step("Est. cost ▲")),
        (OPEN_SORT, Step("↕", True)), (SORT_CHOOSE, Step(DEFAULT_SORT)),
    ]
    plans: list[list[tuple[str, Step]]] = [[] for _ in console.lanes]
    for i in range(presses):
        plans[i % len(plans)] += cycle
    for k in range(max(len(p) for p in plans)):
        for lane, plan in zip(console.lanes, plans, strict=True):
            if k < len(plan):
                await one(lane, *plan[k])
    return {kind: {span: statistics.median(r[span] for r in rows)
                   for span in SPAN_ROWS + COUNT_ROWS}
            for kind, rows in per_kind.items()}


# --- databases ------------------------------------------------------------------------------


@dataclass
class DbRun:
    kind: str
    url: str
    reused: bool
    tasks: int = 0
    seed_seconds: float | None = None
    #: the echo floor's press → edit and press → answer, pressed after every console press
    floor: Stats | None = None
    floor_answer: Stats | None = None
    stats: dict[str, Stats] = field(default_factory=dict)
    not_modified: dict[str, int] = field(default_factory=dict)
    by_sort: dict[str, Stats] = field(default_factory=dict)
    profile: dict[str, dict[str, float]] = field(default_factory=dict)
    violations: int = 0
    page_reached: int = 0
    rapid: list[float] = field(default_factory=list)
    #: mean cores busy outside this process during the timed presses (PostgreSQL included)
    other_cores: float = 0.0


def reuse_targets(values: list[str]) -> dict[str, str]:
    """``--reuse`` values by kind: a path (or ``*.db``) is SQLite, a bare name PostgreSQL."""
    out: dict[str, str] = {}
    for value in values:
        is_path = value.endswith(".db") or "/" in value or Path(value).exists()
        kind = "sqlite" if is_path else "postgresql"
        if kind in out:
            raise SystemExit(f"--reuse given twice for {kind}: {out[kind]!r} and {value!r}")
        if is_path and not Path(value).exists():
            raise SystemExit(f"--reuse: no SQLite file {value!r}")
        out[kind] = str(Path(value).resolve()) if is_path else value
    return out


async def prepare_database(kind: str, args: argparse.Namespace, reuse: str | None,
                           clock: BenchClock, run: DbRun) -> None:
    if reuse is not None:
        if kind == "postgresql" and not await pg_database_exists(reuse):
            raise SystemExit(f"--reuse: no PostgreSQL database {reuse!r}")
        run.url = sqlite_url(Path(reuse)) if kind == "sqlite" else pg_url(reuse)
    elif kind == "sqlite":
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path = DATA_DIR / f"console_latency_{args.tasks}.db"
        remove_sqlite(path)
        run.url = sqlite_url(path)
    else:
        name = f"taskops_console_{args.tasks}"
        await create_pg_database(name)
        run.url = pg_url(name)
    print(f"\n== {kind}: {run.url}{' (reused)' if reuse else ''}", flush=True)
    await migrate(run.url)
    settings = Settings(database=DatabaseSettings(url=run.url),
                        ui=UISettings(timezone="UTC", page_size=PAGE_SIZE))
    store = await TaskStore.open(settings, clock=clock)
    try:
        existing = (await store.list_tasks(page_size=1)).total
        if reuse is not None:
            if not existing:
                raise SystemExit(f"--reuse: {run.url} holds no tasks")
            run.tasks = existing
            print(f"  reusing {existing:,} tasks (seeding skipped)", flush=True)
            return
        start = time.perf_counter()

        def progress(done: int) -> None:
            if done % 100_000 == 0 or done == args.tasks:
                print(f"    {done:>9,} tasks  {time.perf_counter() - start:6.1f} s", flush=True)

        report = await seed_demo(store, args.tasks, args.seed, progress=progress)
        run.seed_seconds = report.seconds
        run.tasks = report.tasks
        print(f"  seeded {report.tasks:,} tasks and {report.events:,} events in "
              f"{report.seconds:.1f} s", flush=True)
    finally:
        await store.close()


async def drop_database(kind: str, run: DbRun) -> None:
    if kind == "sqlite":
        remove_sqlite(Path(run.url.split(":///", 1)[1]))
    else:
        await drop_pg_database(run.url.rsplit("/", 1)[1])


async def bench_database(kind: str, args: argparse.Namespace, reuse: str | None) -> DbRun:
    clock = BenchClock(datetime.now(UTC).replace(microsecond=0))
    run = DbRun(kind, "", reuse is not None)
    await prepare_database(kind, args, reuse, clock, run)
    try:
        async with FloorBench() as floor:
            console = await open_console(run.url, clock, args.gap_ms / 1000, args.lanes)
            console.floor = floor
            try:
                print(f"  console: {args.presses} presses of each kind over {args.lanes} "
                      "chats, each followed by an echo-floor press ...", flush=True)
                cpu = CpuWatch()
                await run_presses(console, args.presses, args.warmup)
                run.other_cores = cpu.other_cores()
                run.page_reached = max(_page_of(lane.message) for lane in console.lanes)
                for name, timings in console.samples.items():
                    run.stats[name] = Stats.of([t.edit_ms for t in timings])
                    run.not_modified[name] = sum(t.edit_status != 200 for t in timings)
                run.floor = Stats.of([t.edit_ms for t in console.floor_samples])
                run.floor_answer = Stats.of([t.answer_ms for t in console.floor_samples])
                run.by_sort = {k: Stats.of(v) for k, v in console.by_sort.items()}
                run.violations = sum(1 for v in console.server.violations
                                     if "message is not modified" not in v.description)
                run.violations += floor.violations
                print(f"  floor press → edit: p50 {run.floor.p50:.2f} ms, "
                      f"p95 {run.floor.p95:.2f} ms", flush=True)
                if args.profile_presses:
                    print(f"  profile: {args.profile_presses} instrumented presses per "
                          "kind ...", flush=True)
                    run.profile = await profile_presses(console, args.profile_presses)
                if args.rapid_presses:
                    run.rapid = await rapid_presses(console, args.rapid_presses, RAPID_GAP)
            finally:
                await close_console(console)
    finally:
        if reuse is None and not args.keep:
            await drop_database(kind, run)
    return run


def _page_of(message: FakeMessage) -> int:
    found = re.search(r"Page ([\d,]+) of", message.text or "")
    return int(found.group(1).replace(",", "")) if found else 0


# --- report ---------------------------------------------------------------------------------


def report(run: DbRun, presses: int) -> str:
    floor = run.floor
    assert floor is not None
    assert run.floor_answer is not None
    lines = [f"### {run.kind}", ""]
    if run.seed_seconds is not None:
        lines.append(f"{run.tasks:,} tasks, seeded in {run.seed_seconds:.0f} s.")
    else:
        lines.append(f"{run.tasks:,} tasks (reused database).")
    lines += ["", f"Echo floor, pressed after every timed console press ({floor.n} round "
              f"trips): press → editMessageText p50 {floor.p50:.2f} ms, p95 {floor.p95:.2f} "
              f"ms, mean {floor.mean:.2f} ms (press → answerCallbackQuery p50 "
              f"{run.floor_answer.p50:.2f} ms, p95 {run.floor_answer.p95:.2f} ms).", ""]
    rows = []
    for name in BUDGETED + EXTRA:
        stats = run.stats.get(name)
        if stats is None:
            continue
        r50, r95 = stats.p50 / floor.p50, stats.p95 / floor.p95
        ok = "ok" if max(r50, r95) <= BUDGET_RATIO else "**miss**"
        rows.append([name + ("" if name in BUDGETED else " *"), str(stats.n),
                     f"{stats.p50:.2f}", f"{stats.p95:.2f}", f"{stats.mean:.2f}",
                     f"{r50:.2f}", f"{r95:.2f}", ok])
    lines.append(markdown_table(["press", "n", "p50 ms", "p95 ms", "mean ms", "× floor p50",
                                 "× floor p95", "≤ 2×"], rows, right=(1, 2, 3, 4, 5, 6)))
    lines += ["", "\\* not among the issue's presses; shown because a filter takes them.", ""]
    if run.by_sort:
        sort_rows = [[label, str(s.n), f"{s.p50:.2f}", f"{s.p95:.2f}", f"{s.p50 / floor.p50:.2f}",
                      f"{s.p95 / floor.p95:.2f}"] for label, s in run.by_sort.items()]
        lines += ["Sort presses by the sort they lead to:", "",
                  markdown_table(["press → sort", "n", "p50 ms", "p95 ms", "× floor p50",
                                  "× floor p95"], sort_rows, right=(1, 2, 3, 4, 5)), ""]
    not_modified = {k: v for k, v in run.not_modified.items() if v}
    pg_note = " — the PostgreSQL server included" if run.kind == "postgresql" else ""
    lines.append(f"Next ▶ paged each chat from page 1 up to page {run.page_reached:,}. Edits "
                 f"answered \"message is not modified\": {not_modified or 'none'}. Other "
                 f"non-2xx answers of the fakes: {run.violations}. Cores busy outside this "
                 f"process during the presses: {run.other_cores:.2f}{pg_note}.")
    if run.rapid:
        shown = ", ".join(f"{ms:.0f}" for ms in run.rapid)
        lines += ["", f"{len(run.rapid)} Next ▶ presses in one chat, each "
                  f"{RAPID_GAP * 1000:.0f} ms after the previous edit (not paced per chat): "
                  f"press → edit ms {shown}."]
    if run.profile:
        kinds = list(run.profile)
        span_rows = [[span, *(_cell(run.profile[k][span], span) for k in kinds)]
                     for span in SPAN_ROWS + COUNT_ROWS]
        lines += ["", f"Where a press's time goes (median over {presses} instrumented "
                  "presses of each kind, ms; not the timed run):", "",
                  markdown_table(["span", *kinds], span_rows,
                                 right=tuple(range(1, len(kinds) + 1)))]
    return "\n".join(lines) + "\n"


def _cell(value: float, span: str) -> str:
    return f"{value:.0f}" if span in COUNT_ROWS else f"{value:.2f}"


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--presses", type=int, default=200, help="timed presses of each kind")
    parser.add_argument("--reuse", action="append", default=[], metavar="PATH_OR_DBNAME",
                        help="an already seeded SQLite file (path) or PostgreSQL database "
                             "(name); once per kind")
    parser.add_argument("--keep", action="store_true", help="keep seeded databases")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gap-ms", type=float, default=DEFAULT_GAP_MS)
    parser.add_argument("--lanes", type=int, default=16,
                        help="admin chats the presses are spread over (default 16)")
    parser.add_argument("--warmup", type=int, default=16,
                        help="untimed rounds first (default 16: one per chat)")
    parser.add_argument("--rapid-presses", type=int, default=12,
                        help="Next ▶ presses in one chat 250 ms apart at the end (0: none)")
    parser.add_argument("--profile-presses", type=int, default=30,
                        help="instrumented presses per kind afterwards (0: none)")
    args = parser.parse_args(argv)
    if min(args.tasks, args.presses, args.lanes) < 1:
        parser.error("--tasks, --presses and --lanes must be at least 1")
    logging.basicConfig(level=logging.WARNING)
    targets = reuse_targets(args.reuse)
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    facts = latency_facts()
    if "postgresql" in kinds:
        facts.update(await pg_facts())
    print("command: python bench/console_latency.py " + shlex.join(
        sys.argv[1:] if argv is None else argv))
    print_facts(facts)
    runs = [await bench_database(kind, args, targets.get(kind)) for kind in kinds]
    print()
    print("\n".join(report(run, args.profile_presses) for run in runs))
    for run in runs:
        floor = run.floor
        assert floor is not None
        misses = [n for n in BUDGETED if n in run.stats and max(
            run.stats[n].p50 / floor.p50, run.stats[n].p95 / floor.p95) > BUDGET_RATIO]
        print(f"{run.kind}: {len(misses)} of {len(BUDGETED)} press kinds miss the "
              f"{BUDGET_RATIO:g}× budget{': ' + ', '.join(misses) if misses else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
