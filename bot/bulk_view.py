"""Bulk actions on a filtered list: the preview (exact count, a sample of names) and the
one summary of what happened to each task."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import InlineKeyboardMarkup

from taskops.bot import format as fmt
from taskops.bot.callbacks import Action
from taskops.bot.render import render
from taskops.bot.ui import Rendered, button
from taskops.bot.views import BulkAction, BulkPart
from taskops.storage.domain import Task, TaskStatus

#: names shown in a preview; the rest are counted
SAMPLE = 5
#: results listed one per line in the summary; the rest are counted by outcome
SUMMARY_LINES = 30
#: the status a bulk action's tasks must have, and how the list button says it
ACTS_ON = {BulkAction.KILL: TaskStatus.RUNNING, BulkAction.RESTART: TaskStatus.FAILED}
LABEL = {BulkAction.KILL: "🛑 Kill all {n} running here",
         BulkAction.RESTART: "🔁 Restart all {n} failed here"}
CONFIRM = {BulkAction.KILL: "🛑 Kill {n}", BulkAction.RESTART: "🔁 Restart {n}"}


def render_bulk_confirmation(part: BulkPart, sample: list[Task], cap: int,
                             key: str) -> Rendered:
    text = render("bulk_confirm", kill=part.action is BulkAction.KILL, count=len(part.ids),
                  total=part.total, cap=cap,
                  sample=[{"badge": fmt.STATUS_BADGE[t.status], "id": t.id,
                           "name": fmt.truncate(t.name, 40)} for t in sample],
                  more=len(part.ids) - len(sample))
    keyboard = InlineKeyboardMarkup([[
        button(CONFIRM[part.action].format(n=len(part.ids)), Action.BULK_CONFIRM, key),
        button("Cancel", Action.BULK_CANCEL, key)]])
    return Rendered(text, keyboard)


@dataclass(frozen=True)
class Outcome:
    task_id: int
    name: str
    done: bool
    #: what happened: "killed", "restarted as #12", or why not
    text: str


def render_summary(action: BulkAction, outcomes: list[Outcome], by: str) -> str:
    done = [o for o in outcomes if o.done]
    return render("bulk_summary", kill=action is BulkAction.KILL, done=len(done),
                  count=len(outcomes), by=by,
                  lines=[{"mark": "✅" if o.done else "⏭", "id": o.task_id,
                          "name": fmt.truncate(o.name, 40), "text": o.text}
                         for o in outcomes[:SUMMARY_LINES]],
                  more=max(0, len(outcomes) - SUMMARY_LINES))
