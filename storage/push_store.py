"""The push side's store: subscriptions and the change-feed cursor each chat has confirmed.

A subscription row holds the chat's settings and cursor; the rest of the push state (open
digests, send times, stuck announcements, live follows, other consumers' cursors) are
console state rows of their own kinds (``store.console``). Advancing a cursor and saving
what was delivered happen in one transaction, so after a crash the two never disagree: at
most the message in flight is sent again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from taskops.storage import feed, rules
from taskops.storage.console import ViewCache, ViewUpdate, apply_update, upsert_state
from taskops.storage.db import Database
from taskops.storage.domain import EventKind, TaskEvent, TaskStatus
from taskops.storage.models import (
    AlertRow,
    ConsoleStateRow,
    DigestItemRow,
    SubscriptionRow,
    TaskEventRow,
)
from taskops.storage.rows import row_to_event

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


class AlertKind(StrEnum):
    """What a push message with a lifecycle is about."""

    FAILED = "failed"
    #: paused with a question
    PAUSED = "paused"
    STUCK = "stuck"
    #: failed by loop detection
    LOOP = "loop"
    #: the message a recurring task's completions update (not an alert: no ack, no
    #: escalation)
    COMPLETED = "completed"

    @property
    def needs_person(self) -> bool:
        return self is not AlertKind.COMPLETED


@dataclass(frozen=True)
class Alert:
    id: int
    chat_id: int
    #: the task announced (the latest run, for a recurring message)
    task_id: int
    #: the task whose fate the lifecycle shows (after a restart: the new run)
    follow_task_id: int
    kind: AlertKind
    view_key: str
    message_id: int | None
    group_key: str | None
    count: int
    text: str
    #: lifecycle steps, oldest first: each a short plain-text line part
    lifecycle: list[str]
    seen_event_id: int
    created_at: datetime
    updated_at: datetime
    acked_by: str | None
    acked_at: datetime | None
    escalated_at: datetime | None
    resolved_at: datetime | None

    @property
    def is_open(self) -> bool:
        """Still waiting for a person: not acked and not resolved."""
        return self.acked_at is None and self.resolved_at is None


@dataclass(frozen=True)
class NewAlert:
    """An alert to insert along with the delivery that sent it."""

    task_id: int
    kind: AlertKind
    view_key: str
    message_id: int | None
    group_key: str | None
    text: str
    #: the change-feed event that made it (its lifecycle starts after it)
    seen_event_id: int = 0


@dataclass(frozen=True)
class AlertRepeat:
    """A recurring task's run taken into an existing message (one more, same ending)."""

    alert_id: int
    task_id: int
    text: str
    seen_event_id: int


#: how much of a task's name a digest keeps (it shows at most 40 characters)
DIGEST_NAME_KEPT = 64


@dataclass(frozen=True)
class DigestItem:
    """One task of a digest, with the status its change brought."""

    task_id: int
    status: TaskStatus
    name: str

    def to_json(self) -> list[Any]:
        return [self.task_id, self.status.value, self.name]

    @classmethod
    def from_json(cls, value: list[Any]) -> DigestItem:
        return cls(int(value[0]), TaskStatus(value[1]), str(value[2]))


@dataclass(frozen=True)
class DigestAppend:
    """Tasks a digest took in, stored in the transaction of the delivery that showed them
    (so the digest's count in the delivery state and its rows never disagree);
    ``first_seq`` is how many the digest had before."""

    view_key: str
    first_seq: int
    items: list[DigestItem]


@dataclass(frozen=True)
class DigestPage:
    """A page of a digest's tasks, newest first, and what the whole digest counts."""

    total: int
    counts: dict[TaskStatus, int]
    #: when its first and latest change were taken in (None: no rows)
    started: datetime | None
    updated: datetime | None
    items: list[DigestItem]


def _alert(row: Any) -> Alert:
    return Alert(row.id, row.chat_id, row.task_id, row.follow_task_id, AlertKind(row.kind),
                 row.view_key, row.message_id, row.group_key, row.count, row.text,
                 [str(x) for x in (row.lifecycle or [])], row.seen_event_id, row.created_at,
                 row.updated_at, row.acked_by, row.acked_at, row.escalated_at,
                 row.resolved_at)


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
                      view: ViewUpdate | None = None,
                      alert: NewAlert | AlertRepeat | None = None,
                      digest: DigestAppend | None = None,
                      digest_alerts: Sequence[NewAlert] = ()) -> bool:
        """Move a subscription's cursor, with what was delivered, in one transaction.

        ``digest_alerts``: the alerts a digest message carries (one per task of it that
        needs a person), inserted with the digest's rows.

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
            if isinstance(alert, NewAlert):
                await self._insert_alert(conn, chat_id, alert)
            elif isinstance(alert, AlertRepeat):
                await conn.execute(update(AlertRow).where(AlertRow.id == alert.alert_id).values(
                    count=AlertRow.count + 1, task_id=alert.task_id,
                    follow_task_id=alert.task_id, text=alert.text,
                    seen_event_id=alert.seen_event_id, updated_at=self.db.clock()))
            if digest is not None and digest.items:
                await self._append_digest(conn, digest)
            for carried in digest_alerts:
                await self._insert_alert(conn, chat_id, carried)
        self.views.forget(delivery_key(chat_id))
        if view is not None:
            self.views.forget(view.key)
        return True

    # --- digests ---------------------------------------------------------------------------

    async def _append_digest(self, conn: AsyncConnection, digest: DigestAppend) -> None:
        now = self.db.clock()
        await conn.execute(insert(DigestItemRow), [
            {"view_key": digest.view_key, "seq": digest.first_seq + i, "task_id": item.task_id,
             "status": item.status.value, "name": item.name[:DIGEST_NAME_KEPT], "at": now}
            for i, item in enumerate(digest.items)])

    async def digest_page(self, view_key: str, page: int, size: int) -> DigestPage:
        """Page ``page`` (from 1, newest first) of a digest's tasks: a seek on the primary
        key, and its counts by status."""
        async with self.db.read() as conn:
            counts: dict[TaskStatus, int] = {}
            for status, n in await conn.execute(
                    select(DigestItemRow.status, func.count()).where(
                        DigestItemRow.view_key == view_key).group_by(DigestItemRow.status)):
                counts[TaskStatus(status)] = int(n)
            span = (await conn.execute(select(func.min(DigestItemRow.at),
                                              func.max(DigestItemRow.at)).where(
                DigestItemRow.view_key == view_key))).one()
            rows = await conn.execute(
                select(DigestItemRow.task_id, DigestItemRow.status, DigestItemRow.name)
                .where(DigestItemRow.view_key == view_key)
                .order_by(DigestItemRow.seq.desc())
                .offset((max(1, page) - 1) * size).limit(size))
            items = [DigestItem(int(r.task_id), TaskStatus(r.status), r.name) for r in rows]
        return DigestPage(sum(counts.values()), counts, span[0], span[1], items)

    async def forget_digests(self, before: datetime) -> int:
        """Drop the tasks of digests older than ``before`` whose message state is gone
        (``ConsoleStore.delete_unused`` forgets the views themselves)."""
        async with self.db.write() as conn:
            result = await conn.execute(delete(DigestItemRow).where(
                DigestItemRow.at < before,
                ~exists().where(ConsoleStateRow.key == DigestItemRow.view_key)))
        return int(result.rowcount or 0)

    # --- what push messages say about a task ---------------------------------------------

    async def last_activity(self, task_ids: Iterable[int]) -> dict[int, datetime]:
        """When each task last did something of its own: its latest event that is not a
        bot-side message (``rules.NOT_ACTIVITY``: periodic progress updates, the result
        delivered to the parent). Tasks with no such event are left out.

        One short backward seek per task on (task_id, seq): only the tail of progress
        messages after the last own event is passed over."""
        result: dict[int, datetime] = {}
        skip = [k.value for k in rules.NOT_ACTIVITY]
        async with self.db.read() as conn:
            for task_id in task_ids:
                at = (await conn.execute(
                    select(TaskEventRow.at).where(TaskEventRow.task_id == task_id,
                                                  TaskEventRow.kind.not_in(skip))
                    .order_by(TaskEventRow.seq.desc()).limit(1))).scalar_one_or_none()
                if at is not None:
                    result[task_id] = at
        return result

    async def last_failed_tool_call(self, task_id: int, within: int = 50) -> TaskEvent | None:
        """The task's latest tool call that failed, among its last ``within`` tool calls."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(TaskEventRow).where(TaskEventRow.task_id == task_id,
                                           TaskEventRow.kind == EventKind.TOOL_CALL.value)
                .order_by(TaskEventRow.seq.desc()).limit(within))
            for row in rows:
                event = row_to_event(row)
                if event.payload.get("is_error"):
                    return event
        return None

    # --- alerts ---------------------------------------------------------------------------

    async def _insert_alert(self, conn: AsyncConnection, chat_id: int,
                            alert: NewAlert) -> int:
        now = self.db.clock()
        row = (await conn.execute(insert(AlertRow).values(
            chat_id=chat_id, task_id=alert.task_id, follow_task_id=alert.task_id,
            kind=alert.kind.value, view_key=alert.view_key, message_id=alert.message_id,
            group_key=alert.group_key, count=1, text=alert.text, lifecycle=[],
            seen_event_id=alert.seen_event_id, created_at=now,
            updated_at=now).returning(AlertRow.id))).one()
        return int(row.id)

    async def add_alert(self, chat_id: int, alert: NewAlert) -> Alert:
        """An alert sent outside the change feed (a stuck task)."""
        async with self.db.write() as conn:
            alert_id = await self._insert_alert(conn, chat_id, alert)
        found = await self.alert(alert_id)
        assert found is not None
        return found

    async def alert(self, alert_id: int) -> Alert | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(AlertRow).where(AlertRow.id == alert_id))).first()
        return _alert(row) if row else None

    async def alert_of_view(self, view_key: str) -> Alert | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(AlertRow).where(
                AlertRow.view_key == view_key).order_by(AlertRow.id.desc()).limit(1))).first()
        return _alert(row) if row else None

    async def alerts_of_view(self, view_key: str) -> list[Alert]:
        """Every alert a message carries (a digest carries one per task needing a person),
        oldest first."""
        async with self.db.read() as conn:
            rows = await conn.execute(select(AlertRow).where(
                AlertRow.view_key == view_key).order_by(AlertRow.id))
            return [_alert(r) for r in rows]

    async def ack_alerts_of_view(self, view_key: str, by: str) -> int:
        """Mark every alert of a message that is still open acked by ``by`` (one 🙋 on a
        digest takes all it carries); how many this call acked."""
        now = self.db.clock()
        async with self.db.write() as conn:
            result = await conn.execute(update(AlertRow).where(
                AlertRow.view_key == view_key, AlertRow.acked_at.is_(None),
                AlertRow.resolved_at.is_(None),
                AlertRow.kind != AlertKind.COMPLETED.value).values(
                acked_by=by, acked_at=now, updated_at=now))
            return int(result.rowcount or 0)

    async def latest_of_group(self, chat_id: int, group_key: str) -> Alert | None:
        """The newest message of a recurrence in a chat."""
        async with self.db.read() as conn:
            row = (await conn.execute(select(AlertRow).where(
                AlertRow.chat_id == chat_id, AlertRow.group_key == group_key)
                .order_by(AlertRow.id.desc()).limit(1))).first()
        return _alert(row) if row else None

    async def alerts_following(self, task_ids: list[int],
                               chat_id: int | None = None) -> list[Alert]:
        """Alerts whose lifecycle follows one of these tasks (in one chat, or all)."""
        if not task_ids:
            return []
        query = select(AlertRow).where(AlertRow.follow_task_id.in_(task_ids))
        if chat_id is not None:
            query = query.where(AlertRow.chat_id == chat_id)
        async with self.db.read() as conn:
            return [_alert(r) for r in await conn.execute(query.order_by(AlertRow.id))]

    async def update_alert(self, alert_id: int, **values: Any) -> None:
        async with self.db.write() as conn:
            await conn.execute(update(AlertRow).where(AlertRow.id == alert_id).values(
                updated_at=self.db.clock(), **values))

    async def ack_alert(self, alert_id: int, by: str) -> tuple[Alert | None, bool]:
        """Mark an alert acked by ``by``; (the alert as now, whether this call acked it)."""
        now = self.db.clock()
        async with self.db.write() as conn:
            result = await conn.execute(update(AlertRow).where(
                AlertRow.id == alert_id, AlertRow.acked_at.is_(None)).values(
                acked_by=by, acked_at=now, updated_at=now))
            acked = bool(result.rowcount)
        return await self.alert(alert_id), acked

    async def due_escalations(self, before: datetime) -> list[Alert]:
        """Group alerts sent before ``before`` that nobody acked, unresolved, not yet
        re-announced (groups have negative chat ids)."""
        async with self.db.read() as conn:
            rows = await conn.execute(select(AlertRow).where(and_(
                AlertRow.acked_at.is_(None), AlertRow.resolved_at.is_(None),
                AlertRow.escalated_at.is_(None), AlertRow.created_at <= before,
                AlertRow.chat_id < 0,
                AlertRow.kind != AlertKind.COMPLETED.value)).order_by(AlertRow.id))
            return [_alert(r) for r in rows]

    async def mark_escalated(self, alert_id: int) -> bool:
        """Claim an alert's one re-announcement; False if someone claimed it first."""
        now = self.db.clock()
        async with self.db.write() as conn:
            result = await conn.execute(update(AlertRow).where(
                AlertRow.id == alert_id, AlertRow.escalated_at.is_(None)).values(
                escalated_at=now, updated_at=now))
            return bool(result.rowcount)
