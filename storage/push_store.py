"""The push side's queries: subscriptions, their cursors, and delivery state.

Module-level functions over a :class:`TaskStore`, like ``worker_store``. A subscription
row holds the chat's settings and the change-feed cursor confirmed delivered there; the
rest of the push state (open digests, send times for pacing, stuck announcements, live
follows, other consumers' cursors) are ``console_state`` rows of their own kinds, so no
schema change was needed.

Advancing a cursor and saving what was delivered happen in one transaction, so after a
crash the two never disagree: at most the message in flight is sent again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from taskops.storage.console import ViewRecord
from taskops.storage.domain import Task
from taskops.storage.models import ConsoleStateRow, SubscriptionRow, TaskRow
from taskops.storage.rows import row_to_task
from taskops.storage.store import TaskStore


@dataclass(frozen=True)
class Subscription:
    chat_id: int
    #: owned by the bot (statuses, triggers, stuck); opaque to the store
    settings: dict[str, Any]
    #: change-feed position confirmed delivered to this chat
    cursor: str
    muted_until: datetime | None
    created_by: int
    created_at: datetime


@dataclass(frozen=True)
class ViewUpdate:
    """A console view to update in the same transaction as a cursor (the message sent)."""

    key: str
    message_id: int | None
    body: dict[str, Any]


def _subscription(row: Any) -> Subscription:
    return Subscription(row.chat_id, dict(row.settings), row.cursor, row.muted_until,
                        row.created_by, row.created_at)


def _record(row: Any) -> ViewRecord:
    return ViewRecord(row.key, row.kind, row.chat_id, row.message_id, dict(row.body),
                      row.updated_at)


# --- subscriptions ----------------------------------------------------------------------


async def get_subscription(store: TaskStore, chat_id: int) -> Subscription | None:
    async with store._read() as conn:
        row = (await conn.execute(select(SubscriptionRow).where(
            SubscriptionRow.chat_id == chat_id))).first()
    return _subscription(row) if row else None


async def list_subscriptions(store: TaskStore) -> list[Subscription]:
    async with store._read() as conn:
        rows = await conn.execute(select(SubscriptionRow).order_by(SubscriptionRow.chat_id))
        return [_subscription(r) for r in rows]


async def subscribe(store: TaskStore, chat_id: int, settings: dict[str, Any],
                    created_by: int) -> tuple[Subscription, bool]:
    """Subscribe a chat from the current end of the feed; (subscription, newly created)."""
    existing = await get_subscription(store, chat_id)
    if existing is not None:
        return existing, False
    cursor = await store.feed_head()
    try:
        async with store._write() as conn:
            await conn.execute(insert(SubscriptionRow).values(
                chat_id=chat_id, settings=settings, cursor=cursor, muted_until=None,
                created_by=created_by, created_at=store.clock()))
    except IntegrityError:
        pass  # subscribed by someone else at the same moment (PostgreSQL)
    else:
        created = await get_subscription(store, chat_id)
        assert created is not None
        return created, True
    again = await get_subscription(store, chat_id)
    assert again is not None
    return again, False


async def unsubscribe(store: TaskStore, chat_id: int) -> bool:
    async with store._write() as conn:
        result = await conn.execute(delete(SubscriptionRow).where(
            SubscriptionRow.chat_id == chat_id))
        await conn.execute(delete(ConsoleStateRow).where(
            ConsoleStateRow.key == delivery_key(chat_id)))
        return bool(result.rowcount)


async def save_settings(store: TaskStore, chat_id: int, settings: dict[str, Any]) -> bool:
    async with store._write() as conn:
        result = await conn.execute(update(SubscriptionRow).where(
            SubscriptionRow.chat_id == chat_id).values(settings=settings))
        return bool(result.rowcount)


async def set_muted(store: TaskStore, chat_id: int, until: datetime | None) -> bool:
    async with store._write() as conn:
        result = await conn.execute(update(SubscriptionRow).where(
            SubscriptionRow.chat_id == chat_id).values(muted_until=until))
        return bool(result.rowcount)


async def move_subscription(store: TaskStore, old_chat_id: int, new_chat_id: int) -> bool:
    """A group became a supergroup: its subscription follows it (unless one exists)."""
    try:
        async with store._write() as conn:
            result = await conn.execute(update(SubscriptionRow).where(
                SubscriptionRow.chat_id == old_chat_id).values(chat_id=new_chat_id))
            return bool(result.rowcount)
    except IntegrityError:
        return await unsubscribe(store, old_chat_id)


def delivery_key(chat_id: int) -> str:
    """The console_state key of a chat's delivery state (never used in buttons)."""
    return f"dlv{chat_id}"


async def advance(store: TaskStore, chat_id: int, cursor: str, *,
                  delivery: dict[str, Any] | None = None,
                  view: ViewUpdate | None = None) -> bool:
    """Move a subscription's cursor, with what was delivered, in one transaction.

    False when the chat was unsubscribed meanwhile (nothing is written then).
    """
    async with store._write() as conn:
        result = await conn.execute(update(SubscriptionRow).where(
            SubscriptionRow.chat_id == chat_id).values(cursor=cursor))
        if not result.rowcount:
            return False
        if delivery is not None:
            await _upsert(conn, store, delivery_key(chat_id), "delivery", chat_id, delivery)
        if view is not None:
            await _update_view(conn, view)
    return True


async def _update_view(conn: AsyncConnection, view: ViewUpdate) -> None:
    # updated_at stays: a message the bot sent is not one the chat used.
    values: dict[str, Any] = {"body": view.body}
    if view.message_id is not None:
        values["message_id"] = view.message_id
    await conn.execute(update(ConsoleStateRow).where(ConsoleStateRow.key == view.key)
                       .values(**values))


async def update_view(store: TaskStore, view: ViewUpdate) -> None:
    async with store._write() as conn:
        await _update_view(conn, view)


# --- tasks --------------------------------------------------------------------------------


async def tasks_by_ids(store: TaskStore, ids: Iterable[int]) -> dict[int, Task]:
    wanted = sorted(set(ids))
    found: dict[int, Task] = {}
    async with store._read() as conn:
        for i in range(0, len(wanted), 500):
            rows = await conn.execute(select(TaskRow).where(TaskRow.id.in_(wanted[i:i + 500])))
            found.update((r.id, row_to_task(r)) for r in rows)
    return found


# --- state rows of the push side ----------------------------------------------------------


async def _upsert(conn: AsyncConnection, store: TaskStore, key: str, kind: str, chat_id: int,
                  body: dict[str, Any], message_id: int | None = None) -> None:
    now = store.clock()
    ins: Any = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = ins(ConsoleStateRow).values(key=key, kind=kind, chat_id=chat_id,
                                       message_id=message_id, body=body, created_at=now,
                                       updated_at=now)
    await conn.execute(stmt.on_conflict_do_update(
        index_elements=[ConsoleStateRow.key],
        set_={"body": stmt.excluded.body, "updated_at": stmt.excluded.updated_at}))


async def put_state(store: TaskStore, key: str, kind: str, chat_id: int,
                    body: dict[str, Any]) -> None:
    async with store._write() as conn:
        await _upsert(conn, store, key, kind, chat_id, body)


async def create_state_once(store: TaskStore, key: str, kind: str, chat_id: int,
                            body: dict[str, Any]) -> bool:
    """Insert a state row unless the key exists; True if this call created it."""
    now = store.clock()
    try:
        async with store._write() as conn:
            ins: Any = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            result = await conn.execute(ins(ConsoleStateRow).values(
                key=key, kind=kind, chat_id=chat_id, message_id=None, body=body,
                created_at=now, updated_at=now).on_conflict_do_nothing(
                    index_elements=[ConsoleStateRow.key]))
            return bool(result.rowcount)
    except IntegrityError:
        return False


async def states_of_kind(store: TaskStore, kind: str) -> list[ViewRecord]:
    async with store._read() as conn:
        rows = await conn.execute(select(ConsoleStateRow).where(ConsoleStateRow.kind == kind)
                                  .order_by(ConsoleStateRow.key))
        return [_record(r) for r in rows]


async def views_used_since(store: TaskStore, kinds: tuple[str, ...],
                           since: datetime) -> list[ViewRecord]:
    async with store._read() as conn:
        rows = await conn.execute(select(ConsoleStateRow).where(
            ConsoleStateRow.kind.in_(kinds), ConsoleStateRow.updated_at >= since))
        return [_record(r) for r in rows]


async def views_of_chats(store: TaskStore, kinds: tuple[str, ...], chat_ids: Iterable[int],
                         since: datetime) -> list[ViewRecord]:
    """Views of the given chats used since ``since`` (to find each chat's latest)."""
    chats = sorted(set(chat_ids))
    if not chats:
        return []
    async with store._read() as conn:
        rows = await conn.execute(select(ConsoleStateRow).where(
            ConsoleStateRow.kind.in_(kinds), ConsoleStateRow.chat_id.in_(chats),
            ConsoleStateRow.updated_at >= since))
        return [_record(r) for r in rows]



async def save_view_if(store: TaskStore, key: str, expected: dict[str, Any],
                       body: dict[str, Any]) -> bool:
    """Replace a view's body only if it still is ``expected`` (no press came in between).

    ``updated_at`` stays: the bot re-rendering a view is not the chat using it.
    """
    async with store._write() as conn:
        row = (await conn.execute(select(ConsoleStateRow.body).where(
            ConsoleStateRow.key == key).with_for_update())).first()
        if row is None or dict(row.body) != expected:
            return False
        await conn.execute(update(ConsoleStateRow).where(ConsoleStateRow.key == key)
                           .values(body=body))
        return True
