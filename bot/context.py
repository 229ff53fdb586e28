"""What handlers need, kept on the Application (never in globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from telegram.ext import Application, ContextTypes

from taskops.bot.delivery import Telegram
from taskops.config import Settings
from taskops.storage.console import VIEW_IDLE_SECONDS
from taskops.storage.recent import RecentMap
from taskops.storage.signals import TaskChange
from taskops.storage.store import TaskStore


class PushJobs(Protocol):
    """What the console needs of the push side (bot/push/service.py), without importing it."""

    def poke(self, change: TaskChange | None = None) -> None:
        """Something may be new in the feed; without a change: the subscriptions changed."""


#: console messages whose last render and keyboard this process remembers: the most
#: recently used, each for as long as the view cache keeps its view (storage/console.py);
#: a message forgotten here is edited and its view read from the store, as after a restart
MESSAGES_KEPT = 4096
MESSAGE_IDLE_SECONDS = VIEW_IDLE_SECONDS


@dataclass
class Deps:
    settings: Settings
    store: TaskStore
    #: the bot as the push side and the auto-refresh call it: paced, retried, classified
    telegram: Telegram
    #: chats whose command menu has been set for an admin (group chats are learnt lazily)
    menu_chats: set[tuple[int, int]] = field(default_factory=set)
    #: fingerprint of what each console message last showed, to skip no-op edits
    rendered: RecentMap[str, int] = field(default_factory=lambda: RecentMap(
        MESSAGES_KEPT, MESSAGE_IDLE_SECONDS, idle=True))
    #: the keyboard each console message got from this process (``ui.keyboard_print``): a
    #: press on a message still showing it acts on the cached view (bot/press.py)
    keyboards: RecentMap[str, int] = field(default_factory=lambda: RecentMap(
        MESSAGES_KEPT, MESSAGE_IDLE_SECONDS, idle=True))
    #: the push jobs (notifications, live views, ...) while the console runs
    push: PushJobs | None = None


def deps_of(app: Application[Any, Any, Any, Any, Any, Any]) -> Deps:
    deps = app.bot_data["deps"]
    assert isinstance(deps, Deps)
    return deps


def deps(context: ContextTypes.DEFAULT_TYPE) -> Deps:
    return deps_of(context.application)
