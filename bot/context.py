"""What handlers need, kept on the Application (never in globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from telegram.ext import Application, ContextTypes

from taskops.config import Settings
from taskops.storage.store import TaskStore

if TYPE_CHECKING:
    from taskops.bot.push.service import PushService


@dataclass
class Deps:
    settings: Settings
    store: TaskStore
    #: chats whose command menu has been set for an admin (group chats are learnt lazily)
    menu_chats: set[tuple[int, int]] = field(default_factory=set)
    #: fingerprint of what each auto-refreshed message last showed, to skip no-op edits
    rendered: dict[str, int] = field(default_factory=dict)
    #: the push jobs (notifications, live views, ...) while the console runs
    push: PushService | None = None


def deps_of(app: Application[Any, Any, Any, Any, Any, Any]) -> Deps:
    deps = app.bot_data["deps"]
    assert isinstance(deps, Deps)
    return deps


def deps(context: ContextTypes.DEFAULT_TYPE) -> Deps:
    return deps_of(context.application)
