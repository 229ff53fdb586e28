"""Console state: list and detail views, prompts and drafts, addressed by short keys.

Buttons carry only a key; what they act on lives here, so they keep working after a
restart and across bot replicas. Also the audit log of admin actions.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update

from taskops.storage.db import Engines
from taskops.storage.models import AuditRow, ConsoleStateRow

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


def _record(row: Any) -> ViewRecord:
    return ViewRecord(row.key, row.kind, row.chat_id, row.message_id, dict(row.body),
                      row.updated_at)


def new_key() -> str:
    return "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_LENGTH))


class ConsoleStore:
    def __init__(self, engines: Engines, clock: Callable[[], datetime]) -> None:
        self.engines = engines
        self.clock = clock

    async def create(self, kind: str, chat_id: int, body: dict[str, Any],
                     message_id: int | None = None, key: str | None = None) -> str:
        key = key or new_key()
        now = self.clock()
        async with self.engines.write.begin() as conn:
            await conn.execute(insert(ConsoleStateRow).values(
                key=key, kind=kind, chat_id=chat_id, message_id=message_id, body=body,
                created_at=now, updated_at=now))
        return key

    async def get(self, key: str) -> ViewRecord | None:
        async with self.engines.read.connect() as conn:
            row = (await conn.execute(select(ConsoleStateRow).where(
                ConsoleStateRow.key == key))).first()
        return _record(row) if row else None

    async def save(self, key: str, body: dict[str, Any], *, message_id: int | None = None,
                   kind: str | None = None, touch: bool = True) -> None:
        """Replace a view's body; ``touch`` marks it as the chat's most recent view."""
        values: dict[str, Any] = {"body": body}
        if touch:
            values["updated_at"] = self.clock()
        if message_id is not None:
            values["message_id"] = message_id
        if kind is not None:
            values["kind"] = kind
        async with self.engines.write.begin() as conn:
            await conn.execute(update(ConsoleStateRow).where(ConsoleStateRow.key == key)
                               .values(**values))

    async def find(self, chat_id: int, message_id: int, kind: str) -> ViewRecord | None:
        """The state of a given kind attached to a message (e.g. a reply prompt)."""
        async with self.engines.read.connect() as conn:
            row = (await conn.execute(select(ConsoleStateRow).where(
                ConsoleStateRow.chat_id == chat_id, ConsoleStateRow.message_id == message_id,
                ConsoleStateRow.kind == kind).limit(1))).first()
        return _record(row) if row else None

    async def latest(self, chat_id: int, kinds: tuple[str, ...]) -> ViewRecord | None:
        """The chat's most recently used view of the given kinds."""
        async with self.engines.read.connect() as conn:
            row = (await conn.execute(
                select(ConsoleStateRow)
                .where(ConsoleStateRow.chat_id == chat_id, ConsoleStateRow.kind.in_(kinds))
                .order_by(ConsoleStateRow.updated_at.desc(), ConsoleStateRow.key)
                .limit(1))).first()
        return _record(row) if row else None

    async def used_since(self, kind: str, since: datetime) -> list[ViewRecord]:
        async with self.engines.read.connect() as conn:
            rows = await conn.execute(select(ConsoleStateRow).where(
                ConsoleStateRow.kind == kind, ConsoleStateRow.updated_at >= since))
            return [_record(r) for r in rows]

    async def delete(self, key: str) -> None:
        async with self.engines.write.begin() as conn:
            await conn.execute(delete(ConsoleStateRow).where(ConsoleStateRow.key == key))

    async def delete_unused(self, before: datetime) -> int:
        async with self.engines.write.begin() as conn:
            result = await conn.execute(delete(ConsoleStateRow).where(
                ConsoleStateRow.updated_at < before))
            return int(result.rowcount or 0)

    async def audit(self, *, actor_id: int, actor_name: str, action: str,
                    task_id: int | None, outcome: str) -> None:
        async with self.engines.write.begin() as conn:
            await conn.execute(insert(AuditRow).values(
                at=self.clock(), actor_id=actor_id, actor_name=actor_name[:200], action=action,
                task_id=task_id, outcome=outcome))

    async def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        async with self.engines.read.connect() as conn:
            rows = await conn.execute(select(AuditRow).order_by(AuditRow.id.desc()).limit(limit))
            return [dict(r._mapping) for r in rows]
