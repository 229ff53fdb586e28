"""The change feed: every task event, read after a cursor, never skipping one.

SQLite has one writer at a time, so event ids commit in order and the cursor is the last
id. On PostgreSQL ids from a sequence can become visible out of order (id 101 committed
while id 100 is still in flight), so the feed is ordered by (writer transaction id, id)
and only reads transactions older than every one still in flight: nothing can later
appear behind the cursor.

Transaction ids are server-wide, but events are only written in this database: a
transaction in flight that a session of *another* database holds (a long batch job, an
"idle in transaction" session of another application on the same server) cannot write
one, so it does not hold the horizon back (with it, push stalled for as long as such a
transaction ran: the fault bench lost 6 to 30 notifications per scenario while another
process seeded a million rows elsewhere on the server). Only transactions positively
seen in another database (pg_stat_activity) are passed over; any other, including one
whose session cannot be seen, still holds the horizon. The price that remains: a write
transaction left open in this database delays the feed until it ends. It never loses an
event; operators should keep such sessions short (idle_in_transaction_session_timeout).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from taskops.storage.domain import StoreError, TaskEvent
from taskops.storage.models import TaskEventRow
from taskops.storage.rows import row_to_event

#: the oldest transaction still in flight that may write here (in flight: in the
#: statement's snapshot; may write here: not seen holding that id in another database):
#: every writer below it has committed or aborted. ``backend_xid`` is the id's low 32 bits.
PG_HORIZON = """(SELECT coalesce(
    (SELECT min(x::text::bigint) FROM pg_snapshot_xip(pg_current_snapshot()) AS x
      WHERE x::text::bigint % 4294967296 NOT IN (
        SELECT a.backend_xid::text::bigint FROM pg_stat_activity AS a
         WHERE a.backend_xid IS NOT NULL
           AND a.datname IS DISTINCT FROM current_database())),
    pg_snapshot_xmax(pg_current_snapshot())::text::bigint))"""


@dataclass(frozen=True)
class FeedBatch:
    events: list[TaskEvent]
    #: pass back to read_changes to continue after the last event returned
    cursor: str


def parse_cursor(cursor: str) -> tuple[int, int]:
    if not cursor:
        return 0, 0
    try:
        txid, _, last = cursor.partition(":")
        return int(txid), int(last)
    except ValueError:
        raise StoreError(f"bad change-feed cursor {cursor!r}") from None


async def read_changes(conn: AsyncConnection, cursor: str, limit: int) -> FeedBatch:
    txid, last_id = parse_cursor(cursor)
    if conn.dialect.name == "sqlite":
        rows = list(await conn.execute(
            select(TaskEventRow).where(TaskEventRow.id > last_id)
            .order_by(TaskEventRow.id).limit(limit)))
        new_cursor = f"0:{rows[-1].id}" if rows else cursor or "0:0"
    else:
        horizon: Any = literal_column(PG_HORIZON)
        # ``txid >= cursor``, implied by the OR, is what the (txid, id) index range starts
        # at: without it PostgreSQL walked every event below the horizon and filtered
        # (2.2 s cold, ~100 ms warm, each poll of a 10M-event store; bench/list_bot.py).
        rows = list(await conn.execute(
            select(TaskEventRow).where(
                TaskEventRow.txid >= txid,
                or_(TaskEventRow.txid > txid,
                    and_(TaskEventRow.txid == txid, TaskEventRow.id > last_id)),
                TaskEventRow.txid < horizon)
            .order_by(TaskEventRow.txid, TaskEventRow.id).limit(limit)))
        new_cursor = f"{rows[-1].txid}:{rows[-1].id}" if rows else cursor or "0:0"
    return FeedBatch([row_to_event(r) for r in rows], new_cursor)


async def first_after(conn: AsyncConnection, cursor: str) -> datetime | None:
    """When the first event after ``cursor`` was written (None: there is none yet)."""
    batch = await read_changes(conn, cursor, 1)
    return batch.events[0].at if batch.events else None


async def held_back_since(conn: AsyncConnection) -> datetime | None:
    """When the oldest event the feed cannot read yet was written: on PostgreSQL one whose
    transaction id is not below the horizon (None: none; always None on SQLite)."""
    if conn.dialect.name == "sqlite":
        return None
    horizon: Any = literal_column(PG_HORIZON)
    return (await conn.execute(select(func.min(TaskEventRow.at))
                               .where(TaskEventRow.txid >= horizon))).scalar()


async def head(conn: AsyncConnection) -> str:
    """A cursor at the current end of the feed."""
    if conn.dialect.name == "sqlite":
        last = (await conn.execute(select(func.max(TaskEventRow.id)))).scalar()
        return f"0:{last or 0}"
    horizon: int = (await conn.execute(select(literal_column(PG_HORIZON)))).scalar_one()
    return f"{horizon - 1}:{2**62}"
