"""The pieces of the fault benchmark (bench/faults.py): the system under test, its
workload, the faults, and what is recorded while they happen.

* :class:`System` — what ``taskops run`` runs, in this process: the Application against
  the fake Telegram server, the push jobs, the worker, and the product's own logging
  (throttle and redaction), whose output lines are kept with their times;
* :class:`Workload` — scripted tasks submitted every few seconds, each writing numbered
  marks, so a lost or doubled event is seen; admins sending /tasks and pressing Refresh,
  every answer timed;
* the faults — a SQLite write lock held by another process, a PostgreSQL database of our
  own refusing connections (tests/faults.py), and :class:`OwnPostgres`: a server started
  from the system's binaries on a temporary directory and another port, to restart.
"""

from __future__ import annotations

import asyncio
import glob
import io
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from taskops.bot.app import build_application, start_console, stop_console
from taskops.bot.app_types import AnyApp
from taskops.bot.context import deps_of
from taskops.bot.push.service import PushService
from taskops.bot.push.subscription import NotifySettings
from taskops.config import (
    DatabaseSettings,
    RuntimeSettings,
    Secret,
    Settings,
    TelegramSettings,
)
from taskops.logs import setup_logging
from taskops.runtime.service import run_runtime
from taskops.storage.domain import TaskDraft, TaskStatus
from taskops.storage.health import quick
from taskops.storage.store import TaskStore
from tests.fakegram import FakeMessage, FakeTelegram

TOKEN = "123456:BENCH-faults"
#: admins working the console; their chats get no notifications, so every bot message
#: there answers them
ADMINS = (1001, 1002, 1003)
#: the chats subscribed to every status: an on-call admin's private chat and a group
SUBSCRIBED = (1004, -1009001)
UNAVAILABLE = re.compile(r"^⚠️ The task store is unavailable — retrying")
LOG_HEAD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (\w+)\s")
PUSH_TEXT = re.compile(r"^\S+ (Task (started|resumed|failed|completed|paused)\b|[\d,]+ tasks? )")


# --- what the product logs ----------------------------------------------------------------


class LineLog(io.TextIOBase):
    """A stream that keeps each line written to it with the time it was written."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []
        self._partial = ""

    def write(self, text: str) -> int:
        now = time.time()
        *complete, self._partial = (self._partial + text).split("\n")
        self.lines += [(now, line) for line in complete]
        return len(text)

    def dump(self, path: Path, since: float, until: float) -> None:
        path.write_text("".join(line + "\n" for at, line in self.lines if since <= at < until),
                        encoding="utf-8")

    def level_lines(self, level: str, since: float = 0.0, until: float = float("inf")) -> int:
        """Records (not traceback lines) of ``level`` written in [since, until)."""
        return sum(1 for at, line in self.lines if since <= at < until
                   and (m := LOG_HEAD.match(line)) is not None and m.group(1) == level)


def capture_logs() -> LineLog:
    """The product's logging set-up (``taskops run``), writing into a LineLog."""
    setup_logging([TOKEN])
    log = LineLog()
    for handler in logging.getLogger().handlers:
        target = getattr(handler, "target", handler)
        if isinstance(target, logging.StreamHandler):
            target.setStream(log)
    return log


# --- the system under test ----------------------------------------------------------------


@dataclass
class System:
    server: FakeTelegram
    app: AnyApp
    store: TaskStore
    stop: asyncio.Event
    runtime: asyncio.Task[None]

    @classmethod
    async def start(cls, url: str, concurrency: int = 64) -> System:
        server = FakeTelegram(token=TOKEN)
        await server.start()
        users = [server.add_user(uid, f"Admin {uid}") for uid in (*ADMINS, SUBSCRIBED[0])]
        for user in users:
            server.private_chat(user)
        server.add_group(SUBSCRIBED[1], "On call", users)
        settings = Settings(
            telegram=TelegramSettings(token=Secret(TOKEN),
                                      admin_ids=frozenset(u.id for u in users),
                                      base_url=server.bot_base_url),
            database=DatabaseSettings(url=url),
            runtime=RuntimeSettings(concurrency=concurrency, poll_interval_seconds=1.0))
        store = await TaskStore.open(settings)
        app = build_application(settings, store)
        await app.initialize()
        await start_console(app)
        stop = asyncio.Event()
        runtime = asyncio.create_task(run_runtime(store, settings, stop), name="runtime")
        system = cls(server, app, store, stop, runtime)
        for chat in SUBSCRIBED:
            await system.subscribe(chat)
        return system

    async def subscribe(self, chat_id: int) -> None:
        """As /subscribe does, to every status."""
        settings = NotifySettings(statuses=frozenset(TaskStatus))
        await self.store.push.subscribe(chat_id, settings.to_json(), ADMINS[0])
        service = deps_of(self.app).push
        assert isinstance(service, PushService)
        service.poke()
        await self.server.wait_for(lambda: chat_id in service.notifier.workers, timeout=30)

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.runtime, 120)
        await stop_console(self.app)
        await self.app.shutdown()
        await self.store.close()
        await self.server.stop()


# --- the workload -------------------------------------------------------------------------


def marked_script(number: int, steps: int) -> str:
    lines = [f"Fault bench task {number}."]
    for i in range(steps):
        lines += [f"!say mark {number}:{i}", f'!tool probe {{"n": {number}, "i": {i}}} -> ok',
                  "!wait 1"]
    return "\n".join([*lines, f"!end completed {steps} marks written"])


@dataclass
class Answer:
    """One console request of an admin and its answer."""

    kind: str  # "command" or "press"
    sent: float
    answered: float | None = None
    unavailable: bool = False

    @property
    def latency(self) -> float | None:
        return None if self.answered is None else self.answered - self.sent


@dataclass
class Workload:
    system: System
    steps: int = 12
    spawn_every: float = 2.0
    answer_timeout: float = 30.0
    #: harness task number → task id
    tasks: dict[int, int] = field(default_factory=dict)
    answers: list[Answer] = field(default_factory=list)
    spawn_skipped: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _jobs: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._jobs = [asyncio.create_task(self._feed(), name="feeder")]
        self._jobs += [asyncio.create_task(self._admin(uid, period), name=f"admin-{uid}")
                       for uid, period in ((ADMINS[0], 1.0), (ADMINS[1], 1.3))]

    async def stop_admins(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._jobs)

    async def submit(self, prompt: str, name: str) -> int | None:
        """A task, as `taskops submit` makes one; None if the store did not take it."""
        try:
            with quick():
                task = await self.system.store.create_task(TaskDraft(name=name, prompt=prompt))
        except Exception:  # the store is away: the submitter gives up, as a caller would
            self.spawn_skipped += 1
            return None
        return task.id

    async def _feed(self) -> None:
        number = 0
        while not self._stop.is_set():
            task_id = await self.submit(marked_script(number, self.steps), f"marked {number}")
            if task_id is not None:
                self.tasks[number] = task_id
                number += 1
            await asyncio.sleep(self.spawn_every)

    async def _admin(self, uid: int, period: float) -> None:
        server = self.system.server
        chat = server.private_chat(uid)
        last_list: FakeMessage | None = None
        turn = 0
        while not self._stop.is_set():
            started = time.time()
            if turn % 2 == 0 or last_list is None:
                answer, message = await self.command(uid, "/tasks")
                if message is not None and not answer.unavailable and message.buttons:
                    last_list = message
            else:
                answer = await self.press(uid, last_list, "🔄 Refresh")
            self.answers.append(answer)
            turn += 1
            await asyncio.sleep(max(0.0, period - (time.time() - started)))
        del chat

    async def command(self, uid: int, text: str) -> tuple[Answer, FakeMessage | None]:
        server = self.system.server
        chat = server.private_chat(uid)
        before = len(server.messages(chat))
        answer = Answer("command", time.time())
        await server.send_text(uid, chat, text)
        deadline = answer.sent + self.answer_timeout
        while time.time() < deadline:
            replies = [m for m in server.messages(chat)[before:] if m.from_bot]
            if replies:
                sent = [c for c in server.calls if c.method == "sendMessage"
                        and str(c.params.get("chat_id")) == str(uid) and c.status == 200
                        and c.at >= answer.sent]
                answer.answered = sent[0].at if sent else time.time()
                answer.unavailable = bool(UNAVAILABLE.match(replies[0].text or ""))
                return answer, replies[0]
            await asyncio.sleep(0.01)
        return answer, None

    async def press(self, uid: int, message: FakeMessage, button: str) -> Answer:
        server = self.system.server
        answer = Answer("press", time.time())
        query_id = await server.press_button(uid, message.chat, message.message_id, button)
        deadline = answer.sent + self.answer_timeout
        while time.time() < deadline:
            found = [a for a in server.callback_answers if a.query_id == query_id]
            if found:
                answer.answered = found[0].at
                answer.unavailable = bool(UNAVAILABLE.match(found[0].text or ""))
                return answer
            await asyncio.sleep(0.01)
        return answer


async def until_console_answers(workload: Workload, since: float) -> float:
    """Seconds from ``since`` until a /tasks of the third admin gets a real list."""
    while True:
        answer, message = await workload.command(ADMINS[2], "/tasks")
        if message is not None and not answer.unavailable and answer.answered is not None:
            return answer.answered - since
        await asyncio.sleep(0.1)


# --- faults -------------------------------------------------------------------------------


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL's tools refuse to run as root: run them as the postgres user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


class OwnPostgres:
    """A PostgreSQL server of the benchmark's own: the system's binaries, a temporary data
    directory, another port. Never the shared server."""

    def __init__(self, port: int = 55439) -> None:
        versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                          key=lambda p: int(p.split("/")[-2]))
        if not versions:
            raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
        self.bin = Path(versions[-1])
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="taskops-faults-pg-"))
        self.data = self.root / "data"
        self.logfile = self.root / "server.log"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")

    @property
    def server_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(_as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                                     str(self.logfile), *args]),
                       check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        subprocess.run(_as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "-A",
                                     "trust", "-U", "postgres", "--no-sync"]),
                       check=True, capture_output=True, timeout=120)
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=100")
        self._ctl("-o", options, "-w", "start")

    def restart(self) -> None:
        """A fast shutdown (sessions cut) and a start, as an operator's restart."""
        self._ctl("-m", "fast", "-w", "restart")

    def stop(self) -> None:
        try:
            self._ctl("-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
