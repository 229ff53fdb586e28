"""The state behind a console message (a "view"), stored under the key in its buttons."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from typing import Any

from taskops.storage.console import ViewRecord
from taskops.storage.domain import ListFilters, ProviderChoice, Sort, SortField, TaskStatus, Trigger


class ViewKind(StrEnum):
    """What a row of console state is (its ``kind``); only the first three are messages a
    person works in."""

    #: a console message opened by a command (/tasks, /task, /kill_task)
    LIST = "list"
    #: a single notification or stuck notice the push side sent
    NOTICE = "notice"
    #: a digest of many notifications
    DIGEST = "digest"
    #: a chat's /notifications settings message
    SETTINGS = "subscription"
    #: a ForceReply question waiting for a typed value
    PROMPT = "prompt"
    #: a detail message kept live past the idle limit ("▶ Follow")
    FOLLOW = "follow"
    #: a stuck task's announcement and the chats still to tell
    STUCK = "stuck"
    #: a push job's change-feed cursor
    CURSOR = "cursor"


#: every kind of row that can be a console message
CONSOLE_KINDS = (ViewKind.LIST, ViewKind.NOTICE, ViewKind.DIGEST)
#: marks a view the push side sent and no one has pressed yet (a press saves a plain state)
PUSH_MARK = "push"


class Screen(StrEnum):
    LIST = "list"
    MENU = "menu"
    DETAIL = "detail"
    KILL = "kill"
    RESTART = "restart"
    #: the Edit & restart form's provider/model menu
    RESTART_PROVIDER = "restart_provider"


class FilterName(StrEnum):
    STATUS = "status"
    TRIGGER = "trigger"
    PROVIDER = "provider"
    FROM = "from"
    TO = "to"


@dataclass(frozen=True)
class ListState:
    filters: ListFilters = field(default_factory=ListFilters)
    sort: Sort = field(default_factory=Sort)
    page: int = 1
    screen: Screen = Screen.LIST
    #: the open filter menu and its page (Screen.MENU)
    menu: FilterName | None = None
    menu_page: int = 1
    #: provider options as shown in the open menu, so a press picks what was displayed
    menu_options: tuple[str, ...] = ()
    #: the task shown in a detail or kill screen
    task_id: int | None = None
    #: the screen a kill confirmation returns to
    back_to: Screen = Screen.LIST
    #: whether the last render showed a running task (auto-refresh keeps going while so)
    shows_running: bool = False
    #: the detail screen's timeline page (1-based) and the event offset each page starts at
    detail_page: int = 1
    page_starts: tuple[int, ...] = (0,)
    show_thinking: bool = False
    #: the Edit & restart form: field values as edited so far, and a line about bad input
    draft: dict[str, Any] | None = None
    draft_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        f = self.filters
        return {
            "status": f.status.value if f.status else None,
            "trigger": f.trigger.value if f.trigger else None,
            "provider": f.provider.key() if f.provider else None,
            "from": f.date_from.isoformat() if f.date_from else None,
            "to": f.date_to.isoformat() if f.date_to else None,
            "sort": self.sort.field.value,
            "desc": self.sort.descending,
            "page": self.page,
            "screen": self.screen.value,
            "menu": self.menu.value if self.menu else None,
            "menu_page": self.menu_page,
            "menu_options": list(self.menu_options),
            "task_id": self.task_id,
            "back_to": self.back_to.value,
            "shows_running": self.shows_running,
            "detail_page": self.detail_page,
            "page_starts": list(self.page_starts),
            "show_thinking": self.show_thinking,
            "draft": self.draft,
            "draft_error": self.draft_error,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ListState:
        def opt_date(value: str | None) -> date | None:
            return date.fromisoformat(value) if value else None

        filters = ListFilters(
            status=TaskStatus(body["status"]) if body.get("status") else None,
            trigger=Trigger(body["trigger"]) if body.get("trigger") else None,
            provider=ProviderChoice.parse(body["provider"]) if body.get("provider") else None,
            date_from=opt_date(body.get("from")),
            date_to=opt_date(body.get("to")),
        )
        return cls(
            filters=filters,
            sort=Sort(SortField(body.get("sort", "created")), bool(body.get("desc", True))),
            page=int(body.get("page", 1)),
            screen=Screen(body.get("screen", "list")),
            menu=FilterName(body["menu"]) if body.get("menu") else None,
            menu_page=int(body.get("menu_page", 1)),
            menu_options=tuple(body.get("menu_options", ())),
            task_id=body.get("task_id"),
            back_to=Screen(body.get("back_to", "list")),
            shows_running=bool(body.get("shows_running", False)),
            detail_page=int(body.get("detail_page", 1)),
            page_starts=tuple(body.get("page_starts", (0,))) or (0,),
            show_thinking=bool(body.get("show_thinking", False)),
            draft=body.get("draft"),
            draft_error=body.get("draft_error"),
        )

    def open_task(self, task_id: int) -> ListState:
        """The detail screen of a task, from its first timeline page."""
        return replace(self, screen=Screen.DETAIL, task_id=task_id, detail_page=1,
                       page_starts=(0,), draft=None, draft_error=None)

    def with_filters(self, **changes: Any) -> ListState:
        """New filters always start again at page 1, back on the list."""
        return replace(self, filters=replace(self.filters, **changes), page=1,
                       screen=Screen.LIST, menu=None, menu_options=())


def is_console_view(record: ViewRecord) -> bool:
    """A view someone used (a push message counts once it is pressed)."""
    return PUSH_MARK not in record.body


def latest_per_chat(records: list[ViewRecord]) -> dict[int, ViewRecord]:
    """Each chat's most recently used console view: the only one kept live or refreshed."""
    latest: dict[int, ViewRecord] = {}
    for view in records:
        if not is_console_view(view):
            continue
        current = latest.get(view.chat_id)
        if current is None or (view.updated_at, view.key) > (current.updated_at, current.key):
            latest[view.chat_id] = view
    return latest
