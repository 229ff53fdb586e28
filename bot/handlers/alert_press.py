"""Buttons of an alert (bot/push/alerts.py): 🙋 ack, and Open · Kill · Restart · Answer ·
🔇 mute, pressed on the alert message.

The alert stays as it is for everyone in the chat: ack edits it to say who is on it;
Open, Kill, Restart and Answer open their screen as a new console message replying to the
alert (in a group the other admins still see the alert, now with its lifecycle).
"""

from __future__ import annotations

from datetime import timedelta

from telegram import Message, Update
from telegram.ext import Application, ContextTypes

from taskops.bot import format as fmt
from taskops.bot.audit import AuditAction, admin_name, audit
from taskops.bot.callbacks import Action
from taskops.bot.context import Deps, deps
from taskops.bot.handlers.prompts import ask
from taskops.bot.press import EXPIRED, Press, answer, load_view_press, on_press, press_task
from taskops.bot.push import alerts, digest_alerts
from taskops.bot.push.alerts import AlertVerb
from taskops.bot.push.subscription import settings_of
from taskops.bot.render import render
from taskops.bot.restart_view import new_draft
from taskops.bot.screens import show_reply
from taskops.bot.views import PromptState, Purpose, ViewKind, ViewState
from taskops.storage.domain import RESTART_DISABLED_REASON, TaskStatus, kill_refused_message
from taskops.storage.push_store import Alert

NOT_WAITING = "This task is not waiting for an answer."


async def on_alert_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    press = await load_view_press(update, context, (ViewKind.NOTICE, ViewKind.DIGEST),
                                  EXPIRED)
    if press is None:
        return
    d = deps(context)
    if press.view.kind == ViewKind.DIGEST:
        await _ack_digest(d, press)
        return
    alert = await d.store.push.alert_of_view(press.key)
    try:
        verb = AlertVerb(press.callback.arg)
    except ValueError:
        alert = None
    if alert is None:
        await answer(press.query, EXPIRED)
        return
    if verb is AlertVerb.ACK:
        await _ack(d, press, alert)
        return
    if verb.mute_hours is not None:
        await _mute(d, press, alert, verb.mute_hours)
        return
    task = await press_task(d, press, alert.follow_task_id)
    if task is None:
        return
    state = ViewState().open_task(task.id)
    if verb is AlertVerb.KILL:
        if task.status is not TaskStatus.RUNNING:
            await answer(press.query, kill_refused_message(task.status), alert=True)
            await alerts.redraw(d.store, d.telegram, alert)
            return
        state = state.ask_kill(task.id)
    elif verb is AlertVerb.RESTART:
        reason = RESTART_DISABLED_REASON.get(task.status)
        if reason:
            await answer(press.query, reason, alert=True)
            return
        state = state.open_restart(new_draft(task))
    elif verb is AlertVerb.ANSWER and task.status is not TaskStatus.PAUSED:
        await answer(press.query, NOT_WAITING, alert=True)
        await alerts.redraw(d.store, d.telegram, alert)
        return
    # Answered at once: the new message may wait its turn at the flood gate.
    await answer(press.query)
    key = await _show_reply(context, press, alert, state)
    if verb is AlertVerb.ANSWER:
        await ask(context, alert.chat_id,
                  render("answer_prompt", task=task, name=fmt.truncate(task.name, 80),
                         question=fmt.truncate(task.summary or "", 1500)),
                  "Your answer", PromptState(purpose=Purpose.ANSWER, view=key,
                                             task_id=task.id))


async def _show_reply(context: ContextTypes.DEFAULT_TYPE, press: Press, alert: Alert,
                      state: ViewState) -> str:
    """A new console message for ``state``, replying to the alert; its view key."""
    reply_to = alert.message_id or (press.message.message_id
                                    if isinstance(press.message, Message) else None)
    return await show_reply(context, alert.chat_id, state, reply_to)


async def _ack(d: Deps, press: Press, alert: Alert) -> None:
    by = admin_name(press.user)
    updated, acked = await d.store.push.ack_alert(alert.id, by)
    if updated is None:
        await answer(press.query, EXPIRED)
        return
    if acked:
        await audit(d.store, press.user, AuditAction.ACK, "acked", task_id=alert.task_id)
        await answer(press.query, "You're on it — the chat can see that.")
        await alerts.redraw(d.store, d.telegram, updated)
    else:
        await answer(press.query, f"{updated.acked_by} is already on it.")


async def _ack_digest(d: Deps, press: Press) -> None:
    """🙋 on a digest (or its re-announcement): every alert it carries is this admin's."""
    if press.callback.arg != AlertVerb.ACK.value:
        await answer(press.query, EXPIRED)
        return
    carried = await d.store.push.alerts_of_view(press.key)
    if not carried:
        await answer(press.query, EXPIRED)
        return
    acked = await d.store.push.ack_alerts_of_view(press.key, admin_name(press.user))
    if acked:
        await audit(d.store, press.user, AuditAction.ACK,
                    f"acked {acked} {'alert' if acked == 1 else 'alerts'} of a digest",
                    task_id=carried[0].task_id)
        await answer(press.query, "You're on it — the chat can see that.")
        await digest_alerts.redraw(d.store, d.telegram, press.view)
    else:
        who = next((a.acked_by for a in reversed(carried) if a.acked_by), None)
        await answer(press.query, f"{who} is already on it." if who else
                     "Nothing here waits for a person any more.")


async def _mute(d: Deps, press: Press, alert: Alert, hours: int) -> None:
    sub = await d.store.push.get(alert.chat_id)
    task = await d.store.find_task(alert.task_id)
    if sub is None or task is None:
        await answer(press.query, "This chat is not subscribed any more.", alert=True)
        return
    now = d.store.clock()
    wants = settings_of(sub).with_group_muted(alerts.group_key(task), now +
                                              timedelta(hours=hours), now)
    await d.store.push.save_settings(alert.chat_id, wants.to_json())
    what = "this cronjob" if task.trigger_source_id is not None else "tasks with this name"
    await audit(d.store, press.user, AuditAction.MUTE, f"{what} for {hours} h",
                task_id=task.id)
    await answer(press.query, f"🔇 No messages about {what} in this chat for {hours} h.")


def register(app: Application) -> None:  # type: ignore[type-arg]
    app.add_handler(on_press(on_alert_press, Action.ALERT))
