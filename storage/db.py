"""Engines and migrations.

SQLite runs in WAL mode with a busy timeout and foreign keys on. Write transactions on
SQLite start with ``BEGIN IMMEDIATE``: a deferred transaction that reads and then
writes fails at once with "database is locked" when another writer got there first,
instead of waiting its turn.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event, literal_column
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from taskops.config import Settings
from taskops.storage.signals import ChangeBus

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Set on every PostgreSQL connection. asyncpg prepares each statement and PostgreSQL
#: switches a prepared statement to a generic plan after five runs; a generic plan cannot
#: see which status or date range a list page asks for (one such plan took 70 ms where
#: the custom one took 2). The list's sorts keep up to a deep page's rows in memory and
#: its bitmaps stay exact below this work_mem; 4 MB (the default) spilled them to disk.
POSTGRESQL_SETTINGS = {"plan_cache_mode": "force_custom_plan", "work_mem": "32MB"}


@dataclass(frozen=True)
class Engines:
    """A reader and a writer engine; the same engine on PostgreSQL."""

    read: AsyncEngine
    write: AsyncEngine

    @property
    def is_sqlite(self) -> bool:
        return self.write.dialect.name == "sqlite"

    async def dispose(self) -> None:
        await self.write.dispose()
        if self.read is not self.write:
            await self.read.dispose()


class _HintingSQLiteCompiler(SQLiteCompiler):
    """Renders ``with_hint(table, "INDEXED BY ix", "sqlite")``, which SQLAlchemy's SQLite
    compiler drops. SQLite keeps no histograms, so the list names the index its exact
    counts chose (``storage/list_order.py``)."""

    def get_from_hint_text(self, table: Any, text: str | None) -> str | None:
        return text


def _sqlite_engine(url: str, *, immediate: bool, echo: bool,
                   busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> AsyncEngine:
    engine = create_async_engine(url, echo=echo)
    engine.sync_engine.dialect.statement_compiler = _HintingSQLiteCompiler

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (the driver's own is deferred).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def create_engines(url: str, *, echo: bool = False, pool_size: int = 10,
                   sqlite_busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> Engines:
    """``sqlite_busy_timeout_ms``: how long SQLite waits for another writer's lock before
    "database is locked" (which the store's writers then retry; storage.faults)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValueError("an in-memory SQLite database cannot be shared; use a file")
        return Engines(
            read=_sqlite_engine(url, immediate=False, echo=echo,
                                busy_timeout_ms=sqlite_busy_timeout_ms),
            write=_sqlite_engine(url, immediate=True, echo=echo,
                                 busy_timeout_ms=sqlite_busy_timeout_ms),
        )
    engine = create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size,
                                 pool_pre_ping=True,
                                 connect_args={"server_settings": POSTGRESQL_SETTINGS})
    return Engines(read=engine, write=engine)


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

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        async with self.engines.write.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engines.read.connect() as conn:
            yield conn


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
