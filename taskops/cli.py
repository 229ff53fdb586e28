"""``taskops`` command line (DESIGN.md, "Stable interfaces")."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from sqlalchemy.engine import make_url

from taskops.config import ConfigError, Settings, load_settings
from taskops.logs import setup_logging
from taskops.storage.store import TaskStore

log = logging.getLogger("taskops")

EXIT_USAGE = 2


class CliError(Exception):
    """A one-line problem for the operator; exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE",
                        help="TOML config file (default: $TASKOPS_CONFIG, else ./config.toml)")
    parser = argparse.ArgumentParser(
        prog="taskops", description="Telegram operations console for background agent tasks.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", parents=[common],
                         help="run the bot (and its push jobs), the worker and the triggers")
    run.add_argument("--demo", action="store_true",
                     help="fill an empty store with demo tasks first and keep a few running")
    sub.add_parser("worker", parents=[common], help="run the worker and the triggers only")
    sub.add_parser("migrate", parents=[common], help="create or upgrade the database schema")
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


def _secrets(settings: Settings) -> list[str]:
    secrets = []
    if settings.telegram.token:
        secrets.append(settings.telegram.token.get())
    if settings.telegram.webhook_secret:
        secrets.append(settings.telegram.webhook_secret.get())
    password = make_url(settings.database.url).password
    if password:
        secrets.append(str(password))
    for provider in settings.providers:
        key = provider.api_key()
        if key:
            secrets.append(key.get())
    return secrets


def _is_sqlite(settings: Settings) -> bool:
    return make_url(settings.database.url).get_backend_name() == "sqlite"


async def _open_store(settings: Settings, *, migrate_sqlite: bool = True) -> TaskStore:
    from taskops.storage.db import current_revision, head_revision, migrate
    from taskops.storage.store import TaskStore

    url = settings.database.url
    if _is_sqlite(settings) and migrate_sqlite:
        await migrate(url)
    elif await current_revision(url) != head_revision():
        raise CliError(f"taskops: the database at {settings.database.safe_url} is not at the "
                       "current schema; run `taskops migrate` first")
    return await TaskStore.open(settings)


async def _cmd_migrate(settings: Settings) -> int:
    from taskops.storage.db import migrate

    await migrate(settings.database.url)
    print(f"migrated {settings.database.safe_url}")
    return 0


async def _cmd_seed(settings: Settings, tasks: int, seed: int) -> int:
    from taskops.storage.seed import seed_demo

    if tasks < 1:
        raise CliError("taskops: --tasks must be at least 1")
    store = await _open_store(settings)
    try:
        report = await seed_demo(store, tasks, seed, progress=lambda n: print(
            f"  {n} tasks", file=sys.stderr))
    finally:
        await store.close()
    print(f"seeded {report.tasks} tasks and {report.events} events in {report.seconds:.1f}s")
    return 0


async def _cmd_submit(settings: Settings, args: argparse.Namespace) -> int:
    from taskops.storage.domain import ProviderChoice, StoreError, TaskDraft, Trigger

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
    print(task.id)
    return 0


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _cmd_worker(settings: Settings) -> int:
    from taskops.runtime.service import run_runtime

    store = await _open_store(settings)
    try:
        await run_runtime(store, settings, _stop_on_signals())
    finally:
        await store.close()
    log.info("stopped")
    return 0


async def _cmd_run(settings: Settings, demo: bool) -> int:
    from telegram.error import InvalidToken, NetworkError

    from taskops.bot.app import build_application, start_console, stop_console
    from taskops.runtime.service import run_runtime

    if not settings.telegram.token:
        raise CliError("taskops: no Telegram bot token: set TASKOPS_TELEGRAM_TOKEN "
                       "(or [telegram] token in the config file)")
    if not settings.telegram.admin_ids:
        raise CliError("taskops: no admins: set TASKOPS_ADMIN_IDS to the Telegram user ids "
                       "allowed to use the console (or [telegram] admin_ids)")
    store = await _open_store(settings)
    try:
        if demo and (await store.list_tasks(page_size=1)).total == 0:
            from taskops.storage.seed import seed_demo

            report = await seed_demo(store, 500)
            log.info("demo: seeded %d tasks", report.tasks)
        app = build_application(settings, store)
        stop = _stop_on_signals()
        try:
            async with app:
                await start_console(app)
                runtime = asyncio.create_task(run_runtime(store, settings, stop, demo=demo))
                log.info("taskops running as @%s (%s, %d admins, database %s)",
                         app.bot.username, settings.telegram.mode.value,
                         len(settings.telegram.admin_ids), settings.database.safe_url)
                await asyncio.wait([runtime, asyncio.create_task(stop.wait())],
                                   return_when=asyncio.FIRST_COMPLETED)
                log.info("stopping")
                stop.set()
                await stop_console(app)
                await runtime  # a crashed runtime ends the process with its error
        except InvalidToken:
            raise CliError("taskops: the Bot API rejected the bot token", code=1) from None
        except NetworkError as exc:
            raise CliError(f"taskops: cannot reach the Bot API at "
                           f"{settings.telegram.base_url}: {exc}", code=1) from None
    finally:
        await store.close()
    log.info("stopped")
    return 0


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "migrate":
        return await _cmd_migrate(settings)
    if args.command == "seed-demo":
        return await _cmd_seed(settings, args.tasks, args.seed)
    if args.command == "submit":
        return await _cmd_submit(settings, args)
    if args.command == "run":
        return await _cmd_run(settings, args.demo)
    if args.command == "worker":
        return await _cmd_worker(settings)
    raise AssertionError(args.command)


def main(argv: Sequence[str] | None = None) -> None:
    # python-telegram-bot 22: durations (RetryAfter.retry_after) as timedelta, not ints.
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        sys.exit(EXIT_USAGE)
    if args.command == "check-config":
        print(settings.describe())
        sys.exit(0)
    setup_logging(_secrets(settings))
    try:
        code = asyncio.run(_dispatch(args, settings))
    except CliError as exc:
        print(exc, file=sys.stderr)
        code = exc.code
    except KeyboardInterrupt:
        code = 130
    with contextlib.suppress(Exception):
        logging.shutdown()
    sys.exit(code)


if __name__ == "__main__":
    main()
