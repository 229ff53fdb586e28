"""Kill → run stopped across processes on PostgreSQL (LISTEN/NOTIFY), goal p95 ≤ 250 ms.

    python bench/cluster_kill.py [--workers 3] [--kills 60] [--poll 1.0] [--seed 14]

A fresh PostgreSQL database; ``--workers`` child processes each run a worker (the same
``Worker`` as ``taskops worker``, ``[runtime] poll_interval_seconds`` = ``--poll``, so
polling alone would give p50 ≈ poll/2) and print a JSON line with the wall-clock time each
run ends. The parent (another process, like the bot) submits a waiting task, waits until
its first event is stored (the run is in progress on whichever worker claimed it), sleeps
a random part of the polling cycle, calls ``store.kill_task`` and measures until the
owning child reports the run stopped as killed. The first two samples warm up.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import json
import random
import shlex
import time
import uuid

from bench.common import (
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
from taskops.config import DatabaseSettings, RuntimeSettings, Settings
from taskops.runtime.run import TaskRun
from taskops.runtime.worker import Worker
from taskops.storage.db import migrate
from taskops.storage.domain import EventKind, TaskDraft
from taskops.storage.store import TaskStore

WAITING = "!say started\n!wait 60\n!end completed never"


def settings_for(url: str, poll: float) -> Settings:
    return Settings(database=DatabaseSettings(url=url),
                    runtime=RuntimeSettings(concurrency=4, poll_interval_seconds=poll))


async def child(url: str, poll: float, name: str) -> None:
    store = await TaskStore.open(settings_for(url, poll))

    def report(run: TaskRun) -> None:
        print(json.dumps({"task": run.task.id, "at": time.time(), "why": run.stop_reason,
                          "worker": name}), flush=True)

    stop = asyncio.Event()
    worker = Worker(store, store.settings, worker_id=f"{name}:{uuid.uuid4().hex[:6]}",
                    on_run_end=report)
    job = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.wait_for(worker.listening.wait(), 30)
        print(json.dumps({"ready": True}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        stop.set()
        await job
        await store.close()


async def first_event_stored(store: TaskStore, task_id: int) -> None:
    while True:
        page = await store.list_events(task_id, kinds=[EventKind.TEXT], limit=1)
        if page.total:
            return
        await asyncio.sleep(0.002)


async def reader(proc: asyncio.subprocess.Process, out: asyncio.Queue[dict[str, object]]
                 ) -> None:
    assert proc.stdout is not None
    while line := await proc.stdout.readline():
        await out.put(json.loads(line))


async def bench(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    name = f"taskops_bench_cluster_kill_{uuid.uuid4().hex[:8]}"
    await create_pg_database(name)
    url = pg_url(name)
    procs = []
    readers: list[asyncio.Task[None]] = []
    try:
        await migrate(url)
        store = await TaskStore.open(settings_for(url, args.poll))
        lines: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        for n in range(args.workers):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--child", url, "--poll", str(args.poll),
                "--name", f"w{n + 1}", stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE)
            procs.append(proc)
            readers.append(asyncio.create_task(reader(proc, lines)))
        for _ in procs:
            assert (await asyncio.wait_for(lines.get(), 60)) == {"ready": True}
        latencies: list[float] = []
        reactions: list[float] = []
        owners: dict[str, int] = {}
        for _ in range(args.kills + 2):
            task = await store.create_task(TaskDraft(name="kill me", prompt=WAITING))
            await first_event_stored(store, task.id)
            await asyncio.sleep(rng.uniform(0, args.poll))
            start = time.time()
            await store.kill_task(task.id, by="bench")
            committed = time.time()
            while True:
                line = await asyncio.wait_for(lines.get(), 30)
                if line.get("task") == task.id:
                    break
            assert line["why"] == "killed", line
            latencies.append((float(str(line["at"])) - start) * 1000)
            reactions.append((float(str(line["at"])) - committed) * 1000)
            owners[str(line["worker"])] = owners.get(str(line["worker"]), 0) + 1
        await store.close()
    finally:
        for proc in procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in procs:
            await asyncio.wait_for(proc.wait(), 30)
        await drop_pg_database(name)
    samples = latencies[2:]
    p50, p95 = summarize(samples)
    r50, r95 = summarize(reactions[2:])
    print()
    print(markdown_table(
        ["latency", "workers", "poll s", "n", "p50 ms", "p95 ms", "max ms"],
        [["kill → run stopped, other process (NOTIFY)", str(args.workers), f"{args.poll:g}",
          str(len(samples)), f"{p50:.1f}", f"{p95:.1f}", f"{max(samples):.1f}"],
         ["  stopped − kill committed (< 0: before the commit)", str(args.workers),
          f"{args.poll:g}",
          str(len(samples)), f"{r50:.1f}", f"{r95:.1f}", f"{max(reactions[2:]):.1f}"]],
        right=(1, 2, 3, 4, 5, 6)))
    print(f"\nruns killed per worker: {dict(sorted(owners.items()))}")
    print(f"load average at end: {load_average()}")
    print(f"goal: p95 ≤ 250 ms — {'met' if p95 <= 250 else 'MISSED'} ({p95:.1f} ms)")
    return 0


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kills", type=int, default=60)
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        await child(args.child, args.poll, args.name)
        return 0
    print("command: python " + shlex.join(["bench/cluster_kill.py", *(argv or sys.argv[1:])]))
    print(f"seed: {args.seed}")
    facts = machine_facts()
    facts.update(await pg_facts())
    print_facts(facts)
    return await bench(args)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
