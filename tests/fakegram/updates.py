"""The bot's update queue: getUpdates long polling and webhook delivery."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .models import ApiError

DEFAULT_EXCLUDED = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; use "
    "deleteWebhook to delete the webhook first"
)
CONFLICT_POLL = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot "
    "instance is running"
)


@dataclass
class Webhook:
    url: str
    secret_token: str | None = None
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None
    deliveries: list[tuple[int, int | str]] = field(default_factory=list)  # (update_id, status)


class UpdateQueue:
    def __init__(self, clock: Callable[[], float], retry_delay: float) -> None:
        self.clock = clock
        self.retry_delay = retry_delay
        self.updates: list[dict[str, Any]] = []
        self.allowed: frozenset[str] | None = None  # None: Telegram's default set
        self.webhook: Webhook | None = None
        self.next_update_id = 1
        self._changed = asyncio.Event()
        self._poll_token: object | None = None
        self._poll_error: dict[object, str] = {}
        self._closed = False
        self._worker: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    # --- queue ------------------------------------------------------------------------------
    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def wants(self, kind: str) -> bool:
        if self.allowed is None:
            return kind not in DEFAULT_EXCLUDED
        return kind in self.allowed

    def push(self, kind: str, payload: dict[str, Any]) -> int | None:
        """Queue an update; returns its id, or None when allowed_updates filters it out."""
        if not self.wants(kind):
            return None
        update_id = self.next_update_id
        self.next_update_id += 1
        self.updates.append({"update_id": update_id, kind: payload})
        self._notify()
        return update_id

    def set_allowed(self, raw: list[Any]) -> None:
        self.allowed = frozenset(str(k) for k in raw) if raw else None

    def confirm(self, offset: int) -> None:
        if offset > 0:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        elif offset < 0:
            self.updates = self.updates[offset:]

    def drop_pending(self) -> None:
        self.updates.clear()

    # --- long polling -----------------------------------------------------------------------
    async def poll(self, offset: int, limit: int, timeout: float) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise ApiError(409, CONFLICT_WEBHOOK)
        self.confirm(offset)
        previous = self._poll_token
        if previous is not None:
            self._poll_error[previous] = CONFLICT_POLL
        token = object()
        self._poll_token = token
        self._notify()
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while True:
                if token in self._poll_error:
                    raise ApiError(409, self._poll_error.pop(token))
                if self.updates or self._closed:
                    return self.updates[:limit]
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    return []
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)
        finally:
            self._poll_error.pop(token, None)
            if self._poll_token is token:
                self._poll_token = None

    # --- webhook ----------------------------------------------------------------------------
    def set_webhook(self, hook: Webhook | None) -> None:
        if hook is not None and self._poll_token is not None:
            self._poll_error[self._poll_token] = CONFLICT_WEBHOOK
        self.webhook = hook
        self._notify()
        if hook is not None and (self._worker is None or self._worker.done()):
            self._worker = asyncio.get_running_loop().create_task(self._deliver_loop())

    async def _deliver_loop(self) -> None:
        while not self._closed and self.webhook is not None:
            if not self.updates:
                await self._changed.wait()
                continue
            hook = self.webhook
            update = self.updates[0]
            status = await self._post(hook, update)
            hook.deliveries.append((update["update_id"], status))
            if isinstance(status, int) and 200 <= status < 300:
                if self.updates and self.updates[0] is update:
                    self.updates.pop(0)
                continue
            hook.last_error_date = int(self.clock())
            hook.last_error_message = (
                f"Wrong response from the webhook: {status}" if isinstance(status, int) else status
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait_closed(), self.retry_delay)

    async def _wait_closed(self) -> None:
        while not self._closed:
            await self._changed.wait()

    async def _post(self, hook: Webhook, update: dict[str, Any]) -> int | str:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        try:
            async with self._session.post(
                hook.url,
                data=json.dumps(update),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=10),
            ) as resp:
                await resp.read()
                return resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return f"Connection failed: {type(exc).__name__}"

    def pending_count(self) -> int:
        return len(self.updates)

    async def close(self) -> None:
        self._closed = True
        self._notify()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._worker
        if self._session is not None:
            await self._session.close()
            self._session = None
