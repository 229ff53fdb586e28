"""A digest message ("🔔 N tasks changed status"): one page of its tasks at a time.

The push side sends and extends page 1 (the newest changes); ◀ / ▶ page through every
task the digest took in (kept in the store, ``store.push.digest_page``), so none is out
of reach however long the burst. Each listed task has its Open button, paused ones their
💬 Answer too.
"""

from __future__ import annotations

from telegram import InlineKeyboardMarkup

from taskops.bot import format as fmt
from taskops.bot.callbacks import Action
from taskops.bot.render import render
from taskops.bot.ui import Rendered, button
from taskops.storage.domain import TaskStatus
from taskops.storage.push_store import DigestItem, DigestPage

#: tasks listed (and given buttons) per page: two rows of four on a phone
PAGE_SIZE = 8
BUTTONS_PER_ROW = 4
NAME_WIDTH = 40
STATUS_VERB = {TaskStatus.FAILED: "failed", TaskStatus.PAUSED: "paused",
               TaskStatus.COMPLETED: "completed", TaskStatus.RUNNING: "started"}


def page_count(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def render_digest(total: int, counts: dict[TaskStatus, int], items: list[DigestItem],
                  span_seconds: float, key: str, page: int = 1) -> Rendered:
    """The digest's header (count, split by status) and page ``page`` of its tasks,
    newest first (``items`` are that page's)."""
    statuses = [s for s in (TaskStatus.FAILED, TaskStatus.PAUSED, TaskStatus.COMPLETED,
                            TaskStatus.RUNNING) if counts.get(s)]
    single = statuses[0] if len(statuses) == 1 else None
    breakdown = [] if single else [
        {"badge": fmt.STATUS_BADGE[s], "count": counts[s], "label": STATUS_VERB[s]}
        for s in statuses]
    pages = page_count(total)
    page = min(max(1, page), pages)
    first = (page - 1) * PAGE_SIZE + 1
    text = render("digest", total=total, status=single.value if single else None,
                  badge=fmt.STATUS_BADGE[single] if single else "🔔", breakdown=breakdown,
                  span_minutes=max(1, -(-int(span_seconds) // 60)),
                  items=[{"badge": fmt.STATUS_BADGE[i.status], "id": i.task_id,
                          "name": fmt.truncate(i.name, NAME_WIDTH)} for i in items],
                  page=page, pages=pages, first=first, last=first + len(items) - 1)
    buttons = [button(f"{fmt.STATUS_BADGE[i.status]} #{i.task_id}", Action.OPEN_TASK, key,
                      i.task_id) for i in items]
    # Paused tasks keep their Answer (the question waits for a person).
    buttons += [button(f"💬 #{i.task_id}", Action.ANSWER, key, i.task_id)
                for i in items if i.status is TaskStatus.PAUSED]
    rows = [buttons[i:i + BUTTONS_PER_ROW] for i in range(0, len(buttons), BUTTONS_PER_ROW)]
    if pages > 1:
        nav = []
        if page > 1:
            nav.append(button("◀", Action.DIGEST_PAGE, key, page - 1))
        if page < pages:
            nav.append(button("▶", Action.DIGEST_PAGE, key, page + 1))
        rows.append(nav)
    # Back to the list, with the digest's status as the filter when it has one.
    rows.append([button("📋 Show in the list", Action.BACK, key)])
    return Rendered(text, InlineKeyboardMarkup(rows))


def render_digest_page(found: DigestPage, key: str, page: int) -> Rendered:
    span = ((found.updated - found.started).total_seconds()
            if found.started is not None and found.updated is not None else 0.0)
    return render_digest(found.total, found.counts, found.items, span, key, page)
