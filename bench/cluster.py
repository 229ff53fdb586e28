"""The cluster under chaos: two ``taskops run`` and three ``taskops worker`` on PostgreSQL,
one of them killed with -9 and restarted every ``--kill-every`` seconds.

    python bench/cluster.py [--tasks 2000] [--steps 3] [--kill-every 20] [--seed N]
                            [--freeze 0.0] [--scale 1 2 3] [--scale-tasks 300] [--no-chaos]
                            [--trace-kills]

Chaos phase (a fresh PostgreSQL database, the fake Telegram in this process):

* ``run1``, ``run2`` (``taskops run --name``) and ``w1``..``w3`` (``taskops worker
  --name``), ``[runtime] lease_seconds`` = 10, concurrency 8 each, polling 1 s;
* ``--tasks`` scripted tasks, each ``--steps`` × (tokens, a text, a tool call that appends
  a line to a file — not safe to repeat — and a short wait), every third step a
  safe-to-repeat tool too (tests/runtime/crash_harness.py: the same checks as the resume
  bench);
* two subscriptions to failed / paused / completed: the admin's private chat and a group;
* every ``--kill-every`` seconds a random process gets SIGKILL and is started again at
  once; meanwhile every few seconds a task in flight is killed from this process
  (``store.kill_task``, like a press in the bot) to time kill → run stopped;
* with ``--freeze P``, each of those steps instead freezes a random worker (``w1``..``w3``)
  with probability P: SIGSTOP for a lease and 3 s, then SIGCONT — a starved process, alive
  but past its lease, whose tasks another worker takes up meanwhile; when it runs again,
  its runs' late writes must be refused (the claim fence), or the endings come out
  inconsistent.

Reported: tasks lost (not ended at the end), side effects executed twice, tasks stuck
running without a live owner (sampled every 2 s: running, started, and no claim or a lease
expired more than one lease ago), notifications lost / repeated per chat (each task ends
once, so each chat must be told about each task once: single notifications by task id,
digests by the total in their final text), fail-over time (leader killed → the next
"console: leading" log line of another process), kill → run stopped (the owning worker's
log line "task#N stopped (killed)"; kills whose owner was killed -9 before it stopped the
run, or whose run was ending on its own, are counted apart), Telegram rule violations
(the fake's non-2xx answers, none injected here). ``--trace-kills`` times each kill's
phases (bench/kill_trace.py).

Scaling phase: for each ``--scale`` N, a fresh database, ``--scale-tasks`` busy tasks
(10 × a tool call and a text each, no waits), N ``taskops worker`` processes
(concurrency 50): events written per second from the first task's start to the last
task's end (timestamps from the store).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import os
import random
import re
import shlex
import signal
import socket
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from bench.common import (
    ROOT,
    create_pg_database,
    drop_pg_database,
    load_average,
    machine_facts,
    markdown_table,
    pg_facts,
    pg_url,
    print_facts,
    summarize,
)
from bench.kill_trace import Tracer, install_site
from bench.runtime import busy_prompt
from taskops.bot.push.subscription import NotifySettings
from taskops.config import load_settings
from taskops.storage.db import migrate
from taskops.storage.domain import InvalidTransition, TaskDraft, TaskStatus
from taskops.storage.store import TaskStore
from tests.fakegram import FakeTelegram
from tests.runtime.crash_harness import Findings, Script, check, install_plugin, script

TOKEN = "424242:CLUSTER"
ADMIN = 7001
GROUP = -1007001
LEASE = 10.0
#: what both chats subscribe to (completed is opt-in since the push track's defaults)
WANTED = frozenset({TaskStatus.FAILED, TaskStatus.PAUSED, TaskStatus.COMPLETED})
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
SINGLE = re.compile(r"Task (?:completed|failed[^·]*|paused[^·]*) · #(\d+)")
DIGEST = re.compile(r"([\d,]+) tasks? (?:completed|failed|paused with a question|"
                    r"changed status|started running) in the last")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_time(line: str) -> float | None:
    m = LOG_TIME.match(line)
    if not m:
        return None
    # The processes log in local time, as this one reads it.
    local = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")  # noqa: DTZ007
    return local.timestamp()


@dataclass
class Proc:
    name: str
    command: str
    config: Path
    env: dict[str, str]
    logs: Path
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0

    @property
    def log(self) -> Path:
        return self.logs / f"{self.name}.log"

    async def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "taskops.cli", self.command, "--config", str(self.config),
                "--name", self.name, cwd=self.logs, env=self.env,
                stdout=asyncio.subprocess.DEVNULL, stderr=out)

    async def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 60)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def write_config(workdir: Path, url: str, base_url: str, concurrency: int) -> Path:
    config = workdir / "cluster.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\n'
        f'[telegram]\ntoken = "{TOKEN}"\nadmin_ids = [{ADMIN}]\nbase_url = "{base_url}"\n'
        f"[runtime]\nconcurrency = {concurrency}\npoll_interval_seconds = 1.0\n"
        f"lease_seconds = {LEASE}\n", encoding="utf-8")
    return config


def environment(plugin: Path, sidefx: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKOPS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(plugin)])
    env["SIDEFX_FILE"] = str(sidefx)
    return env


@dataclass
class Chaos:
    kills: list[tuple[float, str, bool]] = field(default_factory=list)
    #: workers frozen past their lease and let run again (--freeze)
    freezes: int = 0
    #: leader kills: whether a standby was connected at that moment
    standby_up: dict[float, bool] = field(default_factory=dict)
    task_kills: dict[int, float] = field(default_factory=dict)
    #: the process that held each killed task when it was killed
    kill_owner: dict[int, str] = field(default_factory=dict)
    stuck_max: int = 0
    stuck_samples: int = 0


async def leader_member(store: TaskStore) -> str | None:
    for m in await store.cluster.members():
        if m.role == "leader":
            return m.member.split(":", 1)[0]
    return None


async def stuck_now(store: TaskStore) -> int:
    now = store.clock()
    alive = {m.member for m in await store.cluster.members() if m.role == "worker"}
    n = 0
    for claim in await store.work.claims():
        if claim.worker_id in alive:
            continue
        if claim.lease_until is not None and (now - claim.lease_until).total_seconds() > LEASE:
            n += 1
    return n


async def freeze(proc: asyncio.subprocess.Process, seconds: float) -> None:
    """SIGSTOP, then SIGCONT after ``seconds`` (unless the process died meanwhile)."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGSTOP)
        await asyncio.sleep(seconds)
        proc.send_signal(signal.SIGCONT)


async def chaos_loop(store: TaskStore, procs: list[Proc], rng: random.Random, every: float,
                     done: asyncio.Event, out: Chaos, freeze_share: float = 0.0) -> None:
    thawing: set[asyncio.Task[None]] = set()
    while not done.is_set():
        try:
            await asyncio.wait_for(done.wait(), every)
            break
        except TimeoutError:
            pass
        workers = [p for p in procs if p.command == "worker" and p.proc is not None]
        if workers and rng.random() < freeze_share:
            frozen = rng.choice(workers)
            assert frozen.proc is not None
            job = asyncio.create_task(freeze(frozen.proc, LEASE + 3))
            thawing.add(job)
            job.add_done_callback(thawing.discard)
            out.freezes += 1
            print(f"  {time.strftime('%H:%M:%S')} freeze {frozen.name} for {LEASE + 3:g}s",
                  flush=True)
            continue
        victim = rng.choice(procs)
        leading = await leader_member(store) == victim.name
        standby = any(m.role == "standby" for m in await store.cluster.members())
        at = time.time()
        if leading:
            out.standby_up[at] = standby
        await victim.kill9()
        out.kills.append((at, victim.name, leading))
        print(f"  {time.strftime('%H:%M:%S')} kill -9 {victim.name}"
              f"{' (leader)' if leading else ''}", flush=True)
        await victim.start()
    await asyncio.gather(*thawing)


async def kill_sampler(store: TaskStore, ids: list[int], rng: random.Random,
                       done: asyncio.Event, out: Chaos, tracer: Tracer | None = None) -> None:
    while not done.is_set():
        await asyncio.sleep(rng.uniform(1.0, 3.0))
        alive = {m.member for m in await store.cluster.members() if m.role == "worker"}
        owners = {c.task_id: c.worker_id for c in await store.work.claims()
                  if c.worker_id in alive and c.task_id not in out.task_kills}
        flying = sorted(owners)
        if not flying:
            continue
        task_id = rng.choice(flying)
        if tracer is not None:
            tracer.begin(task_id, owners[task_id])
        at = time.time()
        try:
            await store.kill_task(task_id, by="bench")
        except InvalidTransition:
            if tracer is not None:
                tracer.end()
                tracer.kills.pop(task_id, None)
            continue
        finally:
            if tracer is not None:
                tracer.end()
        out.task_kills[task_id] = at
        out.kill_owner[task_id] = owners[task_id].split(":", 1)[0]


async def stuck_sampler(store: TaskStore, done: asyncio.Event, out: Chaos) -> None:
    while not done.is_set():
        await asyncio.sleep(2.0)
        n = await stuck_now(store)
        out.stuck_max = max(out.stuck_max, n)
        out.stuck_samples += 1


def parse_logs(procs: list[Proc]) -> tuple[list[tuple[float, str]], dict[int, float]]:
    """(time, process) of every "console: leading" line; time of each "stopped (killed)"."""
    leading: list[tuple[float, str]] = []
    stopped: dict[int, float] = {}
    killed = re.compile(r"task#(\d+) stopped \(killed\)")
    ending = re.compile(r"← task#(\d+) (.+)$")
    heard_re = re.compile(r"trace: kill heard task#(\d+) here=True")
    for p in procs:
        if not p.log.exists():
            continue
        for line in p.log.read_text(encoding="utf-8", errors="replace").splitlines():
            at = log_time(line)
            if at is None:
                continue
            if "console: leading as" in line:
                leading.append((at, p.name))
            m = killed.search(line)
            if m:
                stopped.setdefault(int(m.group(1)), at)
            m = ending.search(line)
            if m:
                ENDINGS.setdefault(int(m.group(1)), []).append((at, m.group(2)))
            m = heard_re.search(line)
            if m:
                HEARD.setdefault(int(m.group(1)), (at, p.name))
    return sorted(leading), stopped


#: task id → (time, process) a worker's kill listener handed it the kill (--trace-kills)
HEARD: dict[int, tuple[float, str]] = {}
#: task id → (time, how) of each run's end in the logs ("finished", "stopped (killed)", …)
ENDINGS: dict[int, list[tuple[float, str]]] = {}


def unmatched_kills(out: Chaos, stopped: dict[int, float]) -> Counter[str]:
    """Why a kill has no "stopped (killed)" line: its owner was killed -9 before it stopped
    the run (the run died with the process: bounded by that, not by NOTIFY), or the run
    was already ending on its own (its final message raced the kill)."""
    why: Counter[str] = Counter()
    for task_id, at in out.task_kills.items():
        if task_id in stopped:
            continue
        owner = out.kill_owner.get(task_id, "")
        if any(name == owner and when >= at - 1.0 for when, name, _ in out.kills):
            why["owner killed -9 before it stopped the run"] += 1
            continue
        later = [how for when, how in ENDINGS.get(task_id, []) if when >= at - 1.0]
        why[f"run ending on its own ({later[0] if later else 'no end logged'})"] += 1
    return why


def trace_report(tracer: Tracer, stopped: dict[int, float],
                 kills: list[tuple[float, str, bool]]) -> None:
    rows = []
    phases: dict[str, list[float]] = {"commit": [], "notify→bench": [], "heard−commit": [],
                                      "stopped−heard": [], "total": []}
    for task_id, t in sorted(tracer.kills.items()):
        owner = t.owner.split(":", 1)[0]
        end = stopped.get(task_id)
        heard = HEARD.get(task_id)
        died = [at for at, name, _ in kills if name == owner and at >= t.started - 1
                and (end is None or at <= end)]
        total = (end - t.started) * 1000 if end else None
        commit = (t.committed - t.started) * 1000
        phases["commit"].append(commit)
        if t.notified:
            phases["notify→bench"].append((t.notified - t.committed) * 1000)
        if heard:
            phases["heard−commit"].append((heard[0] - t.committed) * 1000)
            if end:
                phases["stopped−heard"].append((end - heard[0]) * 1000)
        if total is not None:
            phases["total"].append(total)
        if total is None or total > 120:
            stmts = " | ".join(f"{s[:18]} {ms:.0f}" for s, ms in t.statements if ms >= 5)
            rows.append(f"  task#{task_id} owner {owner}: total "
                        f"{'-' if total is None else f'{total:.0f}'} commit {commit:.0f} "
                        f"lag {t.lag_max:.0f} notify→bench "
                        f"{'-' if not t.notified else f'{(t.notified - t.committed) * 1000:.0f}'}"
                        f" heard "
                        f"{'-' if not heard else f'{(heard[0] - t.committed) * 1000:.0f}'}"
                        f"{' OWNER KILLED' if died else ''} stmts[{stmts}]")
    print("\nkill trace (ms): phase n p50 p95 max")
    for name, xs in phases.items():
        if xs:
            a, b = summarize(xs)
            print(f"  {name:<14} {len(xs):>4} {a:8.1f} {b:8.1f} {max(xs):8.1f}")
    print("slow or unmatched kills:")
    print("\n".join(rows))


def notification_counts(server: FakeTelegram, chat: int
                        ) -> tuple[Counter[int], int, int, int]:
    """(task ids of single notifications, tasks counted by digests, digest messages,
    messages repeating a task id an earlier message showed)."""
    singles: Counter[int] = Counter()
    digested, digests, repeated = 0, 0, 0
    shown: set[int] = set()
    for msg in server.messages(chat):
        if not msg.from_bot or msg.deleted or not msg.text:
            continue
        m = SINGLE.search(msg.text)
        d = DIGEST.search(msg.text)
        if not m and not d:
            continue
        ids = {int(i) for i in re.findall(r"#(\d+)\b", msg.text)}
        repeated += bool(ids & shown)
        shown |= ids
        if m:
            singles[int(m.group(1))] += 1
        elif d:
            digested += int(d.group(1).replace(",", ""))
            digests += 1
    return singles, digested, digests, repeated


async def drained(store: TaskStore) -> bool:
    status = await store.cluster.status()
    return all(c.events == 0 for c in status.cursors if c.name.startswith("chat "))


async def chaos(args: argparse.Namespace, rng: random.Random) -> list[str]:
    name = f"taskops_bench_cluster_{uuid.uuid4().hex[:8]}"
    await create_pg_database(name)
    url = pg_url(name)
    workdir = ROOT / "bench" / "data" / f"cluster-{args.seed}"
    workdir.mkdir(parents=True, exist_ok=True)
    for old in workdir.glob("*.log"):
        old.unlink()
    sidefx = workdir / "sidefx.txt"
    sidefx.unlink(missing_ok=True)
    server = FakeTelegram(TOKEN, port=free_port())
    await server.start()
    server.private_chat(server.add_user(ADMIN, "Admin"))
    server.add_group(GROUP, "On call", [ADMIN], admins=[ADMIN])
    procs: list[Proc] = []
    report: list[str] = []
    try:
        await migrate(url)
        config = write_config(workdir, url, server.bot_base_url, args.concurrency)
        env = environment(install_plugin(workdir / "plugin"), sidefx)
        if args.trace_kills:
            env["PYTHONPATH"] += os.pathsep + str(install_site(workdir / "trace"))
        store = await TaskStore.open(load_settings(str(config)))
        tracer = None
        if args.trace_kills:
            tracer = Tracer()
            tracer.attach(store.db.engines.write)
            await tracer.listen(url.replace("+asyncpg", ""))
        for chat in (ADMIN, GROUP):
            await store.push.subscribe(chat, NotifySettings(statuses=WANTED).to_json(), ADMIN)
        scripts: dict[int, Script] = {}
        for n in range(args.tasks):
            chosen = script(f"c{args.seed}t{n}", args.steps, rng)
            task = await store.create_task(TaskDraft(name=f"chaos {n}", prompt=chosen.prompt))
            scripts[task.id] = chosen
        ids = list(scripts)
        procs = [Proc(f"run{i}", "run", config, env, workdir) for i in (1, 2)]
        procs += [Proc(f"w{i}", "worker", config, env, workdir) for i in (1, 2, 3)]
        started = time.time()
        for p in procs:
            await p.start()
        done = asyncio.Event()
        out = Chaos()
        helpers = [asyncio.create_task(chaos_loop(store, procs, rng, args.kill_every, done,
                                                  out, args.freeze)),
                   asyncio.create_task(kill_sampler(store, ids, rng, done, out, tracer)),
                   asyncio.create_task(stuck_sampler(store, done, out))]
        if tracer is not None:
            helpers.append(asyncio.create_task(tracer.lag_monitor(done)))
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            found = await store.tasks_by_ids(ids)
            left = sum(1 for t in found.values() if t.status is TaskStatus.RUNNING)
            if not left:
                break
            await asyncio.sleep(1.0)
        ended_at = time.time()
        done.set()
        await asyncio.gather(*helpers)
        # Let push finish: every chat cursor at the head, then the digests' windows.
        drain_deadline = time.monotonic() + 300
        while time.monotonic() < drain_deadline:
            if await drained(store):
                break
            await asyncio.sleep(1.0)
        await asyncio.sleep(15.0)
        stuck_end = sum(1 for t in (await store.tasks_by_ids(ids)).values()
                        if t.status is TaskStatus.RUNNING)
        for p in procs:
            await p.stop()
        found = await store.tasks_by_ids(ids)
        lost = [i for i in ids if found[i].status not in (TaskStatus.COMPLETED,
                                                         TaskStatus.FAILED)]
        findings = Findings(tasks=len(ids))
        # Tasks killed on purpose end failed, without their later side effects: check
        # the side effects of all, the full scripts only of the others.
        completed = {i: s for i, s in scripts.items() if i not in out.task_kills}
        await check(store, completed, sidefx, [], findings)
        lines = Counter(sidefx.read_text(encoding="utf-8").splitlines()
                        if sidefx.exists() else [])
        twice = [line for line, n in lines.items() if n > 1 and not line.startswith("safe ")]
        leading, stopped = parse_logs(procs)
        failovers = []
        with_standby = []
        details = []
        for at, victim, was_leader in out.kills:
            if not was_leader:
                continue
            nxt = next(((t, who) for t, who in leading if t > at), None)
            if nxt is not None:
                failovers.append(nxt[0] - at)
                if out.standby_up.get(at):
                    with_standby.append(nxt[0] - at)
                details.append((at, victim, nxt[1], nxt[0] - at))
        kill_latency = [(stopped[i] - at) * 1000 for i, at in out.task_kills.items()
                        if i in stopped]
        leader_kills = sum(1 for k in out.kills if k[2])
        rows = []
        for chat, label in ((ADMIN, "private"), (GROUP, "group")):
            singles, digested, digests, repeated = notification_counts(server, chat)
            delivered = sum(singles.values()) + digested
            expected = len(ids)
            rows.append([label, str(expected), str(sum(singles.values())), str(digests),
                         str(digested), str(max(0, expected - delivered)),
                         str(max(0, delivered - expected)), str(repeated),
                         f"{repeated / leader_kills:.2f}" if leader_kills else "-"])
        violations = [v for v in server.violations if not v.injected]
        p50f, p95f = summarize(failovers) if failovers else (float("nan"), float("nan"))
        p50s, p95s = (summarize(with_standby) if with_standby
                      else (float("nan"), float("nan")))
        p50k, p95k = summarize(kill_latency) if kill_latency else (float("nan"), float("nan"))
        print()
        print(f"chaos: {len(ids)} tasks × {args.steps} steps, {len(out.kills)} process kills "
              f"({leader_kills} of the leader) and {out.freezes} worker freezes past the "
              f"lease, every {args.kill_every:g}s, "
              f"{ended_at - started:.0f}s until every task ended")
        summary = [
            ["tasks lost (not ended)", str(len(lost))],
            ["side effects executed twice", str(len(set(twice) | set(findings.twice)))],
            ["recorded side effects missing / without a recorded start",
             f"{len(findings.missing)} / {len(findings.unrecorded)}"],
            ["inconsistent endings / event gaps",
             f"{len(findings.inconsistent)} / {len(findings.gaps)}"],
            ["tasks stuck running without a live owner (max over "
             f"{out.stuck_samples} samples; at the end)", f"{out.stuck_max}; {stuck_end}"],
            ["runs taken up again (resumed)", str(findings.resumes)],
            ["fail-overs measured", str(len(failovers))],
            ["fail-over time p50 / p95 / max s",
             f"{p50f:.1f} / {p95f:.1f} / {max(failovers, default=float('nan')):.1f}"],
            ["  of which a standby was up at the kill: n, p50 / p95 / max s",
             f"{len(with_standby)}, {p50s:.1f} / {p95s:.1f} / "
             f"{max(with_standby, default=float('nan')):.1f}"],
            ["kill → run stopped, other process: n, p50 / p95 / max ms",
             f"{len(kill_latency)}, {p50k:.0f} / {p95k:.0f} / "
             f"{max(kill_latency, default=float('nan')):.0f}"],
            *[[f"  kills not timed: {why}", str(n)]
              for why, n in sorted(unmatched_kills(out, stopped).items())],
            ["Telegram rule violations", str(len(violations))],
        ]
        print(markdown_table(["check", "result"], summary, right=(1,)))
        print()
        print(markdown_table(["chat", "tasks", "singles", "digests", "tasks in digests",
                              "tasks lost", "tasks told twice", "messages repeating",
                              "repeating msgs / leader kill"], rows,
                             right=(1, 2, 3, 4, 5, 6, 7, 8)))
        for at, victim, who, took in details:
            print(f"  leader {victim} killed at {time.strftime('%H:%M:%S', time.localtime(at))}"
                  f"{'' if out.standby_up.get(at) else ' (no standby up)'}: {who} leads "
                  f"after {took:.1f}s")
        for v in violations[:5]:
            print(f"  violation: {v}")
        if findings.problems:
            print("  problems:", findings.problems)
        if tracer is not None:
            trace_report(tracer, stopped, out.kills)
            await tracer.close()
        await store.close()
        report.append(f"failovers={failovers}")
    finally:
        for p in procs:
            await p.stop()
        await server.stop()
        await drop_pg_database(name)
    return report


async def scaling(args: argparse.Namespace) -> None:
    rows = []
    for n in args.scale:
        name = f"taskops_bench_cluster_scale_{uuid.uuid4().hex[:8]}"
        await create_pg_database(name)
        url = pg_url(name)
        workdir = ROOT / "bench" / "data" / f"cluster-scale-{n}"
        workdir.mkdir(parents=True, exist_ok=True)
        for old in workdir.glob("*.log"):
            old.unlink()
        procs: list[Proc] = []
        try:
            await migrate(url)
            config = write_config(workdir, url, "http://127.0.0.1:9/bot", 50)
            env = environment(install_plugin(workdir / "plugin"), workdir / "sidefx.txt")
            store = await TaskStore.open(load_settings(str(config)))
            prompt = busy_prompt(10)
            ids = [(await store.create_task(TaskDraft(name=f"busy {i}", prompt=prompt))).id
                   for i in range(args.scale_tasks)]
            procs = [Proc(f"w{i + 1}", "worker", config, env, workdir) for i in range(n)]
            load_start = load_average()
            for p in procs:
                await p.start()
            while True:
                found = await store.tasks_by_ids(ids)
                if all(t.status is not TaskStatus.RUNNING for t in found.values()):
                    break
                await asyncio.sleep(0.5)
            for p in procs:
                await p.stop()
            first = min(t.started_at for t in found.values() if t.started_at)
            last = max(t.finished_at for t in found.values() if t.finished_at)
            events = sum(t.event_count for t in found.values())
            seconds = (last - first).total_seconds()
            rows.append([str(n), str(len(ids)), str(events), f"{seconds:.1f}",
                         f"{events / seconds:,.0f}", load_start, load_average()])
            print(f"  {n} worker(s): {events} events in {seconds:.1f}s = "
                  f"{events / seconds:,.0f} events/s", flush=True)
            await store.close()
        finally:
            for p in procs:
                await p.stop()
            await drop_pg_database(name)
    base = float(rows[0][4].replace(",", "")) if rows else 1.0
    for row in rows:
        row.insert(5, f"{float(row[4].replace(',', '')) / base:.2f}×")
    print()
    print(markdown_table(["workers", "tasks", "events", "s", "events/s", "vs 1",
                          "load at start", "load at end"], rows, right=(0, 1, 2, 3, 4, 5)))


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--kill-every", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--freeze", type=float, default=0.0,
                        help="share of chaos steps that freeze a worker past its lease")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--scale", type=int, nargs="*", default=[1, 2, 3])
    parser.add_argument("--scale-tasks", type=int, default=300)
    parser.add_argument("--no-chaos", action="store_true")
    parser.add_argument("--trace-kills", action="store_true",
                        help="time the phases of each kill (bench/kill_trace.py)")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 1_000_000)
    print("command: python " + shlex.join(["bench/cluster.py", *(argv or sys.argv[1:])]))
    print(f"seed: {args.seed}")
    facts = machine_facts()
    facts.update(await pg_facts())
    print_facts(facts)
    rng = random.Random(args.seed)
    if not args.no_chaos:
        await chaos(args, rng)
    if args.scale:
        await scaling(args)
    print(f"load average at end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
