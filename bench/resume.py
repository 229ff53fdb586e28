"""Resume after kill -9: side effects never twice, no task left behind (issue 13).

    python bench/resume.py [--db sqlite|postgresql|both] [--kill-points 200] [--tasks 40]
                           [--steps 30] [--alive 0.3 2.0] [--seed N]

For each database (a fresh SQLite file under bench/data/, a fresh PostgreSQL database
dropped at the end) the harness of the crash test (tests/runtime/crash_harness.py) runs
at scale: ``--tasks`` scripted tasks, each ``--steps`` × (tokens, a text, a call of a
tool that appends a line to a file and is *not* safe to repeat, every third step also a
call of one that is, a random wait). A real ``taskops worker`` process (the tools loaded
from a ``taskops.tools`` entry point, as operators install theirs) is started, and
``--alive`` seconds (uniform, seeded) after it has written something it is killed with
SIGKILL; then the next one is started. This repeats until the kills have cut off running
tasks at least ``--kill-points`` times (a kill point: one task in flight when a worker
died); a last worker then finishes everything.

Reported, per database:
* side effects executed twice — lines of the file written twice (goal 0), effects with
  no recorded start, recorded results whose effect is missing;
* tasks left running with no worker — still running after the last worker had
  ``--timeout`` s (goal 0), and tasks cut off that never show a resume;
* events contiguous — tasks whose events are not numbered 1..n or whose count differs;
  tasks whose ending is inconsistent (status, tool calls, tokens counted once, one final);
* where the kills landed (the last thing each cut-off task had recorded);
* restart → running again: from spawning the new worker process to each cut-off task's
  ``resumed`` event (p50/p95/max), next to the floor of starting a Python process that
  imports the worker (``--import-samples``).

The seed is printed; the same seed gives the same scripts and kill moments (the moments
are seeded, what the tasks have reached by then depends on the machine).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import random
import shlex
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bench.common import (
    DATA_DIR,
    ROOT,
    create_pg_database,
    drop_pg_database,
    load_average,
    machine_facts,
    markdown_table,
    percentile,
    pg_facts,
    pg_url,
    print_facts,
    remove_sqlite,
    sqlite_url,
)
from taskops.config import DatabaseSettings, RuntimeSettings, Settings, UISettings
from taskops.storage.db import migrate
from taskops.storage.store import TaskStore
from tests.runtime.crash_harness import Findings, crash_run


@asynccontextmanager
async def database(kind: str) -> AsyncIterator[str]:
    if kind == "sqlite":
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path = DATA_DIR / "resume_bench.db"
        remove_sqlite(path)
        url = sqlite_url(path)
        await migrate(url)
        try:
            yield url
        finally:
            remove_sqlite(path)
    else:
        name = f"taskops_bench_resume_{random.randrange(16**8):08x}"
        await create_pg_database(name)
        url = pg_url(name)
        await migrate(url)
        try:
            yield url
        finally:
            await drop_pg_database(name)


def import_floor(samples: int) -> list[float]:
    """Seconds to start a Python process that imports the worker and exits."""
    out = []
    for _ in range(samples):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import taskops.cli, taskops.runtime.worker"],
                       cwd=ROOT, check=True)
        out.append(time.perf_counter() - start)
    return out


def seconds(values: list[float]) -> tuple[str, str, str]:
    if not values:
        return "—", "—", "—"
    return (f"{statistics.median(values):.2f}", f"{percentile(values, 95):.2f}",
            f"{max(values):.2f}")


async def run_one(kind: str, args: argparse.Namespace, seed: int) -> tuple[Findings, float]:
    async with database(kind) as url:
        settings = Settings(database=DatabaseSettings(url=url), ui=UISettings(timezone="UTC"),
                            runtime=RuntimeSettings(concurrency=args.tasks))
        store = await TaskStore.open(settings)
        workdir = Path(tempfile.mkdtemp(prefix=f"resume-{kind}-"))
        started = time.perf_counter()
        try:
            findings = await crash_run(store, workdir, tasks=args.tasks, steps=args.steps,
                                       kills=1, seed=seed, alive=tuple(args.alive),
                                       timeout=args.timeout, kill_points=args.kill_points,
                                       max_kills=args.max_kills)
        finally:
            await store.close()
            shutil.rmtree(workdir, ignore_errors=True)
        return findings, time.perf_counter() - started


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--kill-points", type=int, default=200)
    parser.add_argument("--max-kills", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--alive", type=float, nargs=2, default=[0.3, 2.0])
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--import-samples", type=int, default=5)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    print("command: python " + shlex.join(["bench/resume.py", *(argv or sys.argv[1:])]))
    print(f"seed: {seed}")
    facts = machine_facts()
    if args.db != "sqlite":
        facts.update(await pg_facts())
    print_facts(facts)
    floor = import_floor(args.import_samples)
    rows, where_rows, time_rows = [], [], []
    failed = False
    for kind in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
        findings, took = await run_one(kind, args, seed)
        print(f"  {kind}: {findings.kills} kills, {findings.kill_points} kill points, "
              f"{took:.0f}s; problems: {findings.problems or 'none'}")
        failed |= bool(findings.problems)
        rows.append([kind, str(findings.tasks), str(findings.kills), str(findings.kill_points),
                     str(len(findings.twice)), str(len(findings.unrecorded)),
                     str(len(findings.missing)), str(len(findings.left_running)),
                     str(len(findings.not_resumed)), str(len(findings.gaps)),
                     str(len(findings.inconsistent)), str(findings.interrupted),
                     str(findings.repeated), str(findings.resumes)])
        for where, n in sorted(findings.cut_at.items(), key=lambda kv: -kv[1]):
            where_rows.append([kind, where, str(n)])
        time_rows.append([kind, "restart → task running again (resumed event)",
                          str(len(findings.back_after)), *seconds(findings.back_after)])
    time_rows.append(["—", "floor: start Python, import the worker, exit",
                      str(len(floor)), *seconds(floor)])
    print()
    print(markdown_table(
        ["db", "tasks", "kills", "kill points", "effects twice", "effect w/o start",
         "recorded but missing", "left running", "cut, never resumed", "event gaps",
         "inconsistent endings", "calls interrupted", "safe calls repeated", "resumes"],
        rows, right=tuple(range(1, 14))))
    print()
    print(markdown_table(["db", "kill point (last recorded)", "n"], where_rows, right=(2,)))
    print()
    print(markdown_table(["db", "latency", "n", "p50 s", "p95 s", "max s"], time_rows,
                         right=(2, 3, 4, 5)))
    print(f"\nload average at the end: {load_average()}")
    print(f"goals (0 twice, 0 left running, contiguous events): "
          f"{'MISSED' if failed else 'met'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
