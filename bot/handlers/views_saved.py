"""Saved views: 📌 on a list names its filters and sort for this chat; the views row under
/tasks and the /views screen open one in a tap; /views renames and deletes them."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes

from taskops.bot.callbacks import Action
from taskops.bot.commands import Command, reply_error
from taskops.bot.commands import register as register_command
from taskops.bot.context import deps
from taskops.bot.handlers.prompts import Reply, ask, register_prompt
from taskops.bot.list_view import header
from taskops.bot.press import answer, load_press, on_press
from taskops.bot.render import render
from taskops.bot.saved_views import NAME_MAX, body_of, check_name, resolve
from taskops.bot.screens import finish_press, show_in, show_new
from taskops.bot.views import PromptState, Purpose, Screen, ViewState
from taskops.storage.console import NameTaken

GONE = "That view is no longer there."


async def views_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await show_new(update, context, ViewState().open_views())


async def on_views_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    press = await load_press(update, context)
    if press is None:
        return
    d = deps(context)
    state, cb, chat_id = press.state, press.callback, press.view.chat_id
    if cb.action is Action.VIEWS:
        await finish_press(context, press, state.open_views())
    elif cb.action is Action.VIEW_OPEN:
        part = resolve(cb.arg, await d.store.console.saved_views(chat_id), d.store.clock(),
                       d.store.tz)
        if part is None:
            await answer(press.query, GONE, alert=True)
            return
        await finish_press(context, press, state.with_list(filters=part.filters,
                                                           sort=part.sort, page=1))
    elif cb.action is Action.VIEW_SAVE:
        await ask(context, chat_id, render("view_name_prompt", renaming=False,
                                           header=header(state.list), current="",
                                           limit=NAME_MAX),
                  "View name", PromptState(purpose=Purpose.VIEW_NAME, view=press.key))
        await answer(press.query)
    elif cb.action is Action.VIEW_RENAME:
        saved = await d.store.console.saved_view(chat_id, cb.int_arg)
        if saved is None:
            await answer(press.query, GONE, alert=True)
            return
        await ask(context, chat_id, render("view_name_prompt", renaming=True, header="",
                                           current=saved.name, limit=NAME_MAX),
                  "New name", PromptState(purpose=Purpose.VIEW_NAME, view=press.key,
                                          field=str(saved.id)))
        await answer(press.query)
    elif cb.action is Action.VIEW_DELETE:
        deleted = await d.store.console.delete_view(chat_id, cb.int_arg)
        await finish_press(context, press, state.open_views(),
                           toast="Deleted." if deleted else GONE)


async def on_name_reply(update: Update, context: ContextTypes.DEFAULT_TYPE, reply: Reply) -> None:
    d = deps(context)
    chat_id = reply.view.chat_id
    try:
        name = check_name(reply.text)
        if reply.prompt.field is None:
            await d.store.console.save_view(chat_id, name, body_of(reply.state.list))
        elif not await d.store.console.rename_view(chat_id, int(reply.prompt.field), name):
            await reply_error(update, GONE)
            return
    except NameTaken:
        await reply_error(update, f"This chat already has a view named “{name}”: "
                                  "pick another name.")
        return
    except ValueError as exc:
        await reply_error(update, str(exc))
        return
    await d.store.console.delete(reply.prompt_key)
    state = reply.state if reply.state.screen in (Screen.LIST, Screen.VIEWS) \
        else reply.state.back_to_list()
    await show_in(context, reply.view, state)
    assert update.effective_message is not None
    await update.effective_message.reply_text(render("view_saved", name=name))


def register(app: Application) -> None:  # type: ignore[type-arg]
    register_command(Command("views", "Saved and built-in list views: open, rename, delete"))
    app.add_handler(CommandHandler("views", views_command))
    app.add_handler(on_press(on_views_press, Action.VIEWS, Action.VIEW_OPEN, Action.VIEW_SAVE,
                             Action.VIEW_RENAME, Action.VIEW_DELETE))
    register_prompt(Purpose.VIEW_NAME, on_name_reply)
