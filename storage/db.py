"""Engines and migrations.

SQLite runs in WAL mode with a busy timeout and foreign keys on. Write transactions on
SQLite start with ``BEGIN IMMEDIATE``: a deferred transaction that reads and then
writes fails at once with "database is locked" when another writer got there first,
instead of waiting its turn.

Each engine has a quick twin for callers that must answer a person (storage.health):
the same database with short waits — a 0.75 s busy timeout on SQLite; on PostgreSQL a
1.5 s connect timeout, a 1 s lock timeout, a 5 s cap on any statement, and a second's
wait at most for a pooled connection. Every engine reports its contacts and transient
failures to the store's health state.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event, literal_column
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.interfaces import ExceptionContext
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool, QueuePool

from taskops import metrics
from taskops.config import Settings
from taskops.storage import rules
from taskops.storage.faults import is_transient
from taskops.storage.health import Contact, StoreHealth, is_quick
from taskops.storage.signals import ChangeBus

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: quick callers (storage.health): how long SQLite waits for another writer's lock. A
#: person is answered within 2 s: this wait, then the answer, which may wait up to a second
#: for the chat's send budget (Telegram's per-chat pace) when the admin sends quickly.
QUICK_BUSY_TIMEOUT_MS = 750
#: quick callers on PostgreSQL: connecting, waiting for a lock, any one statement
QUICK_CONNECT_SECONDS = 1.5
QUICK_LOCK_TIMEOUT_MS = 1_000
QUICK_STATEMENT_SECONDS = 5.0
#: quick callers: waiting for a pooled connection
QUICK_POOL_SECONDS = 1.0
#: everyone else on PostgreSQL: a server that does not answer a connection attempt
CONNECT_SECONDS = 10.0
#: Set on every PostgreSQL connection. asyncpg prepares each statement and PostgreSQL
#: switches a prepared statement to a generic plan after five runs; a generic plan cannot
#: see which status or date range a list page asks for (one such plan took 70 ms where
#: the custom one took 2). The list's sorts keep up to a deep page's rows in memory and
#: its bitmaps stay exact below this work_mem; 4 MB (the default) spilled them to disk.
POSTGRESQL_SETTINGS = {"plan_cache_mode": "force_custom_plan", "work_mem": "32MB"}


#: threads that run SQLite reads whole (see ``Database.run_read``)
SQLITE_READ_THREADS = 4

T = TypeVar("T")
E = TypeVar("E", AsyncEngine, Engine)


@dataclass(frozen=True)
class SyncReads:
    """SQLite only: the reader and its quick twin on the synchronous driver, and the
    threads that run a read on them in one go (``Database.run_read``)."""

    read: Engine
    quick_read: Engine
    threads: ThreadPoolExecutor


@dataclass(frozen=True)
class Engines:
    """A reader and a writer engine (the same engine on PostgreSQL), their quick twins,
    the health state they report to, and (SQLite) the synchronous readers."""

    read: AsyncEngine
    write: AsyncEngine
    quick_read: AsyncEngine
    quick_write: AsyncEngine
    health: StoreHealth
    sync_reads: SyncReads | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.write.dialect.name == "sqlite"

    async def dispose(self) -> None:
        for engine in {id(e): e for e in (self.write, self.read, self.quick_write,
                                          self.quick_read)}.values():
            await engine.dispose()
        if self.sync_reads is not None:
            self.sync_reads.threads.shutdown(wait=True)
            self.sync_reads.read.dispose()
            self.sync_reads.quick_read.dispose()


def _report_to(engine: E, contact: Contact) -> E:
    """Every statement that succeeds is a contact; every transient failure marks the path
    as away (a failed pre-ping is not one: the pool just reconnects)."""
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _started(_conn: Any, _cursor: Any, _statement: Any, _parameters: Any,
                 context: Any, _executemany: bool) -> None:
        if metrics.enabled() and context is not None:
            context.taskops_started = time.perf_counter()

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _answered(_conn: Any, _cursor: Any, _statement: Any, _parameters: Any,
                  context: Any, _executemany: bool) -> None:
        contact.answered()
        started = getattr(context, "taskops_started", None)
        if started is not None:
            metrics.store_statement(time.perf_counter() - started)

    @event.listens_for(sync_engine, "handle_error")
    def _failed(context: ExceptionContext) -> None:
        error = context.sqlalchemy_exception or context.original_exception
        if context.is_pre_ping:
            return
        transient = is_transient(error)
        metrics.store_error(transient)
        if transient:
            contact.failed(error)

    return engine


#: a UTF-16 surrogate written as a JSON escape (paired ones, e.g. emoji, match too)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _sqlite_json(text: str) -> Any:
    """JSON as SQLite holds it. Payloads written before text was cleaned on the way in
    (rules.clean) may hold lone surrogates as escapes — PostgreSQL never took them —
    which no screen or file could render; they are cleaned as they are read."""
    value = json.loads(text)
    return rules.clean(value) if _SURROGATE_ESCAPE.search(text) else value


class _HintingSQLiteCompiler(SQLiteCompiler):
    """Renders ``with_hint(table, "INDEXED BY ix", "sqlite")``, which SQLAlchemy's SQLite
    compiler drops. SQLite keeps no histograms, so the list names the index its exact
    counts chose (``storage/list_order.py``)."""

    def get_from_hint_text(self, table: Any, text: str | None) -> str | None:
        return text


def _sqlite_engine(url: str, *, immediate: bool, echo: bool,
                   busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
                   pool_timeout: float = 30.0) -> AsyncEngine:
    # A queue pool, named: in early SQLAlchemy 2.0 releases aiosqlite defaulted to NullPool, which
    # takes no pool_timeout (the quick engines need one) and reconnects per statement.
    engine = create_async_engine(url, echo=echo, poolclass=AsyncAdaptedQueuePool,
                                 pool_timeout=pool_timeout, json_deserializer=_sqlite_json)
    _sqlite_setup(engine.sync_engine, immediate=immediate, busy_timeout_ms=busy_timeout_ms)
    return engine


def _sqlite_sync_reader(url: str, *, echo: bool, busy_timeout_ms: int,
                        pool_timeout: float) -> Engine:
    """The reader on the synchronous driver (sqlite3): the same file, pragmas and SQL."""
    sync_url = make_url(url).set(drivername="sqlite")
    # Connections move between the read threads (one read at a time on each).
    engine = create_engine(sync_url, echo=echo, poolclass=QueuePool, pool_timeout=pool_timeout,
                           pool_size=SQLITE_READ_THREADS, json_deserializer=_sqlite_json,
                           connect_args={"check_same_thread": False})
    _sqlite_setup(engine, immediate=False, busy_timeout_ms=busy_timeout_ms)
    return engine


def _sqlite_setup(engine: Engine, *, immediate: bool, busy_timeout_ms: int) -> None:
    engine.dialect.statement_compiler = _HintingSQLiteCompiler

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (the driver's own is deferred).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        # The wait first: until it is set, the driver's own (5 s) applies, and a new
        # connection made while another process holds a lock would wait that long on the
        # journal mode.
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_engines(url: str, *, echo: bool = False, pool_size: int = 10,
                   sqlite_busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> Engines:
    """``sqlite_busy_timeout_ms``: how long SQLite waits for another writer's lock before
    "database is locked" (which the store's writers then retry; storage.faults)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValueError("an in-memory SQLite database cannot be shared; use a file")
        health = StoreHealth()

        def quick(immediate: bool) -> AsyncEngine:
            return _sqlite_engine(url, immediate=immediate, echo=echo,
                                  busy_timeout_ms=QUICK_BUSY_TIMEOUT_MS,
                                  pool_timeout=QUICK_POOL_SECONDS)

        sync_reads = SyncReads(
            read=_report_to(_sqlite_sync_reader(url, echo=echo,
                                                busy_timeout_ms=sqlite_busy_timeout_ms,
                                                pool_timeout=30.0), health.read),
            quick_read=_report_to(_sqlite_sync_reader(url, echo=echo,
                                                      busy_timeout_ms=QUICK_BUSY_TIMEOUT_MS,
                                                      pool_timeout=QUICK_POOL_SECONDS),
                                  health.read),
            threads=ThreadPoolExecutor(SQLITE_READ_THREADS, thread_name_prefix="sqlite-read"))
        return Engines(
            sync_reads=sync_reads,
            read=_report_to(_sqlite_engine(url, immediate=False, echo=echo,
                                           busy_timeout_ms=sqlite_busy_timeout_ms),
                            health.read),
            write=_report_to(_sqlite_engine(url, immediate=True, echo=echo,
                                            busy_timeout_ms=sqlite_busy_timeout_ms),
                             health.write),
            quick_read=_report_to(quick(immediate=False), health.read),
            quick_write=_report_to(quick(immediate=True), health.write),
            health=health,
        )
    health = StoreHealth.single()
    quick_size = max(2, pool_size // 2)
    plain_args = {"timeout": CONNECT_SECONDS, "server_settings": POSTGRESQL_SETTINGS}
    quick_args = {"timeout": QUICK_CONNECT_SECONDS, "command_timeout": QUICK_STATEMENT_SECONDS,
                  "server_settings": {**POSTGRESQL_SETTINGS,
                                      "lock_timeout": str(QUICK_LOCK_TIMEOUT_MS)}}
    engine = _report_to(create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
        connect_args=plain_args), health.write)
    quick_engine = _report_to(create_async_engine(
        url, echo=echo, pool_size=quick_size, max_overflow=quick_size, pool_pre_ping=True,
        pool_timeout=QUICK_POOL_SECONDS, connect_args=quick_args), health.write)
    # The readers' pools are smaller: a read holds its connection for a statement or two.
    return Engines(
        read=_report_to(_pg_reader(url, echo=echo, pool_size=max(2, pool_size * 2 // 5),
                                   connect_args=plain_args, ping_always=True), health.write),
        write=engine,
        quick_read=_report_to(_pg_reader(url, echo=echo, pool_size=max(2, quick_size * 3 // 5),
                                         pool_timeout=QUICK_POOL_SECONDS,
                                         connect_args=quick_args), health.write),
        quick_write=quick_engine, health=health)


#: A pooled read connection unused for this long is pinged before it is handed out.
PING_IDLE_SECONDS = 1.0


def _pg_reader(url: str, *, echo: bool, pool_size: int, connect_args: dict[str, Any],
               pool_timeout: float = 30.0, ping_always: bool = False) -> AsyncEngine:
    """The reader on PostgreSQL: its statements run outside a transaction, and (the quick
    reader, a person's) a connection is pinged only when it sat idle.

    A read's statements each see their own snapshot under READ COMMITTED, in a
    transaction or not; the BEGIN and ROLLBACK around them, and a ping at every checkout,
    were three of a list page's round trips, each a turn of the event loop every press
    waits for. An idle connection is still pinged (a restarted server closed it); one cut
    while in use fails that one quick read, which the person is told of, and invalidates
    the pool. The runtime's reads (``ping_always``) keep the ping at every checkout: a
    worker must not fail a read because its session was cut a moment earlier."""
    engine = create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size,
                                 pool_timeout=pool_timeout, isolation_level="AUTOCOMMIT",
                                 pool_pre_ping=ping_always, connect_args=connect_args)
    if ping_always:
        return engine

    @event.listens_for(engine.sync_engine, "checkin")
    def _used(_dbapi_conn: Any, record: Any) -> None:
        record.info["taskops_used"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle = time.monotonic() - record.info.get("taskops_used", 0.0)
        if idle < PING_IDLE_SECONDS:
            return
        try:
            dbapi_conn.ping()
        except Exception as error:
            # The pool replaces the connection and checks out another (up to 3 tries).
            raise DisconnectionError(f"idle connection is gone: {error}") from error

    return engine


def utcnow() -> datetime:
    return datetime.now(UTC)


class Database:
    """What every part of the store shares: the engines, the settings, the clock, the
    timezone the day counts are kept in, and the in-process change bus.

    Only ``storage`` uses it; the rest of taskops sees :class:`TaskStore`'s API.
    """

    def __init__(self, engines: Engines, settings: Settings,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.engines = engines
        self.settings = settings
        self.clock = clock
        self.tz: ZoneInfo = settings.ui.tz
        self.bus = ChangeBus()
        # On PostgreSQL every event records its writer's transaction id (see storage.feed).
        self.txid: Any = (None if engines.is_sqlite
                          else literal_column("pg_current_xact_id()::text::bigint"))

    @property
    def is_sqlite(self) -> bool:
        return self.engines.is_sqlite

    @property
    def health(self) -> StoreHealth:
        return self.engines.health

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; committed when the block ends without an error."""
        if not is_quick():
            async with self.engines.write.begin() as conn:
                yield conn
            return
        async with self._quick(self.engines.quick_write, self.health.write, begin=True) as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        if not is_quick():
            async with self.engines.read.connect() as conn:
                yield conn
            return
        async with self._quick(self.engines.quick_read, self.health.read, begin=False) as conn:
            yield conn

    async def run_read(self, read: Callable[[AsyncConnection], Coroutine[Any, Any, T]]) -> T:
        """``read(conn)`` on one read connection. On SQLite it runs whole on a read thread,
        on the synchronous driver: one hand-over between threads for the whole read, where
        aiosqlite makes about four per statement (cursor, execute, fetch, close), each
        waiting for the event loop's turn — most of a list page's time. ``read`` is an
        ordinary store read (it awaits nothing but ``conn.execute``), run to completion
        without an event loop: see :class:`_SyncReadConnection`."""
        sync = self.engines.sync_reads
        if sync is None:
            async with self.read() as conn:
                return await read(conn)
        quick_call = is_quick()
        engine = sync.quick_read if quick_call else sync.read

        def whole() -> T:
            with engine.connect() as conn:
                return _run_to_completion(read(cast(AsyncConnection, _SyncReadConnection(conn))))

        loop = asyncio.get_running_loop()
        call = contextvars.copy_context().run
        if not quick_call:
            return await loop.run_in_executor(sync.threads, call, whole)
        with self._unavailable_on_fault(self.health.read):
            return await loop.run_in_executor(sync.threads, call, whole)

    @asynccontextmanager
    async def _quick(self, engine: AsyncEngine, contact: Contact, *,
                     begin: bool) -> AsyncIterator[AsyncConnection]:
        """A quick caller's connection: a transient failure becomes StoreUnavailable."""
        with self._unavailable_on_fault(contact):
            if begin:
                async with engine.begin() as conn:
                    yield conn
            else:
                async with engine.connect() as conn:
                    yield conn

    @staticmethod
    @contextlib.contextmanager
    def _unavailable_on_fault(contact: Contact) -> Iterator[None]:
        with contact.probe():
            try:
                yield
            except Exception as error:
                if not is_transient(error):
                    raise
                if not contact.away:  # e.g. no pooled connection came free in time
                    contact.failed(error)
                raise contact.unavailable(error) from error


class _SyncReadConnection:
    """What a store read uses of an ``AsyncConnection`` (``execute``, ``dialect``), on a
    synchronous connection. A read coroutine given one never suspends, so it runs to
    completion on the thread that drives it (:func:`_run_to_completion`)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    @property
    def dialect(self) -> Any:
        return self._conn.dialect

    async def execute(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return self._conn.execute(statement, parameters, **kwargs)


def _run_to_completion(read: Coroutine[Any, Any, T]) -> T:
    try:
        read.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    read.close()
    raise RuntimeError("a store read awaited something other than its connection")


def _alembic_config(connection: Connection) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


async def migrate(url: str, revision: str = "head") -> None:
    """Bring the schema at ``url`` up to ``revision``."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(_alembic_config(sync), revision))
    finally:
        await engine.dispose()


async def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision())
    finally:
        await engine.dispose()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()
