"""/subscribe, /notifications (settings by buttons), /unsubscribe, and ▶ Follow on a task.

Any chat an admin writes in can be subscribed (private or group); only admins reach these
handlers (the gate), and a settings press is checked again here like every console press.
"""

from __future__ import annotations

import asyncio

from telegram import Message, Update
from telegram.ext import Application, CommandHandler, ContextTypes

from taskops.bot.audit import AuditAction, audit
from taskops.bot.callbacks import Action
from taskops.bot.commands import Command
from taskops.bot.commands import register as register_command
from taskops.bot.context import Deps, deps
from taskops.bot.press import answer, load_press, load_view_press, on_press
from taskops.bot.push import live
from taskops.bot.push.settings_view import SubscriptionNote, render_settings, render_status
from taskops.bot.push.subscription import Mute, NotifySettings, settings_of
from taskops.bot.screens import finish_press
from taskops.bot.ui import edit
from taskops.bot.views import Screen, ViewKind, encode
from taskops.storage.domain import TaskStatus
from taskops.storage.push_store import Subscription

SETTINGS_EXPIRED = "These settings have expired — send /notifications again."


def _poke(d: Deps) -> None:
    if d.push is not None:
        d.push.poke()


async def _show_settings(update: Update, context: ContextTypes.DEFAULT_TYPE, sub: Subscription,
                         state: SubscriptionNote | None) -> None:
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
        await audit(d.store, user, AuditAction.SUBSCRIBE, f"chat {chat.id}", chat_id=chat.id)
        _poke(d)
    await _show_settings(update, context, sub,
                         SubscriptionNote.SUBSCRIBED if created else SubscriptionNote.ALREADY)


async def notifications_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    chat, message = update.effective_chat, update.effective_message
    assert chat is not None
    assert message is not None
    sub = await deps(context).store.push.get(chat.id)
    if sub is None:
        await message.reply_text(render_status(SubscriptionNote.NONE))
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
        await audit(d.store, user, AuditAction.UNSUBSCRIBE, f"chat {chat.id}",
                    chat_id=chat.id)
        _poke(d)
    await message.reply_text(render_status(SubscriptionNote.UNSUBSCRIBED if removed
                                           else SubscriptionNote.NONE))


async def on_settings_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    press = await load_view_press(update, context, (ViewKind.SETTINGS,), SETTINGS_EXPIRED)
    if press is None:
        return
    message = press.message
    if not isinstance(message, Message):  # too old for the client to show: not editable
        await answer(press.query, SETTINGS_EXPIRED)
        return
    d = deps(context)
    query, callback, chat_id = press.query, press.callback, press.view.chat_id
    sub = await d.store.push.get(chat_id)
    if sub is None:
        await asyncio.gather(answer(query, render_status(SubscriptionNote.NONE), alert=True),
                             message.edit_text(render_status(SubscriptionNote.NONE)))
        return
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
        await audit(d.store, press.user, AuditAction.MUTE,
                    f"chat {chat_id}: {mute.name.lower()}", chat_id=chat_id)
        toast = "Notifications on." if mute is Mute.OFF else "Muted."
    elif callback.action is Action.NOTIFY_STOP:
        await d.store.push.unsubscribe(chat_id)
        await audit(d.store, press.user, AuditAction.UNSUBSCRIBE, f"chat {chat_id}",
                    chat_id=chat_id)
        await asyncio.gather(answer(query, "Unsubscribed."),
                             message.edit_text(render_status(SubscriptionNote.UNSUBSCRIBED)))
        return
    _poke(d)
    sub = await d.store.push.get(chat_id)
    if sub is None:
        await answer(query, render_status(SubscriptionNote.NONE), alert=True)
        return
    rendered = render_settings(sub, press.key, d.settings.notifications, d.store.tz,
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
    await live.follow(d.store, press.key, press.view.chat_id, task.id)
    # Touched, so it is the chat's latest view; the message itself shows nothing new.
    await d.store.console.save(press.key, encode(state))
    await answer(press.query, f"Following #{task.id}: this message updates as it runs.")


def register(app: Application) -> None:  # type: ignore[type-arg]
    register_command(Command("subscribe", "Get task notifications in this chat"))
    register_command(Command("notifications", "This chat's notification settings"))
    register_command(Command("unsubscribe", "Stop task notifications in this chat"))
    app.add_handler(CommandHandler("subscribe", subscribe_command))
    app.add_handler(CommandHandler("notifications", notifications_command))
    app.add_handler(CommandHandler("unsubscribe", unsubscribe_command))
    app.add_handler(on_press(on_settings_press, Action.NOTIFY_TOGGLE, Action.NOTIFY_MUTE,
                             Action.NOTIFY_STOP))
    app.add_handler(on_press(on_follow_press, Action.FOLLOW))
