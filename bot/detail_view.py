"""The task detail screen (header, prompt, the event timeline in pages) and the kill
confirmation shown over it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup
from msgspec.structs import replace
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from taskops.bot import format as fmt
from taskops.bot.callbacks import Action
from taskops.bot.render import render, render_document
from taskops.bot.ui import MAX_TEXT, Rendered, button, cut, markdown_html, pretty, visible_length
from taskops.bot.views import DetailPart
from taskops.storage.domain import EventKind, ResultStatus, Task, TaskEvent, TaskStatus
from taskops.storage.store import TaskStore

#: how much of one value (arguments, a result, agent text) a message shows, in characters;
#: an emoji counts twice towards Telegram's 4096, so one event stays under ~3,000 either way
VALUE_LIMIT = 700
TEXT_LIMIT = 1500
PROMPT_LIMIT = 1200
ERROR_LIMIT = 300
#: events fetched per page attempt; a page holds as many as fit in one message
FETCH = 40
#: events read per query for the full log
LOG_CHUNK = 500
RESULT_LABEL = {ResultStatus.COMPLETED: "Completed", ResultStatus.FAILED: "Failed",
                ResultStatus.QUESTION: "Question", ResultStatus.SILENT: "Silent"}


def render_event(event: TaskEvent, d_tz: Any, show_thinking: bool) -> str:
    p = event.payload
    at = event.at.astimezone(d_tz).strftime("%H:%M:%S")
    context: dict[str, Any] = {"kind": event.kind.value, "at": at, "show_thinking": show_thinking}
    if event.kind is EventKind.TOOL_CALL:
        context.update(tool=fmt.truncate(str(p.get("tool", "?")), 80), duration=fmt.tool_duration(
            p.get("duration_ms")), is_error=bool(p.get("is_error")),
            arguments=cut(pretty(p.get("arguments", {})), VALUE_LIMIT),
            result=cut(pretty(p.get("result", "")), VALUE_LIMIT))
    elif event.kind in (EventKind.TEXT, EventKind.ANSWER):
        context.update(body=markdown_html(str(p.get("text", "")), TEXT_LIMIT),
                       by=fmt.truncate(str(p.get("by", "")), 80))
    elif event.kind is EventKind.THINKING:
        context.update(body=cut(str(p.get("text", "")), TEXT_LIMIT))
    elif event.kind is EventKind.STATUS_CHANGE:
        new = TaskStatus(p["new"]) if p.get("new") in set(TaskStatus) else None
        context.update(badge=fmt.STATUS_BADGE[new] if new else "•",
                       status_label=(fmt.STATUS_LABEL[new] if new
                                     else fmt.truncate(str(p.get("new")), 40)),
                       message=cut(fmt.without_kill_hint(str(p.get("message") or "")), 300))
    elif event.kind is EventKind.FINAL:
        result = ResultStatus(p["status"]) if p.get("status") in set(ResultStatus) \
            else ResultStatus.COMPLETED
        context.update(result_badge=fmt.RESULT_BADGE[result], result_label=RESULT_LABEL[result],
                       body=markdown_html(fmt.without_kill_hint(str(p.get("summary", ""))),
                                          TEXT_LIMIT))
    elif event.kind is EventKind.INJECTION:
        context.update(parent=fmt.truncate(str(p.get("parent_session") or ""), 80))
    elif event.kind is EventKind.PROGRESS:
        context.update(body=cut(str(p.get("text", "")), 500))
    elif event.kind is EventKind.RESUMED:
        context.update(message=cut(str(p.get("text") or ""), 100),
                       interrupted=_names(p.get("interrupted")),
                       repeated=_names(p.get("repeated")))
    return render("event", **context)


def _names(value: Any) -> str:
    """Tool names of a resumed run's calls, as one short line."""
    names = [str(v) for v in value] if isinstance(value, list) else []
    return fmt.truncate(", ".join(names), 200)


@dataclass(frozen=True)
class DetailPage:
    rendered: Rendered
    #: the part as rendered: the page shown, and where the pages seen so far start
    detail: DetailPart


def _header_context(task: Task, store: TaskStore, restarted_as: list[int],
                     now: datetime) -> dict[str, Any]:
    tz = store.tz
    return dict(
        id=task.id, badge=fmt.STATUS_BADGE[task.status], name=fmt.truncate(task.name, 200),
        # Why it failed, at the top: the first thing an admin opening a failure wants.
        error=(cut(task.error, ERROR_LIMIT) if task.status is TaskStatus.FAILED and task.error
               else None),
        status=fmt.STATUS_LABEL[task.status],
        live=task.status is TaskStatus.RUNNING and task.started_at is not None,
        trigger=fmt.TRIGGER_LABEL[task.trigger], provider=fmt.provider_line(task, 120),
        duration=fmt.duration(task.duration_seconds(now)), tokens=fmt.tokens(task),
        cost=fmt.cost(task.cost_usd), created=fmt.short_time(task.created_at, tz, now),
        started=fmt.short_time(task.started_at, tz, now) if task.started_at else None,
        finished=fmt.short_time(task.finished_at, tz, now) if task.finished_at else None,
        restarted_from=task.restarted_from_id, restarted_as=restarted_as,
    )


async def render_detail(store: TaskStore, task: Task, state: DetailPart, key: str) -> DetailPage:
    """Render the part's timeline page; learns where the next page starts."""
    now = store.clock()
    restarted_as = await store.restarted_as(task.id)
    page = max(1, min(state.page, len(state.page_starts)))
    start = state.page_starts[page - 1]
    header = _header_context(task, store, restarted_as, now)
    first_event = (await store.list_events(task.id, 0, 1)).events
    header.update(show_prompt=page == 1, prompt=cut(task.prompt, PROMPT_LIMIT),
                  prompt_at=(first_event[0].at.astimezone(store.tz).strftime("%d %b, %H:%M:%S")
                             if first_event else None))
    batch = await store.list_events(task.id, start, FETCH)
    shown: list[str] = []
    for event in batch.events:
        candidate = [*shown, render_event(event, store.tz, state.show_thinking)]
        text = _page_text(header, candidate, start, batch.total, pages=2)
        if visible_length(text) > MAX_TEXT and shown:
            break
        shown = candidate
    next_start = start + len(shown)
    starts = list(state.page_starts[:page])
    if next_start < batch.total:
        starts.append(next_start)
    pages = len(starts)
    text = _page_text(header, shown, start, batch.total, pages)
    state = replace(state, page=page, page_starts=tuple(starts))
    return DetailPage(Rendered(text, _keyboard(task, state, key, restarted_as, pages)), state)


def _page_text(header: dict[str, Any], events: list[str], start: int, total: int,
               pages: int) -> str:
    return render("task_detail", **header, events=[Markup(e) for e in events],
                  first=start + 1, last=start + len(events), total=total,
                  event_pages=pages if start + len(events) < total or start > 0 else 1)


def _keyboard(task: Task, state: DetailPart, key: str, restarted_as: list[int],
              pages: int) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = []
    if pages > 1:
        nav = []
        if state.page > 1:
            nav.append(button("◀ Earlier", Action.DETAIL_PAGE, key, state.page - 1))
        if state.page < pages:
            nav.append(button("Later ▶", Action.DETAIL_PAGE, key, state.page + 1))
        rows.append(nav)
    rows.append([button("🧠 Hide thinking" if state.show_thinking else "🧠 Show thinking",
                         Action.THINKING, key),
                 button("📄 Full log", Action.FULL_LOG, key)])
    actions = []
    if task.status is TaskStatus.RUNNING:
        actions.append(button("🛑 Kill", Action.KILL_ASK, key, task.id))
        actions.append(button("▶ Follow", Action.FOLLOW, key, task.id))
    if task.status is TaskStatus.PAUSED:
        actions.append(button("💬 Answer", Action.ANSWER, key, task.id))
    actions.append(button("🔁 Edit & restart", Action.RESTART_OPEN, key, task.id))
    rows.append(actions)
    links = []
    if task.restarted_from_id:
        links.append(button(f"↩ #{task.restarted_from_id}", Action.OPEN_TASK, key,
                             task.restarted_from_id))
    links += [button(f"↪ #{i}", Action.OPEN_TASK, key, i) for i in restarted_as[-3:]]
    if links:
        rows.append(links)
    rows.append([button("◀ Back to tasks", Action.BACK, key),
                 button("🔄 Refresh", Action.REFRESH, key)])
    return InlineKeyboardMarkup(rows)


async def all_events(store: TaskStore, task_id: int) -> list[TaskEvent]:
    events: list[TaskEvent] = []
    while True:
        page = await store.list_events(task_id, len(events), LOG_CHUNK)
        events.extend(page.events)
        if not page.events or len(events) >= page.total:
            return events


async def render_full_log(store: TaskStore, task: Task) -> str:
    """The whole timeline as a Markdown document (sent as a file)."""
    events = await all_events(store, task.id)
    now = store.clock()
    rows = [{"at": e.at.astimezone(store.tz).strftime("%Y-%m-%d %H:%M:%S"), "kind": e.kind.value,
             "p": e.payload, "duration": fmt.tool_duration(e.payload.get("duration_ms")),
             "arguments": pretty(e.payload.get("arguments", {})),
             "result": pretty(e.payload.get("result", ""))} for e in events]
    return render_document("task_log", task=task, events=rows,
                           provider=fmt.provider_line(task, 500),
                           duration=fmt.duration(task.duration_seconds(now)),
                           cost=fmt.cost(task.cost_usd),
                           created=task.created_at.astimezone(store.tz).isoformat())


def render_kill_confirmation(task: Task, key: str) -> Rendered:
    text = render("kill_confirm", task=task, badge=fmt.STATUS_BADGE[task.status],
                  name=fmt.truncate(task.name, 200))
    keyboard = InlineKeyboardMarkup([[button("🛑 Kill", Action.KILL_CONFIRM, key, task.id),
                                      button("Cancel", Action.KILL_CANCEL, key, task.id)]])
    return Rendered(text, keyboard)
