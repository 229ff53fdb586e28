"""``taskops`` command line (DESIGN.md, "Stable interfaces")."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import TextIO

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from telegram.error import InvalidToken, NetworkError, TelegramError

from taskops import monitoring, redaction
from taskops.bot.app import (
    build_application,
    lead_console,
    stand_down,
    start_console,
    stop_console,
)
from taskops.bot.app_types import AnyApp
from taskops.bot.context import deps_of
from taskops.bot.push.service import PushService
from taskops.config import ConfigError, Settings, load_settings, raw_secret_values
from taskops.logs import setup_logging, telegram_logs_at_debug
from taskops.runtime.liveness import default_worker_id
from taskops.runtime.retention import Retention
from taskops.runtime.service import run_runtime
from taskops.runtime.triggers import FencedLock, Triggers
from taskops.storage.db import current_revision, head_revision, migrate
from taskops.storage.domain import ProviderChoice, StoreError, TaskDraft, Trigger
from taskops.storage.faults import describe, is_transient
from taskops.storage.leader import CONSOLE, Leadership
from taskops.storage.seed import seed_demo
from taskops.storage.store import TaskStore

log = logging.getLogger("taskops")

EXIT_USAGE = 2
#: check-config: the settings are valid, but `run` lacks keys (the token, admins, …)
EXIT_NOT_READY = 3


class CliError(Exception):
    """A one-line problem for the operator; exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE",
                        help="TOML config file (default: $TASKOPS_CONFIG, else ./config.toml)")
    common.add_argument("--debug", action="store_true",
                        help="log at DEBUG level (with the traceback of a failed start)")
    parser = argparse.ArgumentParser(
        prog="taskops", description="Telegram operations console for background agent tasks.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", parents=[common],
                         help="run the bot (and its push jobs), the worker and the triggers")
    run.add_argument("--demo", action="store_true",
                     help="fill an empty store with demo tasks first and keep a few running")
    worker = sub.add_parser("worker", parents=[common],
                            help="run the worker and the triggers only")
    for command in (run, worker):
        command.add_argument(
            "--name", metavar="NAME",
            help="this process's name in the cluster (default: host:pid); a named worker's "
                 "tasks are taken over only once its lease runs out")
    sub.add_parser("migrate", parents=[common], help="create or upgrade the database schema")
    sub.add_parser("status", parents=[common],
                   help="print the cluster as the store sees it: leader, standbys, workers "
                        "with their leases, push cursors' lag")
    sub.add_parser("check-config", parents=[common],
                   help="validate the config and print the effective settings")
    seed = sub.add_parser("seed-demo", parents=[common], help="write realistic demo tasks")
    seed.add_argument("--tasks", type=int, required=True, metavar="N")
    seed.add_argument("--seed", type=int, default=0, metavar="S")
    submit = sub.add_parser("submit", parents=[common],
                            help="create a task and print its id")
    submit.add_argument("--name", required=True)
    submit.add_argument("--prompt", required=True)
    submit.add_argument("--provider")
    submit.add_argument("--model")
    submit.add_argument("--trigger", default="user",
                        choices=["user", "agent", "cronjob", "heartbeat", "consolidation"])
    submit.add_argument("--parent-chat", type=int, metavar="CHAT_ID")
    return parser


def _is_sqlite(settings: Settings) -> bool:
    return make_url(settings.database.url).get_backend_name() == "sqlite"


async def _open_store(settings: Settings, *, migrate_sqlite: bool = True) -> TaskStore:
    url = settings.database.url
    if _is_sqlite(settings) and migrate_sqlite:
        await migrate(url)
    elif await current_revision(url) != head_revision():
        raise CliError(f"taskops: the database at {settings.database.safe_url} is not at the "
                       "current schema; run `taskops migrate` first")
    return await TaskStore.open(settings)


async def _cmd_migrate(settings: Settings) -> int:
    await migrate(settings.database.url)
    say(f"migrated {settings.database.safe_url}")
    return 0


async def _cmd_seed(settings: Settings, tasks: int, seed: int) -> int:
    if tasks < 1:
        raise CliError("taskops: --tasks must be at least 1")
    store = await _open_store(settings)
    try:
        report = await seed_demo(store, tasks, seed, progress=lambda n: print(
            f"  {n} tasks", file=sys.stderr))
    finally:
        await store.close()
    say(f"seeded {report.tasks} tasks and {report.events} events in {report.seconds:.1f}s"
        f" ({report.describe_phases()})")
    return 0


async def _cmd_submit(settings: Settings, args: argparse.Namespace) -> int:
    if (args.provider is None) != (args.model is None):
        raise CliError("taskops: --provider and --model go together")
    choice = (ProviderChoice(args.provider, args.model) if args.provider
              else ProviderChoice.default())
    store = await _open_store(settings)
    try:
        task = await store.create_task(TaskDraft(
            name=args.name, prompt=args.prompt, trigger=Trigger(args.trigger), provider=choice,
            parent_session=(f"telegram:{args.parent_chat}"
                            if args.parent_chat is not None else None)))
    except StoreError as exc:
        raise CliError(f"taskops: {exc}") from None
    finally:
        await store.close()
    say(str(task.id))
    return 0


def _stop_on_signals() -> asyncio.Event:
    """Set on SIGINT or SIGTERM. Stopping is bounded: a stop that has not finished within
    STOP_DEADLINE_SECONDS, or a second signal, ends the process at once, saying what it was
    still waiting for. Nothing is lost by that: runs continue from their journal and push
    from its saved cursors, as after a crash; a process that would not stop is worse (its
    supervisor waits, and a deploy hangs)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            _exit_now("a second signal")
            return
        stop.set()
        loop.call_later(STOP_DEADLINE_SECONDS, _exit_now,
                        f"stopping took longer than {STOP_DEADLINE_SECONDS:g} s")

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    return stop


#: how long a stop may take before the process ends without finishing it
STOP_DEADLINE_SECONDS = 10.0
EXIT_STOP_OVERDUE = 1


def _exit_now(why: str) -> None:
    """End the process now, naming every task it was still waiting for and where."""
    current = asyncio.current_task()
    pending = []
    for task in asyncio.all_tasks():
        if task is current or task.done():
            continue
        frames = task.get_stack(limit=1)
        where = (f"{frames[-1].f_code.co_filename}:{frames[-1].f_lineno}" if frames
                 else "not started")
        pending.append(f"{task.get_name()} at {where}")
    log.warning("%s; exiting with %d task(s) pending: %s", why, len(pending),
                "; ".join(sorted(pending)) or "none")
    logging.shutdown()  # flush the log: os._exit skips it
    os._exit(EXIT_STOP_OVERDUE)


def _worker_id(name: str | None) -> str | None:
    """A named process's worker id: the name and a nonce (two starts never share one)."""
    return f"{name.replace(':', '-')}:{uuid.uuid4().hex[:6]}" if name else None


async def _cmd_worker(settings: Settings, name: str | None) -> int:
    store = await _open_store(settings)
    try:
        async with monitoring.serving(store, settings):
            await run_runtime(store, settings, _stop_on_signals(), worker_id=_worker_id(name))
    finally:
        await store.close()
    log.info("stopped")
    return 0


def _bot_api_problem(base_url: str, error: TelegramError) -> str:
    """One line for a Bot API failure at start-up, naming the setting to check."""
    causes: list[BaseException] = [error]
    while causes[-1].__cause__ is not None:
        causes.append(causes[-1].__cause__)
    if any(isinstance(cause, ValueError) for cause in causes):  # JSON or text decoding
        return (f"taskops: {base_url} is not a Bot API server (its answer to getMe is not "
                "JSON); check [telegram] base_url")
    answer = causes[-1].message if isinstance(causes[-1], TelegramError) else error.message
    if isinstance(error, InvalidToken):
        return (f"taskops: the Bot API at {base_url} rejected the bot token ({answer}); "
                "check TASKOPS_TELEGRAM_TOKEN")
    if isinstance(error, NetworkError):
        return f"taskops: cannot reach the Bot API at {base_url}: {answer}"
    return f"taskops: the Bot API at {base_url} refused to start the console: {answer}"


@contextlib.asynccontextmanager
async def _console(app: AnyApp, settings: Settings) -> AsyncIterator[None]:
    """The console started (getMe; updates in webhook mode) for the block, stopped after
    it; what only the leader does is started by :func:`_lead`."""
    try:
        with telegram_logs_at_debug():
            try:
                await app.initialize()  # getMe: the first request to the Bot API
                await start_console(app, leading=False)
            except BaseException:
                await stop_console(app)
                await app.shutdown()
                raise
    except TelegramError as error:
        log.debug("the console did not start", exc_info=True)
        raise CliError(_bot_api_problem(settings.telegram.base_url, error), code=1) from None
    try:
        yield
    finally:
        await stop_console(app)
        await app.shutdown()


def _push_lag(app: AnyApp) -> Callable[[], Awaitable[float | None]]:
    """The push lag of this process while it leads the cluster (push runs only there);
    None on a standby. Looked up at each probe: push starts and stops with leadership."""

    async def lag() -> float | None:
        service = deps_of(app).push
        return await service.notifier.lag_seconds() if isinstance(service, PushService) \
            else None

    return lag


async def _seed_demo(store: TaskStore) -> None:
    if (await store.list_tasks(page_size=1)).total == 0:
        report = await seed_demo(store, 500)
        log.info("demo: seeded %d tasks", report.tasks)


async def _lead(app: AnyApp, store: TaskStore, settings: Settings,
                leadership: Leadership) -> None:
    """What the leader of the ``taskops run`` processes does, until cancelled (leadership
    lost, or stopping): Telegram updates (polling), push and summaries, the auto-refresh,
    the triggers, retention. Stopped at once when cancelled; the fence
    (``leadership.valid``) keeps anything from being sent meanwhile."""
    stop_triggers = asyncio.Event()
    triggers = Triggers(store, settings,
                        lock=FencedLock(leadership, store.leader("triggers")))
    jobs = [asyncio.create_task(triggers.run(stop_triggers), name="triggers"),
            asyncio.create_task(Retention(store, keep_going=leadership.valid).run(),
                                name="retention")]
    try:
        with telegram_logs_at_debug():
            await lead_console(app)
        log.info("console: leading as @%s (%s)", app.bot.username, leadership.member)
        await asyncio.gather(*jobs)
        await asyncio.Event().wait()
    finally:
        stop_triggers.set()
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        await stand_down(app)


async def _cmd_run(settings: Settings, demo: bool, name: str | None = None) -> int:
    missing = settings.missing_for_run()
    if missing:
        raise CliError("\n".join(f"taskops: {line}" for line in missing))
    store = await _open_store(settings)
    try:
        app = build_application(settings, store)
        worker_id = _worker_id(name) or default_worker_id()
        leadership = store.cluster.leadership(CONSOLE, worker_id)
        deps_of(app).telegram.leading = leadership.valid
        stop = _stop_on_signals()
        async with _console(app, settings), monitoring.serving(
                store, settings, push_lag=_push_lag(app)):
            if demo:  # only now: a console that failed to start leaves the store untouched
                await _seed_demo(store)
            runtime = asyncio.create_task(run_runtime(store, settings, stop, demo=demo,
                                                      worker_id=worker_id, triggers=False))
            leading = asyncio.create_task(leadership.run(
                stop, lambda: _lead(app, store, settings, leadership)))
            log.info("taskops running as @%s (%s, %d admins, database %s)",
                     app.bot.username, settings.telegram.mode.value,
                     len(settings.telegram.admin_ids), settings.database.safe_url)
            await asyncio.wait([runtime, leading, asyncio.create_task(stop.wait())],
                               return_when=asyncio.FIRST_COMPLETED)
            log.info("stopping")
            stop.set()
            await leading
            await stop_console(app)
            await runtime  # a crashed runtime ends the process with its error
    finally:
        await store.close()
    log.info("stopped")
    return 0


async def _cmd_status(settings: Settings) -> int:
    store = await _open_store(settings, migrate_sqlite=False)
    try:
        print((await store.cluster.status()).describe())
    finally:
        await store.close()
    return 0


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "migrate":
        return await _cmd_migrate(settings)
    if args.command == "status":
        return await _cmd_status(settings)
    if args.command == "seed-demo":
        return await _cmd_seed(settings, args.tasks, args.seed)
    if args.command == "submit":
        return await _cmd_submit(settings, args)
    if args.command == "run":
        return await _cmd_run(settings, args.demo, args.name)
    if args.command == "worker":
        return await _cmd_worker(settings, args.name)
    raise AssertionError(args.command)


def _check_config(settings: Settings) -> int:
    """Print the effective settings; exit 0 when ``run`` can start, else say what it lacks."""
    say(settings.describe(), end="")
    for what, value in settings.named_secrets():
        if len(value) < redaction.MIN_SECRET:
            # Said, not refused: the operator may not choose a database's password.
            say(f"taskops: warning: {what} is shorter than {redaction.MIN_SECRET} characters: "
                "a secret that short cannot be told from ordinary text, so logs and messages "
                "do not redact it; use a longer one", sys.stderr)
    missing = settings.missing_for_run()
    for line in missing:
        say(f"taskops: {line}", sys.stderr)
    if missing:
        say("taskops: the config is valid, but `taskops run` needs the above "
            "(worker, migrate, submit and seed-demo do not)", sys.stderr)
        return EXIT_NOT_READY
    return 0


def say(text: str, file: TextIO | None = None, end: str = "\n") -> None:
    """Everything the command line prints goes out redacted (taskops.redaction)."""
    print(redaction.redact(text), file=file or sys.stdout, end=end)


def _failure_line(command: str, settings: Settings, error: Exception) -> str:
    where = settings.database.safe_url
    if is_transient(error):
        return f"taskops: cannot reach the database at {where}: {describe(error)}"
    if any(isinstance(e, DBAPIError | OSError) or type(e).__module__.startswith(
            ("asyncpg", "sqlite3")) for e in _causes(error)):
        return f"taskops: the database at {where} refused `{command}`: {describe(error)}"
    return (f"taskops: {command} failed: {describe(error)} "
            "(run it with --debug for the traceback)")


def _causes(error: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(out) < 20:
        out.append(current)
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return out


def _log_uncaught(kind: type[BaseException], error: BaseException,
                  trace: TracebackType | None) -> None:
    """An error nothing caught still goes through the log's redaction."""
    log.critical("uncaught %s", kind.__name__, exc_info=(kind, error, trace))


def main(argv: Sequence[str] | None = None) -> None:
    # python-telegram-bot 22: durations (RetryAfter.retry_after) as timedelta, not ints.
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        # Secrets from whatever of the config could be read: a bad value is never echoed
        # with one in it.
        redaction.install(raw_secret_values(args.config, os.environ))
        say(str(exc), sys.stderr)
        sys.exit(EXIT_USAGE)
    redaction.install(settings.secret_values())
    if args.command == "check-config":
        sys.exit(_check_config(settings))
    setup_logging((), logging.DEBUG if args.debug else logging.INFO)
    sys.excepthook = _log_uncaught
    try:
        code = asyncio.run(_dispatch(args, settings))
    except CliError as exc:
        say(str(exc), sys.stderr)
        code = exc.code
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:  # one line for the operator; the traceback at DEBUG
        log.debug("taskops %s failed", args.command, exc_info=True)
        say(_failure_line(args.command, settings, exc), sys.stderr)
        code = 1
    with contextlib.suppress(Exception):
        logging.shutdown()
    sys.exit(code)


if __name__ == "__main__":
    main()
