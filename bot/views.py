"""The state behind a console message (a "view"), stored under the key in its buttons.

One typed value, ``ViewState``, with one small part per screen: the list a message returns
to (filters, sort, page), the open filter menu, the task detail (task, timeline page, where
each page starts, thinking shown), the kill confirmation (where it returns to) and the Edit
& restart draft. Its schema is declared by these types; msgspec encodes it to the JSON dict
the store keeps and checks every body it decodes against it.

A body this version cannot read — a schema it does not know, a damaged row — raises
``ViewExpired``: the press is answered like any expired view, and nothing crashes. Bodies
saved before the schema was declared (``ListState.to_json``, flat, no version) are read by
``_upgrade_v1``, so a message left open across the upgrade keeps working.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from enum import StrEnum
from typing import Any

import msgspec
from msgspec import Struct, field
from msgspec.structs import replace

from taskops.storage.domain import ListFilters, PageKind, PageRequest, ProviderChoice, Sort

#: the schema version of a view body this code writes
SCHEMA = 2
#: marks a view the push side sent and no one has pressed yet (a press saves it unmarked)
PUSH_MARK = "push"


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
    #: a chat's shift summary of a day, claimed before it is sent (at most once a day)
    SUMMARY = "summary"


#: every kind of row that can be a console message
CONSOLE_KINDS = (ViewKind.LIST, ViewKind.NOTICE, ViewKind.DIGEST)


class Screen(StrEnum):
    LIST = "list"
    MENU = "menu"
    DETAIL = "detail"
    KILL = "kill"
    RESTART = "restart"
    #: the Edit & restart form's provider/model menu
    RESTART_PROVIDER = "restart_provider"
    #: a bulk action's confirmation (count and a sample of names) over the list
    BULK = "bulk"
    #: the chat's views (built-in and saved), opened from the list or by /views
    VIEWS = "views"
    #: a digest message paged by a person (page 1 as the push side sent it is LIST)
    DIGEST = "digest"


#: screens drawn over a task's detail (its part stays, to return to)
TASK_SCREENS = (Screen.DETAIL, Screen.RESTART, Screen.RESTART_PROVIDER)


class FilterName(StrEnum):
    """A menu opened from the list: one per filter, and the sort menu."""

    STATUS = "status"
    TRIGGER = "trigger"
    PROVIDER = "provider"
    FROM = "from"
    TO = "to"
    #: every sort field in both directions (not a filter, but opened and picked alike)
    SORT = "sort"


class ViewExpired(ValueError):
    """A stored view this version cannot read: treated like a view that is gone."""


class ListPart(Struct, frozen=True, kw_only=True):
    """The list a message shows, or returns to ("Back to tasks"): same filters, sort, page."""

    filters: ListFilters = field(default_factory=ListFilters)
    sort: Sort = field(default_factory=Sort)
    page: int = 1
    #: where the page shown as ``page`` starts and ends (``TaskPage``'s anchors): ◀/▶
    #: seek from them instead of counting rows from an end of the list
    first: str = ""
    last: str = ""

    def request(self, target: int) -> PageRequest | int:
        """How to read page ``target`` from this one: a step seeks from its anchor row."""
        if self.last and target == self.page + 1:
            return PageRequest(PageKind.AFTER, target, self.last)
        if self.first and target == self.page - 1:
            return PageRequest(PageKind.BEFORE, target, self.first)
        return target


class MenuPart(Struct, frozen=True, kw_only=True):
    """An open filter menu: which filter, its page, and the provider options as shown, so
    a press picks what was displayed."""

    name: FilterName
    page: int = 1
    options: tuple[str, ...] = ()


class DetailPart(Struct, frozen=True, kw_only=True):
    """A task's detail: the timeline page shown (1-based) and the event offset each page
    starts at (learnt as pages are rendered)."""

    task_id: int
    page: int = 1
    page_starts: tuple[int, ...] = (0,)
    show_thinking: bool = False
    #: how many events the task had when this was last rendered into the message (-1: not
    #: known, a body saved before it was kept): a live view compares it with the task's
    #: count rather than guess from times (an event can land between render and save)
    events_shown: int = -1

    def __post_init__(self) -> None:
        if not self.page_starts:
            raise ValueError("the first timeline page starts somewhere")


class KillPart(Struct, frozen=True, kw_only=True):
    """A kill confirmation and the screen its Cancel (or the kill) returns to."""

    task_id: int
    back_to: Screen = Screen.LIST


class RestartDraft(Struct, frozen=True, kw_only=True):
    """The Edit & restart form: values as edited so far, and a line about bad input.

    ``nonce`` makes one Save create one task (a double press or two admins on one form)."""

    name: str
    prompt: str
    #: ``default`` or ``provider/model`` (ProviderChoice.key)
    provider: str
    max_duration: int
    nonce: str
    error: str | None = None


class BulkAction(StrEnum):
    """What a bulk action does to every task of its preview."""

    #: 🛑 Kill all N running here
    KILL = "kill"
    #: 🔁 Restart all N failed here
    RESTART = "restart"


class BulkPart(Struct, frozen=True, kw_only=True):
    """A bulk action as previewed: exactly these tasks (the list may change before the
    confirmation; only these are acted on), out of ``total`` matching when previewed."""

    action: BulkAction
    ids: tuple[int, ...]
    total: int
    #: one confirmation, one run: restarts are keyed by it (a double press makes no twins)
    nonce: str


class DigestPart(Struct, frozen=True, kw_only=True):
    """A digest message as paged by a person: which page of its tasks it shows (the tasks
    themselves are in the store under the view's key)."""

    page: int = 1


class ViewState(Struct, frozen=True, kw_only=True):
    v: int = SCHEMA
    screen: Screen = Screen.LIST
    list: ListPart = field(default_factory=ListPart)
    menu: MenuPart | None = None
    detail: DetailPart | None = None
    kill: KillPart | None = None
    restart: RestartDraft | None = None
    bulk: BulkPart | None = None
    digest: DigestPart | None = None
    #: whether the last render showed a running task (auto-refresh keeps going while so)
    shows_running: bool = False
    #: sent by the push side as this kind and not pressed since
    pushed: ViewKind | None = field(default=None, name=PUSH_MARK)

    def __post_init__(self) -> None:
        # Raised on decode too: msgspec reports it as a body that does not fit the schema.
        if self.screen is Screen.MENU and self.menu is None:
            raise ValueError("a menu screen needs its menu")
        if self.screen is Screen.KILL and self.kill is None:
            raise ValueError("a kill screen needs its task")
        if self.screen in TASK_SCREENS and self.detail is None:
            raise ValueError(f"a {self.screen.value} screen needs its task")
        if self.screen in (Screen.RESTART, Screen.RESTART_PROVIDER) and self.restart is None:
            raise ValueError("a restart screen needs its draft")
        if self.screen is Screen.BULK and self.bulk is None:
            raise ValueError("a bulk screen needs its preview")
        if self.screen is Screen.DIGEST and self.digest is None:
            raise ValueError("a digest screen needs its page")

    # --- reading ----------------------------------------------------------------------------

    @property
    def task_id(self) -> int | None:
        """The task the screen shows (none on the list and its menus)."""
        if self.screen is Screen.KILL and self.kill is not None:
            return self.kill.task_id
        if self.screen in TASK_SCREENS and self.detail is not None:
            return self.detail.task_id
        return None

    # --- the list and its menus -------------------------------------------------------------

    @classmethod
    def of_list(cls, part: ListPart) -> ViewState:
        return cls(list=part)

    def back_to_list(self) -> ViewState:
        """The list as it was left; whatever was opened from it is closed."""
        return replace(self, screen=Screen.LIST, menu=None, detail=None, kill=None,
                       restart=None, bulk=None, digest=None)

    def with_list(self, **changes: Any) -> ViewState:
        """The list with new page or sort, shown."""
        return replace(self.back_to_list(), list=replace(self.list, **changes))

    def with_filters(self, **changes: Any) -> ViewState:
        """New filters always start again at page 1, back on the list."""
        return self.with_list(filters=dataclasses.replace(self.list.filters, **changes), page=1)

    def ask_bulk(self, part: BulkPart) -> ViewState:
        return replace(self.back_to_list(), screen=Screen.BULK, bulk=part)

    def digest_paged(self, page: int) -> ViewState:
        """A digest message showing page ``page`` of its tasks."""
        return replace(self.back_to_list(), screen=Screen.DIGEST,
                       digest=DigestPart(page=max(1, page)))

    def open_views(self) -> ViewState:
        return replace(self.back_to_list(), screen=Screen.VIEWS)

    def open_menu(self, name: FilterName) -> ViewState:
        return replace(self.back_to_list(), screen=Screen.MENU, menu=MenuPart(name=name))

    def menu_paged(self, page: int) -> ViewState:
        return replace(self, menu=replace(self.menu, page=max(1, page))) if self.menu else self

    def with_menu_options(self, options: tuple[str, ...]) -> ViewState:
        return replace(self, menu=replace(self.menu, options=options)) if self.menu else self

    # --- a task -----------------------------------------------------------------------------

    def open_task(self, task_id: int) -> ViewState:
        """The detail screen of a task, from its first timeline page."""
        return replace(self, screen=Screen.DETAIL, menu=None, kill=None, restart=None,
                       detail=DetailPart(task_id=task_id))

    def with_detail(self, **changes: Any) -> ViewState:
        return replace(self, detail=replace(self.detail, **changes)) if self.detail else self

    def ask_kill(self, task_id: int) -> ViewState:
        """The kill confirmation, returning to the task's detail if it was open, else to
        the list."""
        back = Screen.DETAIL if self.screen is Screen.DETAIL else Screen.LIST
        return replace(self, screen=Screen.KILL, menu=None,
                       kill=KillPart(task_id=task_id, back_to=back))

    def after_kill(self) -> ViewState:
        """Where a kill confirmation returns to (Cancel, or the kill done)."""
        if self.kill is None:
            return self
        if self.kill.back_to is Screen.DETAIL:
            same = self.detail is not None and self.detail.task_id == self.kill.task_id
            return replace(self, screen=Screen.DETAIL, kill=None,
                           detail=self.detail if same else DetailPart(task_id=self.kill.task_id))
        return replace(self.back_to_list())

    def open_restart(self, draft: RestartDraft) -> ViewState:
        return replace(self, screen=Screen.RESTART, restart=draft)

    def with_draft(self, draft: RestartDraft, screen: Screen = Screen.RESTART) -> ViewState:
        return replace(self, screen=screen, restart=draft)

    def close_restart(self) -> ViewState:
        return replace(self, screen=Screen.DETAIL, restart=None)

    # --- storing ----------------------------------------------------------------------------

    def pushed_as(self, kind: ViewKind) -> ViewState:
        return replace(self, pushed=kind)

    def used(self) -> ViewState:
        """As saved after a person acted on it: no longer an untouched push message."""
        return replace(self, pushed=None)


class Purpose(StrEnum):
    """What a typed reply to a prompt is for."""

    #: a From/To date for the list
    DATE = "date"
    #: words (and #id fragments) to search the list for
    SEARCH = "search"
    #: a field of the Edit & restart form
    RESTART = "restart"
    #: the answer to a paused task's question
    ANSWER = "answer"
    #: the name of a list view to save (field: None) or of a saved view to rename (its id)
    VIEW_NAME = "view_name"


class PromptState(Struct, frozen=True, kw_only=True):
    """A ForceReply prompt: what the reply is for and the console view it was asked from
    (stored against the prompt message, so a reply still lands after a restart)."""

    purpose: Purpose
    view: str
    #: the date filter or form field asked for
    field: str | None = None
    #: the paused task an answer goes to
    task_id: int | None = None


def encode(state: ViewState | PromptState) -> dict[str, Any]:
    """The JSON dict the store keeps for ``state`` (JSON types only: it compares equal to
    the same body read back from the store)."""
    body = msgspec.json.decode(msgspec.json.encode(state))
    assert isinstance(body, dict)
    return body


def decode_prompt(body: dict[str, Any]) -> PromptState:
    """A prompt's state (its shape has not changed since it was first stored)."""
    try:
        return msgspec.convert(body, PromptState)
    except msgspec.ValidationError as exc:
        raise ViewExpired(str(exc)) from None


def decode(body: dict[str, Any]) -> ViewState:
    """The state in a stored body; ``ViewExpired`` if this version cannot read it."""
    try:
        version = body.get("v")
        if version is None:
            body = _upgrade_v1(body)
        elif version != SCHEMA:
            raise ViewExpired(f"view schema {version!r}, this version reads {SCHEMA}")
        return msgspec.convert(body, ViewState)
    except (msgspec.ValidationError, TypeError, ValueError, KeyError, AttributeError) as exc:
        if isinstance(exc, ViewExpired):
            raise
        raise ViewExpired(str(exc)) from None


def decode_or_none(body: dict[str, Any]) -> ViewState | None:
    """For passes over many views (refresh, live views): one unreadable view is skipped."""
    try:
        return decode(body)
    except ViewExpired:
        return None


def _upgrade_v1(body: dict[str, Any]) -> dict[str, Any]:
    """A body written by ``ListState.to_json`` (before the schema), in today's shape."""
    provider = body.get("provider")
    screen = Screen(body.get("screen") or Screen.LIST)
    task_id = body.get("task_id")
    draft = body.get("draft")
    detail_shown = screen in TASK_SCREENS or (
        screen is Screen.KILL and body.get("back_to") == Screen.DETAIL.value)
    return {
        "v": SCHEMA,
        "screen": screen.value,
        "list": {
            "filters": {
                "status": body.get("status") or None,
                "trigger": body.get("trigger") or None,
                "provider": (msgspec.to_builtins(ProviderChoice.parse(provider))
                             if provider else None),
                "date_from": _day(body.get("from")),
                "date_to": _day(body.get("to")),
            },
            "sort": {"field": body.get("sort", "created"), "descending": body.get("desc", True)},
            "page": body.get("page", 1),
        },
        "menu": ({"name": body.get("menu"), "page": body.get("menu_page", 1),
                  "options": body.get("menu_options", [])}
                 if screen is Screen.MENU else None),
        "detail": ({"task_id": task_id, "page": body.get("detail_page", 1),
                    "page_starts": body.get("page_starts") or [0],
                    "show_thinking": body.get("show_thinking", False)}
                   if detail_shown and task_id is not None else None),
        "kill": ({"task_id": task_id, "back_to": body.get("back_to", Screen.LIST.value)}
                 if screen is Screen.KILL and task_id is not None else None),
        "restart": ({**draft, "error": body.get("draft_error")}
                    if screen in (Screen.RESTART, Screen.RESTART_PROVIDER)
                    and isinstance(draft, dict) else None),
        "shows_running": body.get("shows_running", False),
        PUSH_MARK: body.get(PUSH_MARK),
    }


def _day(value: Any) -> str | None:
    return date.fromisoformat(value).isoformat() if value else None
