"""The cluster as the store sees it: which taskops processes are connected, who leads.

Every long-lived taskops process keeps one dedicated PostgreSQL connection named
``taskops <role> <member>`` (``storage.notify.app_name``): a worker's kill listener, the
leader's lock session, a standby's wait for the lock. ``pg_stat_activity`` lists them, so
the database itself says who is up, with no table of heartbeats to keep. SQLite has no
such view: there, only the claims tell which workers hold tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from taskops.storage import feed, leader
from taskops.storage.db import Database
from taskops.storage.domain import TaskStatus
from taskops.storage.leader import Leadership, Role
from taskops.storage.models import ConsoleStateRow, SubscriptionRow, TaskEventRow, TaskRow
from taskops.storage.notify import APP_PREFIX

#: console_state rows of this kind hold a push consumer's cursor (bot.views.ViewKind)
CURSOR_KIND = "cursor"


@dataclass(frozen=True)
class Member:
    """One named connection of a taskops process."""

    #: the whole application_name, e.g. "taskops worker host:123:ab12cd"
    name: str
    role: str
    member: str
    #: when the connection was made (the process's start, or its last reconnect)
    since: datetime | None
    client: str | None
    #: "idle", "active" (a standby waiting for the lock is active), ...
    state: str | None


async def members(db: Database) -> list[Member]:
    if db.is_sqlite:
        return []
    async with db.read() as conn:
        rows = await conn.execute(text(
            "SELECT application_name, backend_start, client_addr::text AS client, state "
            "FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name LIKE :prefix ORDER BY application_name"),
            {"prefix": f"{APP_PREFIX} %"})
        out = []
        for r in rows:
            parts = r.application_name.split(" ", 2)
            out.append(Member(r.application_name, parts[1] if len(parts) > 1 else "",
                              parts[2] if len(parts) > 2 else "", r.backend_start,
                              r.client, r.state))
        return out


def _ago(now: datetime, at: datetime | None) -> str:
    if at is None:
        return "-"
    seconds = (at - now).total_seconds()
    when = at.strftime("%H:%M:%S")
    return f"{when} (in {seconds:.0f}s)" if seconds >= 0 else f"{when} ({-seconds:.0f}s ago)"


#: cursor lag is counted up to this many events (a count, not a scan of the whole feed)
LAG_CAP = 100_000


@dataclass(frozen=True)
class WorkerClaims:
    worker_id: str
    running: int
    #: the soonest lease to run out among its tasks (None: claimed without a lease)
    lease_until: datetime | None
    #: whether the worker's named connection is up (None: not known, SQLite)
    connected: bool | None


@dataclass(frozen=True)
class CursorLag:
    #: "chat <id>" for a subscription, the consumer's key otherwise
    name: str
    cursor: str
    #: events after the cursor (capped at LAG_CAP)
    events: int
    #: how old the oldest event not yet past the cursor is, in seconds (0: none)
    seconds: float


@dataclass(frozen=True)
class ClusterStatus:
    engine: str
    now: datetime
    members: list[Member]
    workers: list[WorkerClaims]
    unclaimed_running: int
    new_tasks: int
    paused: int
    cursors: list[CursorLag]
    #: SQLite: whether a process holds the console's file lock (PostgreSQL: see members)
    file_lock_held: bool | None = None

    def describe(self) -> str:
        """``taskops status`` as text."""
        now = self.now
        out = [f"taskops cluster: {self.engine}, {now:%Y-%m-%d %H:%M:%S} UTC"]
        by_role: dict[str, list[Member]] = {}
        for m in self.members:
            by_role.setdefault(m.role, []).append(m)
        if self.engine == "sqlite":
            out.append("leader:   " + ("a process holds the console's file lock"
                                       if self.file_lock_held else "none (no taskops run is up)"))
        else:
            leaders = by_role.get("leader", [])
            if not leaders:
                out.append("leader:   none" + (" (a standby takes over within seconds)"
                                               if by_role.get("standby") else ""))
            for m in leaders:
                out.append(f"leader:   {m.member} (since {_ago(now, m.since)}, "
                           f"{m.client or 'local'})")
            for m in by_role.get("standby", []):
                out.append(f"standby:  {m.member} (since {_ago(now, m.since)}, "
                           f"{m.client or 'local'})")
        out.append(f"workers:  {len(self.workers)}")
        for w in self.workers:
            state = {True: "connected", False: "NOT CONNECTED", None: ""}[w.connected]
            lease = _ago(now, w.lease_until)
            expired = w.lease_until is not None and w.lease_until < now
            out.append(f"  {w.worker_id:<34} {state:<13} running {w.running:>3}  lease until "
                       f"{lease}{'  EXPIRED: taken over at the next check' if expired else ''}")
        out.append(f"tasks:    {self.new_tasks} waiting for a worker, "
                   f"{self.unclaimed_running} running without a worker (answered or given "
                   f"back), {self.paused} paused")
        out.append("push cursors (behind the change feed):")
        if not self.cursors:
            out.append("  none")
        for c in self.cursors:
            more = "+" if c.events >= LAG_CAP else ""
            lag = (f"{c.events}{more} event(s), oldest {c.seconds:.1f}s old" if c.events
                   else "up to date")
            out.append(f"  {c.name:<24} {lag}")
        return "\n".join(out)


def _member_of(worker_id: str, members: list[Member]) -> bool:
    return any(m.member == worker_id for m in members)


async def _lag(conn: AsyncConnection, cursor: str, now: datetime) -> tuple[int, float]:
    txid, last = feed.parse_cursor(cursor)
    if conn.dialect.name == "sqlite":
        after: Any = TaskEventRow.id > last
    else:
        after = or_(TaskEventRow.txid > txid,
                    and_(TaskEventRow.txid == txid, TaskEventRow.id > last))
    ahead = select(TaskEventRow.at).where(after).limit(LAG_CAP).subquery()
    count, oldest = (await conn.execute(select(func.count(), func.min(ahead.c.at)))).one()
    if isinstance(oldest, str):  # SQLite loses the column type in the subquery
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return int(count), max((now - oldest).total_seconds(), 0.0) if oldest else 0.0


async def status(db: Database) -> ClusterStatus:
    """The cluster as the store sees it (``taskops status``)."""
    found = await members(db)
    now = db.clock()
    async with db.read() as conn:
        running = [TaskRow.finished_at.is_(None), TaskRow.status == TaskStatus.RUNNING.value]
        rows = await conn.execute(
            select(TaskRow.claimed_by, func.count(), func.min(TaskRow.lease_until))
            .where(*running, TaskRow.started_at.is_not(None), TaskRow.claimed_by.is_not(None))
            .group_by(TaskRow.claimed_by).order_by(TaskRow.claimed_by))
        workers = {str(r[0]): WorkerClaims(str(r[0]), int(r[1]), r[2],
                                           None if db.is_sqlite else _member_of(str(r[0]), found))
                   for r in rows}
        for m in found:
            if m.role == "worker" and m.member not in workers:
                workers[m.member] = WorkerClaims(m.member, 0, None, True)
        unclaimed = (await conn.execute(select(func.count()).where(
            *running, TaskRow.started_at.is_not(None), TaskRow.claimed_by.is_(None)))
        ).scalar_one()
        new = (await conn.execute(select(func.count()).where(
            *running, TaskRow.started_at.is_(None)))).scalar_one()
        paused = (await conn.execute(select(func.count()).where(
            TaskRow.finished_at.is_(None), TaskRow.status == TaskStatus.PAUSED.value))
        ).scalar_one()
        consumers = [(f"chat {r.chat_id}", r.cursor) for r in await conn.execute(
            select(SubscriptionRow.chat_id, SubscriptionRow.cursor)
            .order_by(SubscriptionRow.chat_id))]
        consumers += [(r.key, str((r.body or {}).get("cursor", ""))) for r in
                      await conn.execute(select(ConsoleStateRow.key, ConsoleStateRow.body)
                                         .where(ConsoleStateRow.kind == CURSOR_KIND)
                                         .order_by(ConsoleStateRow.key))]
        cursors = []
        for name, cursor in consumers:
            events, seconds = await _lag(conn, cursor, now)
            cursors.append(CursorLag(name, cursor, events, seconds))
    held = await leader.is_led(db, leader.CONSOLE) if db.is_sqlite else None
    return ClusterStatus("sqlite" if db.is_sqlite else "postgresql", now, found,
                         list(workers.values()), int(unclaimed), int(new), int(paused),
                         cursors, held)


class ClusterStore:
    """``store.cluster``: the processes sharing the store, as PostgreSQL sees them, and
    this process's part in the fenced leader election (``storage.leader.Leadership``)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._leaderships: dict[str, Leadership] = {}

    async def members(self) -> list[Member]:
        """The taskops processes connected to the database, by their named connection
        (PostgreSQL; empty on SQLite)."""
        return await members(self.db)

    async def status(self) -> ClusterStatus:
        """Leader, standbys, workers with their leases and running counts, and the lag of
        each push cursor behind the change feed (``taskops status``)."""
        return await status(self.db)

    def leadership(self, name: str, member: str, **timing: float) -> Leadership:
        """The election of ``name`` among the processes sharing the store; this process's
        role in it is then :meth:`role`."""
        self._leaderships[name] = Leadership(self.db, name, member, **timing)
        return self._leaderships[name]

    def role(self, name: str = leader.CONSOLE) -> Role | None:
        """This process's role in the election of ``name`` (leader, standby, ...), or None
        when it takes no part (a ``taskops worker``): for health checks."""
        chosen = self._leaderships.get(name)
        return chosen.role if chosen is not None else None
