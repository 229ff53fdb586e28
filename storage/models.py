"""SQLAlchemy tables. Only ``storage`` imports this module."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from taskops.storage import rules


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC on both engines, hands out aware UTC datetimes.

    SQLite has no time zones and PostgreSQL's ``timestamptz`` would convert on read;
    one convention for both keeps comparisons and sorting identical.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime  # see SafeString.python_type

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class SafeString(TypeDecorator[str]):
    """Text as it enters the store: NUL and lone surrogates replaced (rules.clean_text),
    the same on both engines, whatever the entry point."""

    impl = String
    cache_ok = True

    @property
    def python_type(self) -> type[str]:
        # TypeDecorator's own says ``object``: list_query's PostgreSQL steering
        # (``_pg_opaque``) picks the no-op expression by it (``x || ''`` for text).
        return str

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else rules.clean_text(value)


class SafeText(SafeString):
    impl = Text
    cache_ok = True


class JSONPayload(TypeDecorator[Any]):
    """JSON (JSONB on PostgreSQL) whose every string is cleaned on the way in (rules.clean)."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        return dialect.type_descriptor(JSONB() if dialect.name == "postgresql" else JSON())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return rules.clean(value)


BigInt = BigInteger().with_variant(Integer(), "sqlite")  # SQLite rowids must be INTEGER


class Base(DeclarativeBase):
    pass


class TaskRow(Base):
    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(SafeString(200))
    #: casefolded name for the name sort; byte order ("C") on PostgreSQL so both engines
    #: sort names identically
    sort_name: Mapped[str] = mapped_column(
        String(200).with_variant(String(200, collation="C"), "postgresql"))
    prompt: Mapped[str] = mapped_column(SafeText)
    status: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(16))
    trigger_source_id: Mapped[int | None] = mapped_column(BigInt)
    provider: Mapped[str | None] = mapped_column(SafeString(100))
    model: Mapped[str | None] = mapped_column(SafeString(200))
    used_default: Mapped[bool] = mapped_column(Boolean, default=False)
    max_duration_minutes: Mapped[int] = mapped_column(Integer)
    parent_session: Mapped[str | None] = mapped_column(SafeString(100))
    restarted_from_id: Mapped[int | None] = mapped_column(BigInt, ForeignKey("tasks.id"))
    #: caller-supplied idempotency key of a restart; the same key makes one task
    restart_key: Mapped[str | None] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: finished_at - started_at, stored at the end so the duration sort can use an index
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    #: prompt + completion, kept in step so the tokens sort can use an index
    total_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    tool_call_count: Mapped[int] = mapped_column(Integer, default=0)
    result_status: Mapped[str | None] = mapped_column(String(16))
    summary: Mapped[str | None] = mapped_column(SafeText)
    error: Mapped[str | None] = mapped_column(SafeText)
    killed_by: Mapped[str | None] = mapped_column(SafeString(200))
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    #: worker lease: which worker runs it and until when the claim holds
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: fencing token: raised by every claim, so the writes of a run are accepted only
    #: while the task still carries the claim it was started under (storage.journal)
    claim_token: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (
        # Unfinished tasks are few: the duration sort and the worker read them by this.
        Index("ix_tasks_unfinished", "status", "started_at",
              sqlite_where=text("finished_at IS NULL"),
              postgresql_where=text("finished_at IS NULL")),
        # The duration sort counts never-started tasks under the filters on every page;
        # the worker claims from it.
        Index("ix_tasks_never_started_facets", "status", "trigger", "provider", "model",
              "used_default", "created_at", "id",
              sqlite_where=text("started_at IS NULL"),
              postgresql_where=text("started_at IS NULL")),
        Index("ix_tasks_restarted_from", "restarted_from_id"),
        # Room on each heap page for heap-only updates of a running task's (unindexed)
        # counters, which every journal batch writes (migration 0008).
        {"postgresql_with": {"fillfactor": 70}},
    )


# Unknown cost sorts as the lowest on both engines (their NULL order differs).
COST_SORT_KEY = func.coalesce(TaskRow.cost_usd, literal_column("-1.0"))

# --- the list's indexes (storage/list_order.py chooses among them) ---------------------
#: The filter columns. Every list index carries all of them (and created_at), so a walk
#: tests the filters its range does not hold from the index alone: reading the row
#: instead costs as much as some twenty index entries at a million tasks.
FILTER_COLUMNS = ("status", "trigger", "provider", "model", "used_default")
#: The equality filters' leading columns, each with a (filter, sort key, id) index per
#: sort key: a one-filter page in any order is a range, and a deep page skips in it alone.
FACET_COLUMNS = {"status": ("status",), "trigger": ("trigger",),
                 "provider": ("provider", "model"), "default": ("used_default",)}
#: Each sort key's leading columns, ending in id so ties break the same way everywhere.
#: cost_usd rides along because PostgreSQL only answers from an expression index alone
#: when the expression's column is in it.
SORT_COLUMNS: dict[str, tuple[Any, ...]] = {
    "created": ("created_at", "id"),
    "name": ("sort_name", "id"),
    "tokens": ("total_tokens", "id"),
    "cost": (COST_SORT_KEY, "id", "cost_usd"),
    "duration": ("duration_ms", "id"),
}
#: What follows the filters: created_at for the date range, and in the name indexes every
#: sort key too, so a search reads the tasks of its names from the index alone.
TAIL_COLUMNS = {"created": (), "name": ("created_at", "total_tokens", "cost_usd", "duration_ms")}


def list_index_layout() -> dict[str, list[Any]]:
    """Name → columns of every list index (the migration 0003 writes the same)."""
    out: dict[str, list[Any]] = {}
    for key, sort_cols in SORT_COLUMNS.items():
        tail = list(TAIL_COLUMNS.get(key, ("created_at",)))
        out[f"ix_tasks_{key}"] = [*sort_cols, *FILTER_COLUMNS, *tail]
        for facet, lead in FACET_COLUMNS.items():
            rest = [c for c in FILTER_COLUMNS if c not in lead]
            out[f"ix_tasks_{facet}_{key}"] = [*lead, *sort_cols, *rest, *tail]
    # "What failed from cronjobs": the on-call admin's most common pair of filters.
    out["ix_tasks_status_trigger_created"] = ["status", "trigger", "created_at", "id",
                                              "provider", "model", "used_default"]
    return out


for _name, _columns in list_index_layout().items():
    Index(_name, *(getattr(TaskRow, c) if isinstance(c, str) else c for c in _columns))


class TaskEventRow(Base):
    __tablename__ = "task_events"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(BigInt, ForeignKey("tasks.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONPayload)
    #: PostgreSQL transaction id of the writer, so the change feed can read in commit-safe
    #: order (ids from a sequence become visible out of order); NULL on SQLite.
    txid: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("task_id", "seq", name="uq_task_events_task_seq"),
        Index("ix_task_events_txid", "txid", "id"),
    )


class TaskNameRow(Base):
    """Every distinct ``tasks.sort_name``: what a search looks words up in.

    Filled by a trigger on ``tasks`` (migration 0003), so every writer keeps it in step;
    never pruned (a name whose tasks are gone matches no task). Searched through a trigram
    index the migration also creates: an FTS5 table ``task_names_fts`` on SQLite, a GIN
    index over ``taskops_trigrams(sort_name)`` on PostgreSQL.
    """

    __tablename__ = "task_names"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    sort_name: Mapped[str] = mapped_column(
        String(200).with_variant(String(200, collation="C"), "postgresql"), unique=True)


class TaskCountRow(Base):
    """Task counts per local day and facet, so the list's total needs no scan.

    Kept in step by every insert and status change, in the same transaction. Keyed by the
    day in ``[ui] timezone``; rebuilt when that setting changes (see ``meta``).
    """

    __tablename__ = "task_counts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    trigger: Mapped[str] = mapped_column(String(16), primary_key=True)
    provider: Mapped[str] = mapped_column(String(100), primary_key=True)  # "" when unknown
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    used_default: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)

    # Every list page sums the counts per facet combination: in index order, no sort.
    __table_args__ = (Index("ix_task_counts_facets", "status", "trigger", "provider", "model",
                            "used_default", "day", "n"),)


class TaskTotalRow(Base):
    """``task_counts`` summed over the days: task counts per facet combination.

    Every list page without a date filter reads its totals here (about a hundred rows)
    instead of summing a month of day counters (thousands); kept in step with
    ``task_counts`` by the same writers, in the same transaction (``storage/counts.py``).
    """

    __tablename__ = "task_totals"

    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    trigger: Mapped[str] = mapped_column(String(16), primary_key=True)
    provider: Mapped[str] = mapped_column(String(100), primary_key=True)  # "" when unknown
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    used_default: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class MetaRow(Base):
    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class CronjobRow(Base):
    __tablename__ = "cronjobs"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(SafeString(200), unique=True)
    schedule: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64))
    prompt: Mapped[str] = mapped_column(SafeText)
    provider: Mapped[str | None] = mapped_column(String(100))
    model: Mapped[str | None] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_run_task_id: Mapped[int | None] = mapped_column(BigInt)
    last_run_status: Mapped[str | None] = mapped_column(String(16))


class ConsoleStateRow(Base):
    """Console state addressed by a short key from callback data.

    ``kind`` says what it is (a list view, a detail view, a restart draft, ...); the body
    is JSON owned by the bot. Lives in the store so buttons survive restarts and
    replicas.
    """

    __tablename__ = "console_state"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    body: Mapped[dict[str, Any]] = mapped_column(JSONPayload)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_console_state_chat", "chat_id", "kind", "updated_at"),)


class SubscriptionRow(Base):
    __tablename__ = "subscriptions"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONPayload)
    #: change-feed position confirmed delivered to this chat
    cursor: Mapped[str] = mapped_column(String(64), default="")
    muted_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AlertRow(Base):
    """A push message about a task that is an object with a lifecycle (DESIGN.md, "Push"):
    a failure, pause, stuck or loop alert — acked by whom, escalated when, resolved how —
    or the one message a recurring task's runs that keep ending the same way update.

    ``follow_task_id`` is the task whose fate the lifecycle line shows (after a restart,
    the new run); ``group_key`` the recurrence (cronjob or name) the message counts runs
    of. ``text`` is the message's body as first rendered; the lifecycle, the ack and the
    buttons are rendered around it.
    """

    __tablename__ = "push_alerts"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    task_id: Mapped[int] = mapped_column(BigInt)
    follow_task_id: Mapped[int] = mapped_column(BigInt)
    kind: Mapped[str] = mapped_column(String(16))
    view_key: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    group_key: Mapped[str | None] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer, default=1)
    text: Mapped[str] = mapped_column(SafeText)
    lifecycle: Mapped[list[Any]] = mapped_column(JSONPayload)
    #: the last change-feed event id applied to the lifecycle (a repeat is skipped)
    seen_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acked_by: Mapped[str | None] = mapped_column(SafeString(200))
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_push_alerts_follow", "follow_task_id"),
        Index("ix_push_alerts_group", "chat_id", "group_key", "id"),
        Index("ix_push_alerts_view", "view_key"),
        Index("ix_push_alerts_open", "acked_at", "resolved_at", "escalated_at", "created_at"),
    )


class DigestItemRow(Base):
    """One task of a digest message ("🔔 N tasks changed status"), in the order the
    changes came (``seq`` from 0), so every task of a digest stays reachable page by page
    however long the burst; the message's header counts are read from these rows too."""

    __tablename__ = "push_digest_items"

    view_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(BigInt)
    #: the status the change brought (the digest tells what happened, not what is now)
    status: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(SafeString(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditRow(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int] = mapped_column(BigInteger)
    actor_name: Mapped[str] = mapped_column(SafeString(200))
    action: Mapped[str] = mapped_column(String(32))
    task_id: Mapped[int | None] = mapped_column(BigInt)
    outcome: Mapped[str] = mapped_column(SafeText)
    #: the chat the action came from (None for rows written before 0005)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_audit_log_actor", "actor_id", "id"),
                      Index("ix_audit_log_action", "action", "id"))


class SavedViewRow(Base):
    """A list view (filters and sort) saved under a name for one chat; the body is JSON
    owned by the bot."""

    __tablename__ = "saved_views"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(SafeString(64))
    body: Mapped[dict[str, Any]] = mapped_column(JSONPayload)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("chat_id", "name", name="uq_saved_views_chat_name"),)


__all__ = ["AlertRow", "AuditRow", "Base", "ConsoleStateRow", "CronjobRow", "DigestItemRow",
           "MetaRow",
           "SavedViewRow",
           "SubscriptionRow", "TaskCountRow", "TaskEventRow", "TaskNameRow", "TaskRow",
           "TaskTotalRow"]
