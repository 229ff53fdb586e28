"""/subscribe, /notifications (settings by buttons), /unsubscribe, and ▶ Follow on a task.

Any chat an admin writes in can be subscribed (private or group); only admins reach these
handlers (the gate), and a settings press is checked again here like every console press.
"""

from __future__ import annotations

import asyncio
import logging

from telegram import Message, Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from taskops.bot.callbacks import Action, BadCallback, Callback
from taskops.bot.commands import Command
from taskops.bot.commands import register as register_command
from taskops.bot.context import Deps, deps
from taskops.bot.gate import is_admin
from taskops.bot.handlers.kill import admin_name
from taskops.bot.push import live
from taskops.bot.push.settings_view import render_settings, render_status
from taskops.bot.push.subscription import Mute, NotifySettings, settings_of
from taskops.bot.screens import answer, finish_press, load_press
from taskops.bot.ui import edit
from taskops.bot.views import Screen, ViewKind
from taskops.storage.domain import TaskStatus
from taskops.storage.push_store import Subscription

log = logging.getLogger(__name__)
SETTINGS_EXPIRED = "These settings have expired — send /notifications again."


def _poke(d: Deps) -> None:
    if d.push is not None:
        d.push.poke()


async def _show_settings(update: Update, context: ContextTypes.DEFAULT_TYPE, sub: Subscription,
                         state: str | None) -> None:
    d = deps(context)
    message = update.effective_message
    assert message is not None
    key = await d.store.console.create(ViewKind.SETTINGS, sub.chat_id, {"chat_id": sub.chat_id})
    rendered = render_settings(sub, key, d.settings.notifications, d.store.tz, d.store.clock(),
                               state)
    sent = await message.reply_text(rendered.text, reply_markup=rendered.keyboard)
    await d.store.console.save(key, {"chat_id": sub.chat_id}, message_id=sent.message_id)


async def subscribe_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    chat, user = update.effective_chat, update.effective_user
    assert chat is not None
    assert user is not None
    d = deps(context)
    sub, created = await d.store.push.subscribe(chat.id, NotifySettings().to_json(),
                                              user.id)
    if created:
        log.info("chat %s subscribed by %s", chat.id, user.id)
        await d.store.console.audit(actor_id=user.id, actor_name=admin_name(user),
                                    action="subscribe", task_id=None, outcome=f"chat {chat.id}")
        _poke(d)
    await _show_settings(update, context, sub, "subscribed" if created else "already")


async def notifications_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    chat, message = update.effective_chat, update.effective_message
    assert chat is not None
    assert message is not None
    sub = await deps(context).store.push.get(chat.id)
    if sub is None:
        await message.reply_text(render_status("none"))
        return
    await _show_settings(update, context, sub, None)


async def unsubscribe_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    chat, user, message = update.effective_chat, update.effective_user, update.effective_message
    assert chat is not None
    assert user is not None
    assert message is not None
    d = deps(context)
    removed = await d.store.push.unsubscribe(chat.id)
    if removed:
        log.info("chat %s unsubscribed by %s", chat.id, user.id)
        await d.store.console.audit(actor_id=user.id, actor_name=admin_name(user),
                                    action="unsubscribe", task_id=None,
                                    outcome=f"chat {chat.id}")
        _poke(d)
    await message.reply_text(render_status("unsubscribed" if removed else "none"))


async def on_settings_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    d = deps(context)
    message = query.message if isinstance(query.message, Message) else None
    try:
        callback = Callback.parse(query.data)
    except BadCallback:
        await answer(query, SETTINGS_EXPIRED)
        return
    record = await d.store.console.get(callback.view)
    if (record is None or record.kind != ViewKind.SETTINGS or message is None
            or record.chat_id != message.chat.id
            or not is_admin(update, d.settings.telegram.admin_ids)):
        await answer(query, SETTINGS_EXPIRED)
        return
    chat_id = record.chat_id
    sub = await d.store.push.get(chat_id)
    if sub is None:
        await asyncio.gather(answer(query, render_status("none"), alert=True),
                             message.edit_text(render_status("none")))
        return
    user = query.from_user
    toast: str | None = None
    if callback.action is Action.NOTIFY_TOGGLE:
        await d.store.push.save_settings(chat_id,
                                       settings_of(sub).toggled(callback.arg).to_json())
    elif callback.action is Action.NOTIFY_MUTE:
        try:
            mute = Mute(callback.arg)
        except ValueError:
            await answer(query, SETTINGS_EXPIRED)
            return
        await d.store.push.set_muted(chat_id, mute.until(d.store.clock()))
        await d.store.console.audit(actor_id=user.id, actor_name=admin_name(user),
                                    action="mute", task_id=None,
                                    outcome=f"chat {chat_id}: {mute.name.lower()}")
        toast = "Notifications on." if mute is Mute.OFF else "Muted."
    elif callback.action is Action.NOTIFY_STOP:
        await d.store.push.unsubscribe(chat_id)
        await d.store.console.audit(actor_id=user.id, actor_name=admin_name(user),
                                    action="unsubscribe", task_id=None, outcome=f"chat {chat_id}")
        log.info("chat %s unsubscribed by %s", chat_id, user.id)
        await asyncio.gather(answer(query, "Unsubscribed."),
                             message.edit_text(render_status("unsubscribed")))
        return
    _poke(d)
    sub = await d.store.push.get(chat_id)
    if sub is None:
        await answer(query, render_status("none"), alert=True)
        return
    rendered = render_settings(sub, record.key, d.settings.notifications, d.store.tz,
                               d.store.clock())
    await asyncio.gather(answer(query, toast), edit(message, rendered))


async def on_follow_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    press = await load_press(update, context)
    if press is None:
        return
    d = deps(context)
    state = press.state
    task = await d.store.find_task(press.callback.int_arg)
    if state.screen is not Screen.DETAIL or task is None or state.task_id != task.id:
        await answer(press.query)
        return
    if task.status is not TaskStatus.RUNNING:
        await finish_press(context, press, state,
                           toast=f"Task #{task.id} is not running any more.")
        return
    assert press.query.message is not None
    await live.follow(d.store, press.key, press.query.message.chat.id, task.id)
    # Touched, so it is the chat's latest view; the message itself shows nothing new.
    await d.store.console.save(press.key, state.to_json())
    await answer(press.query, f"Following #{task.id}: this message updates as it runs.")


def register(app: Application) -> None:  # type: ignore[type-arg]
    register_command(Command("subscribe", "Get task notifications in this chat"))
    register_command(Command("notifications", "This chat's notification settings"))
    register_command(Command("unsubscribe", "Stop task notifications in this chat"))
    app.add_handler(CommandHandler("subscribe", subscribe_command))
    app.add_handler(CommandHandler("notifications", notifications_command))
    app.add_handler(CommandHandler("unsubscribe", unsubscribe_command))
    actions = "".join(a.value for a in (Action.NOTIFY_TOGGLE, Action.NOTIFY_MUTE,
                                        Action.NOTIFY_STOP))
    app.add_handler(CallbackQueryHandler(on_settings_press, pattern=f"^1:[{actions}]:"))
    app.add_handler(CallbackQueryHandler(on_follow_press, pattern=f"^1:{Action.FOLLOW.value}:"))
