"""A digest message ("🔔 N tasks changed status"): one page of its tasks at a time.

The push side sends and extends page 1 (the newest changes); ◀ / ▶ page through every
task the digest took in (kept in the store, ``store.push.digest_page``), so none is out
of reach however long the burst. Each listed task has its Open button, paused ones their
💬 Answer too.

A digest is an alert too for each of its tasks that needs a person (failed, looped,
paused): it carries one alert row per such task (bot/push/digest_alerts.py). Its 🙋 acks
them all and it says who is on it; a task's lifecycle ("🔁 restarted by Ann as #66 →
🟢 completed") shows under the task's line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardMarkup

from taskops.bot import format as fmt
from taskops.bot.callbacks import Action
from taskops.bot.render import render
from taskops.bot.ui import Rendered, button
from taskops.storage.domain import TaskStatus
from taskops.storage.push_store import Alert, AlertKind, DigestItem, DigestPage

#: tasks listed (and given buttons) per page: two rows of four on a phone
PAGE_SIZE = 8
BUTTONS_PER_ROW = 4
NAME_WIDTH = 40
STATUS_VERB = {TaskStatus.FAILED: "failed", TaskStatus.PAUSED: "paused",
               TaskStatus.COMPLETED: "completed", TaskStatus.RUNNING: "started"}
#: how much of a task's lifecycle line a digest shows (eight of them fit a message)
LIFECYCLE_WIDTH = 160
#: the argument of the digest's 🙋 (bot/push/alerts.AlertVerb.ACK; bot/ cannot import it
#: from the push package without a cycle)
ACK = "ack"


@dataclass(frozen=True)
class DigestAlerts:
    """What the alerts a digest carries show on it."""

    #: task id → its lifecycle line (tasks whose alert has one)
    lifecycle: dict[int, str] = field(default_factory=dict)
    #: alerts nobody acked and not resolved (the 🙋 button stays while there are)
    open: int = 0
    #: who acked, in the order they did
    acked_by: tuple[str, ...] = ()
    #: the latest ack, as shown ("10:03")
    acked_at: str | None = None

    @classmethod
    def of(cls, alerts: list[Alert], tz: ZoneInfo, now: datetime) -> DigestAlerts:
        carried = [a for a in alerts if a.kind is not AlertKind.COMPLETED]
        acked = sorted((a for a in carried if a.acked_at is not None),
                       key=lambda a: a.acked_at or now)
        names = tuple(dict.fromkeys(a.acked_by or "?" for a in acked))
        last = acked[-1].acked_at if acked else None
        return cls({a.task_id: fmt.truncate(" → ".join(a.lifecycle), LIFECYCLE_WIDTH)
                    for a in carried if a.lifecycle},
                   sum(a.is_open for a in carried), names,
                   fmt.clock_time(last, tz, now) if last is not None else None)


def page_count(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def render_digest(total: int, counts: dict[TaskStatus, int], items: list[DigestItem],
                  span_seconds: float, key: str, page: int = 1,
                  alerts: DigestAlerts | None = None) -> Rendered:
    """The digest's header (count, split by status) and page ``page`` of its tasks,
    newest first (``items`` are that page's), with what its alerts show."""
    alerts = alerts or DigestAlerts()
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
                          "name": fmt.truncate(i.name, NAME_WIDTH),
                          "lifecycle": alerts.lifecycle.get(i.task_id)} for i in items],
                  page=page, pages=pages, first=first, last=first + len(items) - 1,
                  acked_by=", ".join(fmt.truncate(n, 40) for n in alerts.acked_by),
                  acked_count=len(alerts.acked_by), acked_at=alerts.acked_at,
                  open=alerts.open)
    buttons = [button(f"{fmt.STATUS_BADGE[i.status]} #{i.task_id}", Action.OPEN_TASK, key,
                      i.task_id) for i in items]
    # Paused tasks keep their Answer (the question waits for a person).
    buttons += [button(f"💬 #{i.task_id}", Action.ANSWER, key, i.task_id)
                for i in items if i.status is TaskStatus.PAUSED]
    rows = [buttons[i:i + BUTTONS_PER_ROW] for i in range(0, len(buttons), BUTTONS_PER_ROW)]
    if alerts.open:
        # One 🙋 for every alert the digest carries (on every page: they are all its).
        rows.insert(0, [button("🙋 I'm on it", Action.ALERT, key, ACK)])
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


def render_digest_page(found: DigestPage, key: str, page: int,
                       alerts: DigestAlerts | None = None) -> Rendered:
    span = ((found.updated - found.started).total_seconds()
            if found.started is not None and found.updated is not None else 0.0)
    return render_digest(found.total, found.counts, found.items, span, key, page, alerts)
