"""The push side's store: subscriptions and the change-feed cursor each chat has confirmed.

A subscription row holds the chat's settings and cursor; the rest of the push state (open
digests, send times, stuck announcements, live follows, other consumers' cursors) are
console state rows of their own kinds (``store.console``). Advancing a cursor and saving
what was delivered happen in one transaction, so after a crash the two never disagree: at
most the message in flight is sent again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from taskops.storage import feed
from taskops.storage.console import ViewCache, ViewUpdate, apply_update, upsert_state
from taskops.storage.db import Database
from taskops.storage.models import ConsoleStateRow, SubscriptionRow

DELIVERY_KIND = "delivery"


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


def _subscription(row: Any) -> Subscription:
    return Subscription(row.chat_id, dict(row.settings), row.cursor, row.muted_until,
                        row.created_by, row.created_at)


def delivery_key(chat_id: int) -> str:
    """The console_state key of a chat's delivery state (never used in buttons)."""
    return f"dlv{chat_id}"


class PushStore:
    def __init__(self, db: Database, views: ViewCache | None = None) -> None:
        self.db = db
        #: the console's view cache: state rows written here are dropped from it
        self.views = views or ViewCache()

    async def get(self, chat_id: int) -> Subscription | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(SubscriptionRow).where(
                SubscriptionRow.chat_id == chat_id))).first()
        return _subscription(row) if row else None

    async def subscriptions(self) -> list[Subscription]:
        async with self.db.read() as conn:
            rows = await conn.execute(select(SubscriptionRow).order_by(SubscriptionRow.chat_id))
            return [_subscription(r) for r in rows]

    async def subscribe(self, chat_id: int, settings: dict[str, Any],
                        created_by: int) -> tuple[Subscription, bool]:
        """Subscribe a chat from the current end of the feed; (subscription, newly created)."""
        existing = await self.get(chat_id)
        if existing is not None:
            return existing, False
        created = False
        try:
            async with self.db.write() as conn:
                cursor = await feed.head(conn)
                await conn.execute(insert(SubscriptionRow).values(
                    chat_id=chat_id, settings=settings, cursor=cursor, muted_until=None,
                    created_by=created_by, created_at=self.db.clock()))
            created = True
        except IntegrityError:
            pass  # subscribed by someone else at the same moment (PostgreSQL)
        subscription = await self.get(chat_id)
        assert subscription is not None
        return subscription, created

    async def unsubscribe(self, chat_id: int) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(delete(SubscriptionRow).where(
                SubscriptionRow.chat_id == chat_id))
            await conn.execute(delete(ConsoleStateRow).where(
                ConsoleStateRow.key == delivery_key(chat_id)))
        self.views.forget(delivery_key(chat_id))
        return bool(result.rowcount)

    async def save_settings(self, chat_id: int, settings: dict[str, Any]) -> bool:
        return await self._set(chat_id, settings=settings)

    async def set_muted(self, chat_id: int, until: datetime | None) -> bool:
        return await self._set(chat_id, muted_until=until)

    async def _set(self, which: int, **values: Any) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(update(SubscriptionRow).where(
                SubscriptionRow.chat_id == which).values(**values))
            return bool(result.rowcount)

    async def move(self, old_chat_id: int, new_chat_id: int) -> bool:
        """A group became a supergroup: its subscription follows it (unless one exists)."""
        try:
            return await self._set(old_chat_id, chat_id=new_chat_id)
        except IntegrityError:
            return await self.unsubscribe(old_chat_id)

    async def advance(self, chat_id: int, cursor: str, *,
                      delivery: dict[str, Any] | None = None,
                      view: ViewUpdate | None = None) -> bool:
        """Move a subscription's cursor, with what was delivered, in one transaction.

        False when the chat was unsubscribed meanwhile (nothing is written then).
        """
        async with self.db.write() as conn:
            result = await conn.execute(update(SubscriptionRow).where(
                SubscriptionRow.chat_id == chat_id).values(cursor=cursor))
            if not result.rowcount:
                return False
            if delivery is not None:
                await upsert_state(self.db, conn, delivery_key(chat_id), DELIVERY_KIND,
                                   chat_id, delivery)
            if view is not None:
                await apply_update(conn, view)
        self.views.forget(delivery_key(chat_id))
        if view is not None:
            self.views.forget(view.key)
        return True
