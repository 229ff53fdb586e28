"""Console state: views, prompts, drafts and the push side's state rows, by short keys.

Buttons carry only a key; what they act on lives here, so they keep working after a
restart and across bot replicas. A row's ``kind`` says what it is and its body is JSON
owned by the bot. ``updated_at`` means "the chat last used it": a press or a command
touches it, a re-render by the bot does not. Also the audit log of admin actions.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import String, delete, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from taskops.storage.db import Database
from taskops.storage.models import AuditRow, ConsoleStateRow, SavedViewRow
from taskops.storage.recent import RecentMap

KEY_ALPHABET = string.ascii_letters + string.digits
KEY_LENGTH = 8


@dataclass(frozen=True)
class ViewRecord:
    key: str
    kind: str
    chat_id: int
    message_id: int | None
    body: dict[str, Any]
    updated_at: datetime


@dataclass(frozen=True)
class ViewUpdate:
    """A view's new body (and the message it is in), saved without touching it."""

    key: str
    message_id: int | None
    body: dict[str, Any]


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor_id: int
    actor_name: str
    action: str
    task_id: int | None
    outcome: str
    chat_id: int | None = None


@dataclass(frozen=True)
class SavedView:
    id: int
    chat_id: int
    name: str
    body: dict[str, Any]


class NameTaken(ValueError):
    """A chat already has a saved view of that name."""


def record(row: Any) -> ViewRecord:
    return ViewRecord(row.key, row.kind, row.chat_id, row.message_id, dict(row.body),
                      row.updated_at)


def new_key() -> str:
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_LENGTH))


async def upsert_state(db: Database, conn: AsyncConnection, key: str, kind: str, chat_id: int,
                       body: dict[str, Any]) -> None:
    now = db.clock()
    ins: Any = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = ins(ConsoleStateRow).values(key=key, kind=kind, chat_id=chat_id, message_id=None,
                                       body=body, created_at=now, updated_at=now)
    await conn.execute(stmt.on_conflict_do_update(
        index_elements=[ConsoleStateRow.key],
        set_={"body": stmt.excluded.body, "updated_at": stmt.excluded.updated_at}))


async def apply_update(conn: AsyncConnection, view: ViewUpdate) -> None:
    # updated_at stays: a message the bot sent is not one the chat used.
    values: dict[str, Any] = {"body": view.body}
    if view.message_id is not None:
        values["message_id"] = view.message_id
    await conn.execute(update(ConsoleStateRow).where(ConsoleStateRow.key == view.key)
                       .values(**values))


#: A view nobody used for this long leaves the cache (a later press reads it back): the
#: size bound alone let a soak's cache grow for hours, a /tasks every few seconds filling
#: its 4,096 entries (bench/soak.py --heap).
VIEW_IDLE_SECONDS = 900.0


class ViewCache:
    """The views this process read or wrote lately, written through: every write of a
    state row in this process updates or drops its entry, so a press can act on the view
    without reading it back (the row stays the truth: after a restart, or when another
    replica may have changed it, the bot reads it — see ``bot/press.py``)."""

    def __init__(self, size: int = 4096, idle_seconds: float = VIEW_IDLE_SECONDS) -> None:
        self._views: RecentMap[str, ViewRecord] = RecentMap(size, idle_seconds, idle=True)

    def get(self, key: str) -> ViewRecord | None:
        return self._views.get(key)

    @property
    def writes(self) -> int:
        return self._views.writes

    def read(self, view: ViewRecord, writes_before: int) -> None:
        """Cache a view read from the store, unless a write came in while it was read."""
        self._views.put_read(view.key, view, writes_before)

    def put(self, view: ViewRecord) -> None:
        self._views.put(view.key, view)

    def change(self, key: str, **changes: Any) -> None:
        self._views.change(key, lambda view: replace(view, **changes))

    def forget(self, key: str) -> None:
        self._views.forget(key)

    def forget_unused(self, before: datetime) -> None:
        self._views.forget_where(lambda view: view.updated_at < before)


#: How long a chat's saved views are served from memory. Every list render shows them, so
#: reading them per press doubled a press's database work; this process's own saves,
#: renames and deletes drop the entry at once, so only another replica's change can be
#: this late (a button row, not an action: pressing a deleted view says it is gone).
SAVED_VIEWS_TTL_S = 30.0
SAVED_VIEWS_CHATS = 1024


class ConsoleStore:
    def __init__(self, db: Database, cache: ViewCache | None = None) -> None:
        self.db = db
        self.cache = cache or ViewCache()
        #: bodies staged by presses whose save has not ended, by view key (``stage``)
        self.staged: dict[str, dict[str, Any]] = {}
        #: each chat's saved views, by chat id
        self.saved_cache: RecentMap[int, tuple[SavedView, ...]] = RecentMap(
            SAVED_VIEWS_CHATS, SAVED_VIEWS_TTL_S, idle=False)

    # --- one view by key -------------------------------------------------------------------

    async def create(self, kind: str, chat_id: int, body: dict[str, Any],
                     message_id: int | None = None, key: str | None = None) -> str:
        key = key or new_key()
        now = self.db.clock()
        async with self.db.write() as conn:
            await conn.execute(insert(ConsoleStateRow).values(
                key=key, kind=kind, chat_id=chat_id, message_id=message_id, body=body,
                created_at=now, updated_at=now))
        self.cache.put(ViewRecord(key, kind, chat_id, message_id, dict(body), now))
        return key

    async def create_once(self, key: str, kind: str, chat_id: int,
                          body: dict[str, Any]) -> bool:
        """Insert a state row unless the key exists; True if this call created it."""
        now = self.db.clock()
        try:
            async with self.db.write() as conn:
                ins: Any = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
                result = await conn.execute(ins(ConsoleStateRow).values(
                    key=key, kind=kind, chat_id=chat_id, message_id=None, body=body,
                    created_at=now, updated_at=now).on_conflict_do_nothing(
                        index_elements=[ConsoleStateRow.key]))
                created = bool(result.rowcount)
        except IntegrityError:
            return False
        if created:
            self.cache.put(ViewRecord(key, kind, chat_id, None, dict(body), now))
        return created

    async def put(self, key: str, kind: str, chat_id: int, body: dict[str, Any]) -> None:
        """Create or replace a state row (touching it)."""
        async with self.db.write() as conn:
            await upsert_state(self.db, conn, key, kind, chat_id, body)
        self.cache.forget(key)  # an existing row keeps its kind, chat and message

    async def get(self, key: str) -> ViewRecord | None:
        writes = self.cache.writes
        async with self.db.read() as conn:
            row = (await conn.execute(select(ConsoleStateRow).where(
                ConsoleStateRow.key == key))).first()
        if row is None:
            self.cache.forget(key)
            return None
        view = record(row)
        self.cache.read(view, writes)
        return view

    def cached(self, key: str) -> ViewRecord | None:
        """The view as this process last read or wrote it, without a database read (None
        when not known here)."""
        return self.cache.get(key)

    def stage(self, view: ViewRecord, body: dict[str, Any]) -> None:
        """This process knows the view's next body before it is saved: a press stages
        its new state, edits the message, then saves it. Until the save ends, whatever
        asks here sees the new state: the chat's next press (the cache), push asking
        whether a person took a digest over (``pending``), a live view's ``save_if``."""
        self.cache.put(replace(view, body=dict(body), updated_at=self.db.clock()))
        self.staged[view.key] = body

    def pending(self, key: str) -> dict[str, Any] | None:
        """The body staged for the view and not saved yet (None: none in flight)."""
        return self.staged.get(key)

    async def save(self, key: str, body: dict[str, Any], *, message_id: int | None = None,
                   kind: str | None = None, touch: bool = True) -> None:
        """Replace a view's body; ``touch`` marks it as the chat's most recent view."""
        values: dict[str, Any] = {"body": body}
        if touch:
            values["updated_at"] = self.db.clock()
        if message_id is not None:
            values["message_id"] = message_id
        if kind is not None:
            values["kind"] = kind
        try:
            async with self.db.write() as conn:
                await conn.execute(update(ConsoleStateRow).where(ConsoleStateRow.key == key)
                                   .values(**values))
        except BaseException:
            if self.staged.get(key) is body:
                self.cache.forget(key)  # a staged body that was not saved is not the view's
            raise
        finally:
            if self.staged.get(key) is body:
                del self.staged[key]
        self.cache.change(key, **values)

    async def update(self, view: ViewUpdate) -> None:
        """Save a body the bot rendered (not a use by the chat: ``updated_at`` stays)."""
        async with self.db.write() as conn:
            await apply_update(conn, view)
        self.cache.forget(view.key)

    async def save_if(self, key: str, expected: dict[str, Any], body: dict[str, Any]) -> bool:
        """Replace a view's body only if it still is ``expected`` (no press came in between).

        ``updated_at`` stays: the bot re-rendering a view is not the chat using it.
        """
        staged = self.staged.get(key)
        if staged is not None and staged != expected:
            return False  # a press here is saving its own state
        async with self.db.write() as conn:
            row = (await conn.execute(select(ConsoleStateRow.body).where(
                ConsoleStateRow.key == key).with_for_update())).first()
            if row is None or dict(row.body) != expected:
                return False
            await conn.execute(update(ConsoleStateRow).where(ConsoleStateRow.key == key)
                               .values(body=body))
        self.cache.change(key, body=dict(body))
        return True

    async def delete(self, key: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(delete(ConsoleStateRow).where(ConsoleStateRow.key == key))
        self.cache.forget(key)

    # --- many views ------------------------------------------------------------------------

    async def find(self, chat_id: int, message_id: int, kind: str) -> ViewRecord | None:
        """The state of a given kind attached to a message (e.g. a reply prompt)."""
        async with self.db.read() as conn:
            row = (await conn.execute(select(ConsoleStateRow).where(
                ConsoleStateRow.chat_id == chat_id, ConsoleStateRow.message_id == message_id,
                ConsoleStateRow.kind == kind).limit(1))).first()
        return record(row) if row else None

    async def latest(self, chat_id: int, kinds: tuple[str, ...]) -> ViewRecord | None:
        """The chat's most recently used view of the given kinds."""
        async with self.db.read() as conn:
            row = (await conn.execute(
                select(ConsoleStateRow)
                .where(ConsoleStateRow.chat_id == chat_id, ConsoleStateRow.kind.in_(kinds))
                .order_by(ConsoleStateRow.updated_at.desc(), ConsoleStateRow.key)
                .limit(1))).first()
        return record(row) if row else None

    async def of_kind(self, kind: str) -> list[ViewRecord]:
        async with self.db.read() as conn:
            rows = await conn.execute(select(ConsoleStateRow).where(
                ConsoleStateRow.kind == kind).order_by(ConsoleStateRow.key))
            return [record(r) for r in rows]

    async def latest_used_since(self, kinds: tuple[str, ...], since: datetime,
                                chat_ids: Iterable[int] | None = None,
                                unmarked: str | None = None) -> dict[int, ViewRecord]:
        """Each chat's most recently used view of these kinds since ``since`` (latest by
        (updated_at, key)), of the given chats if named; with ``unmarked``, views whose
        body holds that key (not null) are passed over.

        The live views and the auto-refresh ask this every second or two. Reading every
        view of the window whole decoded thousands of JSON bodies per pass on a busy
        console, in the event loop every press waits for (bench/list_bot.py under
        pyinstrument: a sixth of the loop); this reads keys and times, and the bodies of
        the chosen views only.
        """
        where = [ConsoleStateRow.kind.in_(kinds), ConsoleStateRow.updated_at >= since]
        if chat_ids is not None:
            chats = sorted(set(chat_ids))
            if not chats:
                return {}
            where.append(ConsoleStateRow.chat_id.in_(chats))
        async with self.db.read() as conn:
            if unmarked is not None:
                body = ConsoleStateRow.body
                # the key as plain text: bound with the column's type it would be JSON
                mark = (func.json_extract(body, literal(f'$."{unmarked}"', String()))
                        if conn.dialect.name == "sqlite"
                        else body.op("->>")(literal(unmarked, String())))
                where.append(mark.is_(None))
            best: dict[int, tuple[datetime, str]] = {}
            for r in await conn.execute(select(ConsoleStateRow.key, ConsoleStateRow.chat_id,
                                               ConsoleStateRow.updated_at).where(*where)):
                if r.chat_id not in best or (r.updated_at, r.key) > best[r.chat_id]:
                    best[r.chat_id] = (r.updated_at, r.key)
            if not best:
                return {}
            rows = await conn.execute(select(ConsoleStateRow).where(
                ConsoleStateRow.key.in_(sorted(key for _, key in best.values()))))
            return {r.chat_id: record(r) for r in rows}

    async def delete_unused(self, before: datetime) -> int:
        async with self.db.write() as conn:
            result = await conn.execute(delete(ConsoleStateRow).where(
                ConsoleStateRow.updated_at < before))
        self.cache.forget_unused(before)
        return int(result.rowcount or 0)

    # --- the audit log ---------------------------------------------------------------------

    async def audit(self, *, actor_id: int, actor_name: str, action: str,
                    task_id: int | None, outcome: str, chat_id: int | None = None) -> None:
        async with self.db.write() as conn:
            await conn.execute(insert(AuditRow).values(
                at=self.db.clock(), actor_id=actor_id, actor_name=actor_name[:200],
                action=action, task_id=task_id, outcome=outcome, chat_id=chat_id))

    async def audit_log(self, limit: int = 100, *, actor_id: int | None = None,
                        action: str | None = None) -> list[AuditEntry]:
        """The most recent admin actions, newest first; of one admin and/or one action."""
        where = []
        if actor_id is not None:
            where.append(AuditRow.actor_id == actor_id)
        if action is not None:
            where.append(AuditRow.action == action)
        async with self.db.read() as conn:
            rows = await conn.execute(select(AuditRow).where(*where)
                                      .order_by(AuditRow.id.desc()).limit(limit))
            return [AuditEntry(r.id, r.at, r.actor_id, r.actor_name, r.action, r.task_id,
                               r.outcome, r.chat_id) for r in rows]

    async def audit_actors(self) -> dict[str, int]:
        """Admins in the audit log by name (lowercase, and @username-less), to filter by."""
        async with self.db.read() as conn:
            rows = await conn.execute(select(AuditRow.actor_name, AuditRow.actor_id).distinct())
            return {r.actor_name.casefold(): r.actor_id for r in rows}

    # --- saved views -----------------------------------------------------------------------

    async def saved_views(self, chat_id: int) -> list[SavedView]:
        cached = self.saved_cache.get(chat_id)
        if cached is not None:
            return list(cached)
        writes_before = self.saved_cache.writes
        async with self.db.read() as conn:
            rows = await conn.execute(select(SavedViewRow).where(
                SavedViewRow.chat_id == chat_id).order_by(SavedViewRow.id))
            views = tuple(SavedView(r.id, r.chat_id, r.name, dict(r.body)) for r in rows)
        self.saved_cache.put_read(chat_id, views, writes_before)
        return list(views)

    @asynccontextmanager
    async def _saved_write(self, chat_id: int) -> AsyncIterator[AsyncConnection]:
        """A write of the chat's saved views: its cache entry is dropped, and a read that
        ran while the write was on its way is not cached (counted before and after)."""
        self.saved_cache.forget(chat_id)
        try:
            async with self.db.write() as conn:
                yield conn
        finally:
            self.saved_cache.forget(chat_id)

    async def saved_view(self, chat_id: int, view_id: int) -> SavedView | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(SavedViewRow).where(
                SavedViewRow.chat_id == chat_id, SavedViewRow.id == view_id))).first()
        return SavedView(row.id, row.chat_id, row.name, dict(row.body)) if row else None

    async def save_view(self, chat_id: int, name: str, body: dict[str, Any]) -> int:
        """Save a view under ``name`` for the chat; ``NameTaken`` if the name is in use."""
        try:
            async with self._saved_write(chat_id) as conn:
                result = await conn.execute(insert(SavedViewRow).values(
                    chat_id=chat_id, name=name, body=body, created_at=self.db.clock())
                    .returning(SavedViewRow.id))
                return int(result.scalar_one())
        except IntegrityError:
            raise NameTaken(name) from None

    async def rename_view(self, chat_id: int, view_id: int, name: str) -> bool:
        try:
            async with self._saved_write(chat_id) as conn:
                result = await conn.execute(update(SavedViewRow).where(
                    SavedViewRow.chat_id == chat_id, SavedViewRow.id == view_id)
                    .values(name=name))
                return bool(result.rowcount)
        except IntegrityError:
            raise NameTaken(name) from None

    async def delete_view(self, chat_id: int, view_id: int) -> bool:
        async with self._saved_write(chat_id) as conn:
            result = await conn.execute(delete(SavedViewRow).where(
                SavedViewRow.chat_id == chat_id, SavedViewRow.id == view_id))
            return bool(result.rowcount)
