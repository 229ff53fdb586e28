"""Bulk actions from a filtered list: "🛑 Kill all N running here", "🔁 Restart all N failed
here" — a preview with the exact count and a sample of names, one confirmation, one
summary message, every task audited.

The preview fixes the ids; the confirmation acts on those only (a task that ended or
appeared meanwhile is reported, not acted on). The confirmation moves the view off the
preview with a compare-and-set on its stored body, so a double press (or a second replica)
acts once; restarts are keyed by the preview's nonce as well.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, ContextTypes

from taskops.bot.audit import AuditAction, admin_name, audit
from taskops.bot.bulk_view import ACTS_ON, Outcome, render_summary
from taskops.bot.callbacks import Action
from taskops.bot.context import Deps, deps
from taskops.bot.press import ConsolePress, answer, load_press, on_press
from taskops.bot.push import alerts
from taskops.bot.screens import finish_press
from taskops.bot.views import BulkAction, BulkPart, Screen, encode
from taskops.storage.console import new_key
from taskops.storage.domain import InvalidTransition, StoreError

ALREADY_DONE = "Already done — this confirmation was used."
NOTHING = "No such tasks here any more."


async def on_bulk_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    press = await load_press(update, context)
    if press is None:
        return
    d = deps(context)
    state, cb = press.state, press.callback
    if cb.action is Action.BULK_ASK:
        try:
            action = BulkAction(cb.arg)
        except ValueError:
            await answer(press.query)
            return
        status = ACTS_ON[action]
        if state.list.filters.status is not status:
            await answer(press.query, NOTHING, alert=True)
            return
        cap = d.settings.console.bulk_max
        page = await d.store.list_tasks(state.list.filters, state.list.sort, 1, page_size=cap)
        ids = tuple(t.id for t in page.tasks if t.status is status)
        if not ids:
            await finish_press(context, press, state.back_to_list(), toast=NOTHING, alert=True)
            return
        part = BulkPart(action=action, ids=ids, total=page.total, nonce=new_key())
        await finish_press(context, press, state.ask_bulk(part))
        return
    if state.screen is not Screen.BULK or state.bulk is None:
        await answer(press.query, ALREADY_DONE)
        return
    back = state.back_to_list()
    if cb.action is Action.BULK_CANCEL:
        await finish_press(context, press, back)
        return
    # One confirmation acts once: only the press that moves the view off the preview goes on.
    if not await d.store.console.save_if(press.key, press.view.body, encode(back)):
        await answer(press.query, ALREADY_DONE)
        return
    outcomes = await _run(d, press, state.bulk)
    done = sum(o.done for o in outcomes)
    await finish_press(context, press, back, toast=f"Done: {done} of {len(outcomes)}.")
    await context.bot.send_message(
        press.view.chat_id, render_summary(state.bulk.action, outcomes, admin_name(press.user)))


async def _run(d: Deps, press: ConsolePress, part: BulkPart) -> list[Outcome]:
    tasks = await d.store.tasks_by_ids(part.ids)
    by = admin_name(press.user)
    outcomes = []
    for task_id in part.ids:
        task = tasks.get(task_id)
        if task is None:
            outcomes.append(Outcome(task_id, "?", False, "no longer there"))
            continue
        try:
            if part.action is BulkAction.KILL:
                await d.store.kill_task(task_id, by=by)
                done, text = True, "killed"
            else:
                new = await d.store.restart_task(
                    task_id, key=f"{press.key}:{part.nonce}:{task_id}")
                done, text = True, f"restarted as #{new.id}"
                # The alerts about the old run say so, and follow the new one.
                await alerts.restarted(d.store, d.telegram, task_id, new, by)
        except (InvalidTransition, StoreError) as exc:
            done, text = False, str(exc)
        await audit(d.store, press.user,
                    AuditAction.KILL if part.action is BulkAction.KILL else AuditAction.RESTART,
                    f"{text} (bulk of {len(part.ids)})" if done else f"refused: {text}",
                    task_id=task_id, chat_id=press.view.chat_id)
        outcomes.append(Outcome(task_id, task.name, done, text))
    return outcomes


def register(app: Application) -> None:  # type: ignore[type-arg]
    app.add_handler(on_press(on_bulk_press, Action.BULK_ASK, Action.BULK_CONFIRM,
                             Action.BULK_CANCEL))

