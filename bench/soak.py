"""Soak: `taskops run` for hours under a mixed load, its memory sampled each minute (issue 18).

    python bench/soak.py [--minutes 120] [--tasks 100000] [--seed 0] [--spawn-every 3]
                         [--steps 4] [--out bench/data/soak]
    python bench/soak.py --report bench/data/soak/samples.csv   # figures of a (partial) run

What runs: the real ``taskops run`` command, as a process of its own (so its RSS is its own),
polling the fake Telegram server (tests/fakegram) that this script serves, on a SQLite store
seeded by ``taskops seed-demo --tasks N --seed S``. This script is the outside world:

* two admins, each about once a second, in turn: ``/tasks``, 🔄 Refresh on their last list,
  ``/tasks``, ``Next ▶`` on it, ``/task <a recent id>``, ``/help`` or ``/cronjobs``;
* an on-call admin's private chat and a group subscribed to every status (pushes: one
  notification or digest per change);
* a scripted task submitted every ``--spawn-every`` s (as ``taskops submit`` does, into
  the same store), each writing ``--steps`` marks with a tool call, 1 s apart.

Each minute one line goes to ``samples.csv`` (flushed at once, so a run stopped early
still has its data): minutes since start, RSS and peak RSS of ``taskops run`` (MB), its CPU
seconds, open file descriptors, threads, tasks submitted and finished, console requests
sent / answered in the minute and their median latency, push messages sent in the minute,
and the load average. ``taskops run``'s log goes to ``run.log`` next to it.

The report: RSS at start, after 10 min, at the end; growth over the last 60 minutes of
samples (and its least-squares slope, MB/min); the growth of the second hour when the run
lasted two.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import csv
import os
import random
import signal
import socket
import statistics
import subprocess
import time
from dataclasses import dataclass, field

from bench.common import DATA_DIR, load_average, machine_facts, print_facts, remove_sqlite
from bench.fault_kit import marked_script
from taskops.bot.push.subscription import NotifySettings
from taskops.config import DatabaseSettings, Secret, Settings, TelegramSettings
from taskops.storage.domain import TaskDraft, TaskStatus
from taskops.storage.store import TaskStore
from tests.fakegram import FakeMessage, FakeTelegram

TOKEN = "123456:SOAK-bench-token"
ADMINS = (1001, 1002)
ON_CALL = 1004
GROUP = -1009001
PUSH_CHATS = (ON_CALL, GROUP)
COLUMNS = ["minute", "rss_mb", "peak_rss_mb", "cpu_s", "fds", "threads", "submitted",
           "finished", "sent", "answered", "median_ms", "push_messages", "load1"]


def _status(pid: int) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/status", encoding="utf-8") as file:
        for line in file:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _kb(value: str) -> float:
    return int(value.split()[0]) / 1024


@dataclass
class Load:
    server: FakeTelegram
    store: TaskStore
    spawn_every: float
    steps: int
    rng: random.Random
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    submitted: list[int] = field(default_factory=list)
    #: (sent, latency or None) of console requests since the last sample
    answers: list[tuple[float, float | None]] = field(default_factory=list)

    async def feeder(self) -> None:
        number = 0
        while not self.stop.is_set():
            try:
                task = await self.store.create_task(TaskDraft(
                    name=f"soak {number}", prompt=marked_script(number, self.steps)))
                self.submitted.append(task.id)
                number += 1
            except Exception as error:  # a soak keeps going
                print(f"submit failed: {error!r}", file=sys.stderr)
            await asyncio.sleep(self.spawn_every)

    async def _command(self, uid: int, text: str) -> FakeMessage | None:
        chat = self.server.chat(uid)
        before = len(chat.messages)
        sent = time.monotonic()
        await self.server.send_text(uid, uid, text)
        while time.monotonic() - sent < 30:
            for message in chat.messages[before:]:
                if message.from_bot:
                    self.answers.append((sent, time.monotonic() - sent))
                    return message
            await asyncio.sleep(0.02)
        self.answers.append((sent, None))
        return None

    async def _press(self, uid: int, message: FakeMessage, button: str) -> None:
        answers = self.server.callback_answers
        sent = time.monotonic()
        try:
            query = await self.server.press_button(uid, uid, message.message_id, button)
        except LookupError:
            return
        while time.monotonic() - sent < 30:
            if any(a.query_id == query for a in answers[-50:]):
                self.answers.append((sent, time.monotonic() - sent))
                return
            await asyncio.sleep(0.02)
        self.answers.append((sent, None))

    async def admin(self, uid: int, period: float) -> None:
        turn = 0
        last: FakeMessage | None = None
        while not self.stop.is_set():
            started = time.monotonic()
            step = turn % 6
            if step in (0, 2) or last is None:
                message = await self._command(uid, "/tasks")
                if message is not None and message.buttons:
                    last = message
            elif step == 1:
                await self._press(uid, last, "🔄 Refresh")
            elif step == 3:
                await self._press(uid, last, "Next ▶")
            elif step == 4:
                recent = self.submitted[-20:] or [1]
                await self._command(uid, f"/task {self.rng.choice(recent)}")
            else:
                await self._command(uid, self.rng.choice(["/help", "/cronjobs"]))
            turn += 1
            await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))

    async def finished_of_last_minute(self) -> str:
        """"done/n" of the tasks submitted 60-120 s ago (each runs ~``steps`` s)."""
        batch = self.submitted[-int(120 / self.spawn_every):-int(60 / self.spawn_every)]
        done = 0
        for task_id in batch:
            task = await self.store.find_task(task_id)
            done += task is not None and task.status == TaskStatus.COMPLETED
        return f"{done}/{len(batch)}"

    def trim(self) -> None:
        """The fake server keeps every call; only recent ones are looked at."""
        world = self.server.world
        del world.calls[:-2000]
        del world.callback_answers[:-2000]


async def _exited(process: asyncio.subprocess.Process, within: float) -> bool:
    """Waits up to ``within`` seconds for the process to end; True if it has."""
    try:
        await asyncio.wait_for(process.wait(), max(0.0, within))
    except TimeoutError:
        return False
    return True


async def _wait_started(server: FakeTelegram, process: asyncio.subprocess.Process,
                        timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not any(c.method == "getUpdates" for c in server.calls):
        if await _exited(process, 0.2):
            raise SystemExit(f"taskops run exited with {process.returncode}; see run.log")
        if time.monotonic() > deadline:
            raise SystemExit("taskops run did not start polling")


def _cli(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "taskops.cli", *args, "--config", str(config)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(args: argparse.Namespace, port: int) -> tuple[Path, dict[str, str]]:
    """The config of ``taskops run`` and its seeded store; returns the config and the env."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    db = out / "soak.db"
    config = out / "soak.toml"
    config.write_text(
        f'[telegram]\ntoken = "{TOKEN}"\nadmin_ids = [{", ".join(map(str, (*ADMINS, ON_CALL)))}]\n'
        f'base_url = "http://127.0.0.1:{port}/bot"\n\n[database]\nurl = "sqlite+aiosqlite:///{db}"'
        '\n\n[runtime]\nconcurrency = 8\npoll_interval_seconds = 1.0\n', encoding="utf-8")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for key in ("TASKOPS_TELEGRAM_TOKEN", "TASKOPS_ADMIN_IDS", "TASKOPS_DATABASE_URL"):
        env.pop(key, None)
    if not args.reuse or not db.exists():
        remove_sqlite(db)
        started = time.monotonic()
        subprocess.run(_cli(config, "seed-demo", "--tasks", str(args.tasks), "--seed",
                            str(args.seed)), check=True, env=env, stderr=subprocess.DEVNULL)
        print(f"seeded {args.tasks} tasks (seed {args.seed}) in "
              f"{time.monotonic() - started:.0f} s", flush=True)
    return config, env


async def soak(args: argparse.Namespace, port: int, config: Path, env: dict[str, str]) -> None:
    out = Path(args.out)
    server = FakeTelegram(token=TOKEN, port=port)
    await server.start()
    for uid in (*ADMINS, ON_CALL):
        server.private_chat(server.add_user(uid, f"Admin {uid}"))
    server.add_group(GROUP, "On call", [ON_CALL, *ADMINS])
    settings = Settings(telegram=TelegramSettings(token=Secret(TOKEN), admin_ids=frozenset(ADMINS),
                                                  base_url=server.bot_base_url),
                        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{out / 'soak.db'}"))
    store = await TaskStore.open(settings)
    for chat in PUSH_CHATS:
        await store.push.subscribe(chat, NotifySettings(statuses=frozenset(TaskStatus)).to_json(),
                                   ADMINS[0])
    log = (out / "run.log").open("wb")
    command = _cli(config, "run")
    if args.heap:
        # tracemalloc through bench/heap_child.py: where the heap grows, every --heap minutes
        heap = out / "heap.txt"
        heap.unlink(missing_ok=True)
        command = [sys.executable, str(Path(__file__).with_name("heap_child.py")), str(heap),
                   str(60 * args.heap), "--", *command[3:]]
    process = await asyncio.create_subprocess_exec(*command, env=env, stdout=log, stderr=log)
    assert process.pid is not None
    samples_path = out / "samples.csv"
    try:
        await _wait_started(server, process)
        print(f"taskops run pid {process.pid} polling; samples → {samples_path}", flush=True)
        load = Load(server, store, args.spawn_every, args.steps, random.Random(args.seed))
        jobs = [asyncio.create_task(load.feeder())]
        jobs += [asyncio.create_task(load.admin(uid, 1.0 + 0.3 * i))
                 for i, uid in enumerate(ADMINS)]
        begin = time.monotonic()
        pushed_seen = 0
        with samples_path.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(COLUMNS)
            minute = 0
            while minute <= args.minutes and process.returncode is None:
                status = _status(process.pid)
                answers, load.answers = load.answers, []
                latencies = [lat for _, lat in answers if lat is not None]
                pushed = sum(1 for chat in PUSH_CHATS
                             for m in server.chat(chat).messages if m.from_bot)
                finished = await load.finished_of_last_minute()
                writer.writerow([
                    minute, f"{_kb(status['VmRSS']):.1f}", f"{_kb(status['VmHWM']):.1f}",
                    f"{_cpu_seconds(process.pid):.1f}", len(os.listdir(f"/proc/{process.pid}/fd")),
                    status["Threads"], len(load.submitted), finished,
                    len(answers), len(latencies),
                    f"{statistics.median(latencies) * 1000:.0f}" if latencies else "",
                    pushed - pushed_seen, f"{os.getloadavg()[0]:.2f}"])
                file.flush()
                pushed_seen = pushed
                load.trim()
                minute += 1
                next_at = begin + 60 * minute
                await _exited(process, next_at - time.monotonic())
        load.stop.set()
        await asyncio.gather(*jobs, return_exceptions=True)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            # the fake server answers while it stops: wait without blocking the loop
            if not await _exited(process, 120):
                process.kill()
                await process.wait()
        log.close()
        await store.close()
        await server.stop()
    print(f"taskops run exited with {process.returncode}")
    report(samples_path)


def report(path: Path) -> None:
    with path.open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    if not rows:
        print("no samples")
        return
    minutes = [int(r["minute"]) for r in rows]
    rss = [float(r["rss_mb"]) for r in rows]
    at = dict(zip(minutes, rss, strict=True))
    last = minutes[-1]
    print(f"samples: {len(rows)} (minutes 0-{last}), file {path}")
    print(f"RSS: start {rss[0]:.1f} MB, minute 10 {at.get(10, float('nan')):.1f} MB, "
          f"end {rss[-1]:.1f} MB, peak {max(float(r['peak_rss_mb']) for r in rows):.1f} MB")
    window = [(m, r) for m, r in zip(minutes, rss, strict=True) if m >= last - 60]
    if len(window) >= 2:
        xs, ys = [m for m, _ in window], [r for _, r in window]
        slope = statistics.linear_regression(xs, ys).slope
        print(f"last {xs[-1] - xs[0]} minutes (minute {xs[0]}-{xs[-1]}): growth "
              f"{ys[-1] - ys[0]:+.1f} MB, least-squares slope {slope:+.3f} MB/min "
              f"({slope * 60:+.1f} MB/h)")
    if 60 in at and 120 in at:
        print(f"second hour (minute 60-120): {at[120] - at[60]:+.1f} MB")
    sent = sum(int(r["sent"]) for r in rows)
    answered = sum(int(r["answered"]) for r in rows)
    medians = [float(r["median_ms"]) for r in rows if r["median_ms"]]
    print(f"console requests: {answered} of {sent} answered; per-minute median latency: "
          f"median {statistics.median(medians) if medians else float('nan'):.0f} ms, "
          f"max {max(medians, default=float('nan')):.0f} ms")
    print(f"push messages: {sum(int(r['push_messages']) for r in rows)}; tasks submitted: "
          f"{rows[-1]['submitted']}; fds {rows[0]['fds']} → {rows[-1]['fds']}; threads "
          f"{rows[0]['threads']} → {rows[-1]['threads']}; load1 {rows[0]['load1']} → "
          f"{rows[-1]['load1']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=120)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spawn-every", type=float, default=3.0)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--out", default=str(DATA_DIR / "soak"))
    parser.add_argument("--reuse", action="store_true",
                        help="keep an existing soak.db instead of seeding afresh")
    parser.add_argument("--heap", type=int, metavar="MINUTES", default=0,
                        help="run taskops under tracemalloc; heap growth every MINUTES into "
                             "heap.txt (diagnosis: its RSS is not the figure)")
    parser.add_argument("--report", metavar="CSV", help="only print the figures of a run")
    args = parser.parse_args()
    if args.report:
        report(Path(args.report))
        return
    facts = machine_facts()
    print(f"soak: {args.minutes} min, {args.tasks} tasks, seed {args.seed}, a task every "
          f"{args.spawn_every} s of {args.steps} steps")
    print_facts(facts)
    port = _free_port()
    config, env = prepare(args, port)
    asyncio.run(soak(args, port, config, env))
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
