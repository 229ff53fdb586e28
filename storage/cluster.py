"""The cluster as the store sees it: which taskops processes are connected, who leads.

Every long-lived taskops process keeps one dedicated PostgreSQL connection named
``taskops <role> <member>`` (``storage.notify.app_name``): a worker's kill listener, the
leader's lock session, a standby's wait for the lock. ``pg_stat_activity`` lists them, so
the database itself says who is up, with no table of heartbeats to keep. SQLite has no
such view: there, only the claims tell which workers hold tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from taskops.storage.db import Database
from taskops.storage.notify import APP_PREFIX


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
