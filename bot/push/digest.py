"""Per-chat delivery state: the open digest, recent single notifications, send times.

Saved with the chat's cursor in one transaction (``store.push.advance``), so a restart
knows which digest it may still extend and how recently the chat was sent to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from taskops.storage.domain import TaskStatus
from taskops.storage.push_store import DigestItem

#: send times kept for pacing after a restart (covers a group's minute window)
SENT_KEPT = 25


@dataclass
class Digest:
    #: the console view behind the digest message (its buttons carry this key)
    key: str
    message_id: int
    #: wall-clock seconds of the first and the latest change it took in
    started: float
    updated: float
    total: int = 0
    counts: dict[TaskStatus, int] = field(default_factory=dict)
    #: newest first, its first page (bot/digest_view.py); all of them are in the store
    items: list[DigestItem] = field(default_factory=list)

    def add(self, items: list[DigestItem], keep: int) -> None:
        for item in items:
            self.counts[item.status] = self.counts.get(item.status, 0) + 1
        self.total += len(items)
        self.items = (list(reversed(items)) + self.items)[:keep]

    def is_open(self, now: float, window: float, max_span: float) -> bool:
        """Still extended in place: the burst goes on and the digest is not too old."""
        return now - self.updated <= window and now - self.started <= max_span

    @property
    def status(self) -> TaskStatus | None:
        """The one status all its changes have, if so."""
        return next(iter(self.counts)) if len(self.counts) == 1 else None

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "message_id": self.message_id, "started": self.started,
                "updated": self.updated, "total": self.total,
                "counts": {s.value: n for s, n in self.counts.items()},
                "items": [i.to_json() for i in self.items]}

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Digest:
        return cls(str(body["key"]), int(body["message_id"]), float(body["started"]),
                   float(body["updated"]), int(body.get("total", 0)),
                   {TaskStatus(s): int(n) for s, n in body.get("counts", {}).items()},
                   [DigestItem.from_json(i) for i in body.get("items", [])])


@dataclass
class DeliveryState:
    digest: Digest | None = None
    #: wall-clock seconds of single notifications (the digest threshold counts them)
    singles: list[float] = field(default_factory=list)
    #: wall-clock seconds of every message and edit sent (for pacing after a restart)
    sent: list[float] = field(default_factory=list)
    #: the feed cursor just past a message Telegram did not confirm: it may have arrived,
    #: so the next send of it is its one repeat (bot/delivery.py)
    unconfirmed: str | None = None

    def recent_singles(self, now: float, window: float) -> int:
        self.singles = [t for t in self.singles if t > now - window]
        return len(self.singles)

    def record_send(self, now: float, single: bool = False) -> None:
        self.sent = [*self.sent[-(SENT_KEPT - 1):], now]
        if single:
            self.singles.append(now)

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest.to_json() if self.digest else None,
                "singles": self.singles, "sent": self.sent, "unconfirmed": self.unconfirmed}

    @classmethod
    def from_json(cls, body: dict[str, Any] | None) -> DeliveryState:
        if not body:
            return cls()
        try:
            digest = Digest.from_json(body["digest"]) if body.get("digest") else None
        except (KeyError, TypeError, ValueError):
            digest = None
        unconfirmed = body.get("unconfirmed")
        return cls(digest, [float(t) for t in body.get("singles", [])],
                   [float(t) for t in body.get("sent", [])],
                   str(unconfirmed) if unconfirmed else None)
