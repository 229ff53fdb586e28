"""Kill -9 a real ``taskops worker`` at random moments and check what the journal promises.

Shared by the CI test (tests/runtime/test_crash_resume.py, a few seeds) and the benchmark
(bench/resume.py, hundreds of kill points). The tasks are scripted; their tools have a
side effect — they append a line to a file — and are loaded by the worker process from a
plugin installed the way operators install theirs (a ``taskops.tools`` entry point).

After the last restart every task must have ended, and for each task:

* every completed side effect happened exactly once: a line per recorded successful
  call, no line twice (a call cut off by a kill may have left its line or not — it is
  recorded as interrupted and never run again);
* no effect without a recorded start (nothing runs before its start is in the journal);
* one consistent final state: completed, one ``final`` event, the status change last
  but for the final and the injection, the tokens and tool calls counted exactly once;
* events numbered 1..n without a gap.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from taskops.storage.domain import EventKind, TaskDraft, TaskStatus
from taskops.storage.rules import INTERRUPTED_RESULT
from taskops.storage.store import TaskStore

ROOT = Path(__file__).resolve().parents[2]

PLUGIN = '''"""Tools with a side effect, for crash tests: each call appends a line to a file."""
import asyncio
import os

from taskops.runtime.tools import tool

PARAMETERS = {"type": "object", "required": ["line"], "properties": {"line": {"type": "string"}}}


async def _append(arguments, prefix):
    await asyncio.sleep(float(arguments.get("before", 0.02)))
    with open(os.environ["SIDEFX_FILE"], "a", encoding="utf-8") as file:
        file.write(prefix + arguments["line"] + "\\n")
    await asyncio.sleep(float(arguments.get("after", 0.02)))
    return "appended " + arguments["line"]


@tool("append_line", description="Append a line (not safe to repeat).", parameters=PARAMETERS)
async def append_line(arguments):
    return await _append(arguments, "")


@tool("append_safe", description="Append a line (safe to repeat).", parameters=PARAMETERS,
      safe_to_repeat=True)
async def append_safe(arguments):
    return await _append(arguments, "safe ")
'''

ENTRY_POINTS = """[taskops.tools]
append_line = sidefx_tools:append_line
append_safe = sidefx_tools:append_safe
"""

#: tokens each step adds (prompt, completion)
STEP_TOKENS = (10, 5)


def install_plugin(directory: Path) -> Path:
    """A plugin package on disk (module + dist-info with the entry points)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sidefx_tools.py").write_text(PLUGIN, encoding="utf-8")
    info = directory / "sidefx_tools-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sidefx-tools\nVersion: 0.1\n",
                                   encoding="utf-8")
    (info / "entry_points.txt").write_text(ENTRY_POINTS, encoding="utf-8")
    return directory


@dataclass(frozen=True)
class Script:
    tag: str
    steps: int
    prompt: str
    #: the lines the unsafe tool appends, in order
    lines: tuple[str, ...]


def script(tag: str, steps: int, rng: random.Random) -> Script:
    prompt = [f"Side effects {tag}."]
    lines = []
    for i in range(steps):
        line = f"{tag}:{i}"
        lines.append(line)
        before, after = rng.uniform(0.01, 0.08), rng.uniform(0.01, 0.08)
        prompt += [f"!tokens {STEP_TOKENS[0]} {STEP_TOKENS[1]}", f"!say {tag} step {i}",
                   f'!tool append_line {{"line": "{line}", "before": {before:.3f}, '
                   f'"after": {after:.3f}}}']
        if i % 3 == 2:
            prompt.append(f'!tool append_safe {{"line": "{tag}:s{i}"}}')
        prompt.append(f"!wait {rng.uniform(0.0, 0.1):.3f}")
    prompt.append(f"!end completed {tag} done")
    return Script(tag, steps, "\n".join(prompt), tuple(lines))


@dataclass
class Findings:
    tasks: int = 0
    kills: int = 0
    #: kill points that hit a task while it ran (a task in flight when the worker died)
    kill_points: int = 0
    twice: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unrecorded: list[str] = field(default_factory=list)
    inconsistent: list[str] = field(default_factory=list)
    gaps: list[int] = field(default_factory=list)
    left_running: list[int] = field(default_factory=list)
    #: tasks cut off by a kill that never show a resume
    not_resumed: list[int] = field(default_factory=list)
    #: the tasks each kill cut off
    cut: set[int] = field(default_factory=set)
    interrupted: int = 0
    repeated: int = 0
    resumes: int = 0
    #: seconds from a restart (process spawned) to each task running again (resumed)
    back_after: list[float] = field(default_factory=list)
    #: where the kills cut the tasks off: the last thing in each one's journal
    cut_at: Counter[str] = field(default_factory=Counter)

    @property
    def problems(self) -> list[str]:
        out = [f"{len(v)} {k}: {v[:5]}" for k, v in (
            ("side effects twice", self.twice), ("recorded but missing", self.missing),
            ("effects without a recorded start", self.unrecorded),
            ("inconsistent endings", self.inconsistent), ("gaps", self.gaps),
            ("left running", self.left_running), ("never resumed", self.not_resumed)) if v]
        return out


class WorkerProcess:
    def __init__(self, config: Path, env: dict[str, str], cwd: Path) -> None:
        self.config, self.env, self.cwd = config, env, cwd
        self.proc: asyncio.subprocess.Process | None = None
        self.spawned = 0.0

    async def start(self) -> None:
        self.spawned = time.time()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "taskops.cli", "worker", "--config", str(self.config),
            cwd=self.cwd, env=self.env, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)

    async def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode or 0


def worker_files(workdir: Path, url: str, concurrency: int) -> tuple[Path, dict[str, str], Path]:
    """The worker's config, environment and side-effect file."""
    plugin = install_plugin(workdir / "plugin")
    config = workdir / "worker.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[runtime]\nconcurrency = {concurrency}\n'
                      "poll_interval_seconds = 0.2\n", encoding="utf-8")
    sidefx = workdir / "sidefx.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKOPS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(plugin)])
    env["SIDEFX_FILE"] = str(sidefx)
    return config, env, sidefx


async def unfinished(store: TaskStore, ids: list[int]) -> list[int]:
    found = await store.tasks_by_ids(ids)
    return [i for i in ids if found[i].status is TaskStatus.RUNNING]


async def in_flight(store: TaskStore, ids: list[int]) -> list[int]:
    """Started and not ended: what a kill now cuts off."""
    found = await store.tasks_by_ids(ids)
    return [i for i in ids
            if found[i].status is TaskStatus.RUNNING and found[i].started_at is not None]


async def progress(store: TaskStore, ids: list[int]) -> int:
    return sum(t.event_count for t in (await store.tasks_by_ids(ids)).values())


async def until_working(store: TaskStore, ids: list[int], before: int, worker: WorkerProcess,
                        timeout: float = 30.0) -> None:
    """Wait until the new worker has written something (it is up and running tasks)."""
    end = time.monotonic() + timeout
    while await progress(store, ids) == before and time.monotonic() < end:
        assert worker.proc is not None
        if worker.proc.returncode is not None:
            raise RuntimeError(f"the worker exited with {worker.proc.returncode}")
        await asyncio.sleep(0.02)


async def where_cut(store: TaskStore, cut: list[int]) -> list[str]:
    """What each task cut off by a kill had recorded last: the kill point, as the journal
    shows it (a tool start without its result: killed inside the tool call)."""
    out = []
    for task_id in cut:
        journal = await store.task_journal(task_id)
        last = journal[-1] if journal else None
        if last is None:
            out.append("nothing recorded")
        elif last.kind is EventKind.TOOL_START:
            out.append(f"inside {last.payload.get('tool')}")
        else:
            out.append(f"after {last.kind.value}")
    return out


async def crash_run(store: TaskStore, workdir: Path, *, tasks: int, steps: int, kills: int,
                    seed: int, concurrency: int | None = None,
                    alive: tuple[float, float] = (0.3, 2.0),
                    timeout: float = 300.0, kill_points: int = 0,
                    max_kills: int = 1000) -> Findings:
    """Submit ``tasks`` scripts, kill -9 the worker ``kills`` times at random moments
    (``alive`` seconds after each start) — and more, up to ``max_kills``, until the kills
    have cut off running tasks ``kill_points`` times — then let a last worker finish
    (``timeout`` seconds from its start); check."""
    rng = random.Random(seed)
    config, env, sidefx = worker_files(workdir, store.settings.database.url,
                                       concurrency or tasks)
    scripts = {}
    for n in range(tasks):
        chosen = script(f"s{seed}t{n}", steps, rng)
        task = await store.create_task(TaskDraft(name=f"crash {n}", prompt=chosen.prompt))
        scripts[task.id] = chosen
    ids = list(scripts)
    findings = Findings(tasks=tasks)
    spawns: list[float] = []
    worker = WorkerProcess(config, env, workdir)
    while findings.kills < kills or (findings.kill_points < kill_points
                                      and findings.kills < max_kills):
        running = await unfinished(store, ids)
        if not running:
            break
        before = await progress(store, ids)
        await worker.start()
        spawns.append(worker.spawned)
        await until_working(store, ids, before, worker)
        await asyncio.sleep(rng.uniform(*alive))
        await worker.kill9()
        # Read once the process is gone: exactly the runs the kill cut off.
        cut = await in_flight(store, ids)
        findings.kills += 1
        findings.kill_points += len(cut)
        findings.cut.update(cut)
        findings.cut_at.update(await where_cut(store, cut))
    await worker.start()
    spawns.append(worker.spawned)
    deadline = time.monotonic() + timeout
    try:
        while await unfinished(store, ids):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    finally:
        await worker.stop()
    await check(store, scripts, sidefx, spawns, findings)
    return findings


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


async def check(store: TaskStore, scripts: dict[int, Script], sidefx: Path,
                spawns: list[float], findings: Findings) -> None:
    written = Counter(await asyncio.to_thread(read_lines, sidefx))
    found = await store.tasks_by_ids(list(scripts))
    for task_id, chosen in scripts.items():
        task = found[task_id]
        journal = await store.task_journal(task_id)
        if [e.seq for e in journal] != list(range(1, len(journal) + 1)) \
                or task.event_count != len(journal):
            findings.gaps.append(task_id)
        if task.status is TaskStatus.RUNNING:
            findings.left_running.append(task_id)
            continue
        calls = [e for e in journal if e.kind is EventKind.TOOL_CALL]
        started = {str(e.payload["arguments"]["line"]) for e in journal
                   if e.kind is EventKind.TOOL_START}
        for line in chosen.lines:
            if written[line] > 1:
                findings.twice.append(line)
            if written[line] and line not in started:
                findings.unrecorded.append(line)
        for call in calls:
            line = str(call.payload["arguments"]["line"])
            if call.payload.get("interrupted"):
                findings.interrupted += 1
                if call.payload.get("result") != INTERRUPTED_RESULT:
                    findings.inconsistent.append(f"#{task_id}: interrupted result")
            elif call.payload["tool"] == "append_line" and written[line] != 1:
                findings.missing.append(line)
            findings.repeated += bool(call.payload.get("repeated"))
        finals = [e for e in journal if e.kind is EventKind.FINAL]
        safe = sum(1 for i in range(chosen.steps) if i % 3 == 2)
        expected = (TaskStatus.COMPLETED, 1, chosen.steps + safe,
                    chosen.steps * STEP_TOKENS[0], chosen.steps * STEP_TOKENS[1],
                    chosen.steps)
        got = (task.status, len(finals), task.tool_call_count, task.prompt_tokens,
               task.completion_tokens,
               sum(1 for e in journal if e.kind is EventKind.TEXT))
        if got != expected:
            findings.inconsistent.append(f"#{task_id}: {got} != {expected}")
        resumed = [e for e in journal if e.kind is EventKind.RESUMED]
        findings.resumes += len(resumed)
        if task_id in findings.cut and not resumed:
            findings.not_resumed.append(task_id)
        for event in resumed:
            at = event.at.timestamp()
            spawn = max((s for s in spawns if s <= at), default=None)
            if spawn is not None:
                findings.back_after.append(at - spawn)
