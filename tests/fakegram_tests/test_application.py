"""A real PTB Application polling the fake: commands, messages, buttons, error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fakegram_tests.helpers import World, flood_fixture, seconds, w_fixture  # noqa: F401

Context = ContextTypes.DEFAULT_TYPE


@pytest_asyncio.fixture(name="app")
async def app_fixture(
    w: World,
) -> AsyncIterator[tuple[Application[Any, Any, Any, Any, Any, Any], list[BaseException]]]:
    errors: list[BaseException] = []

    async def start(update: Update, context: Context) -> None:
        assert update.effective_chat is not None
        await context.bot.send_message(
            update.effective_chat.id,
            "<b>Tasks</b>",
            parse_mode="HTML",
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("🔄 Refresh", callback_data="refresh")]]
            ),
        )

    async def echo(update: Update, context: Context) -> None:
        assert update.message is not None
        assert update.message.text is not None
        await update.message.reply_text(f"echo: {update.message.text}", do_quote=True)

    async def button(update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("refreshed")
        try:
            await query.edit_message_text(
                "<b>Tasks</b>",
                parse_mode="HTML",
                reply_markup=query.message.reply_markup
                if isinstance(query.message, Message)
                else None,
            )
        except BadRequest as exc:  # the same content: Telegram says "not modified"
            errors.append(exc)

    async def on_error(update: object, context: Context) -> None:
        assert context.error is not None
        errors.append(context.error)

    app = (
        ApplicationBuilder()
        .token(w.server.token)
        .base_url(w.server.bot_base_url)
        .base_file_url(w.server.file_base_url)
        .build()
    )
    app.add_handler(CommandHandler("tasks", start))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    app.add_handler(CallbackQueryHandler(button))
    app.add_error_handler(on_error)
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=1)
        try:
            yield app, errors
        finally:
            await app.updater.stop()
            await app.stop()
    # stopping cancels PTB's pending long poll; the fake does not count the 409 that the
    # cleanup getUpdates causes for a request nobody is waiting for any more
    assert [v for v in w.server.violations if v.error_code == 409] == []


async def test_polling_echo_command_and_button(
    w: World, app: tuple[Application[Any, Any, Any, Any, Any, Any], list[BaseException]]
) -> None:
    _, errors = app
    user_msg = await w.server.send_text(w.ann, w.dm, "hello there")
    await w.server.wait_for(
        lambda: (m := w.server.last_bot_message(w.dm)) is not None and m.text == "echo: hello there"
    )
    reply = w.server.last_bot_message(w.dm)
    assert reply is not None
    assert reply.reply_to is user_msg

    await w.server.send_text(w.ann, w.dm, "/tasks")
    await w.server.wait_for(
        lambda: (m := w.server.last_bot_message(w.dm)) is not None and m.text == "Tasks"
    )
    menu = w.server.last_bot_message(w.dm)
    assert menu is not None
    assert menu.entities == [{"offset": 0, "length": 5, "type": "bold"}]
    assert menu.buttons == [[("🔄 Refresh", "refresh")]]

    qid = await w.server.press_button(w.ann, w.dm, menu.message_id, "🔄 Refresh")
    await w.server.wait_for(lambda: any(a.query_id == qid for a in w.server.callback_answers))
    await w.server.wait_for(lambda: errors)
    assert isinstance(errors[0], BadRequest)
    assert "not modified" in str(errors[0]).lower()
    assert menu.edits == []


async def test_retry_after_reaches_the_error_handler(
    w: World, app: tuple[Application[Any, Any, Any, Any, Any, Any], list[BaseException]]
) -> None:
    _, errors = app
    w.server.fail("sendMessage", "429", retry_after=3)
    await w.server.send_text(w.ann, w.dm, "hi")
    await w.server.wait_for(lambda: errors)
    assert isinstance(errors[0], RetryAfter)
    assert seconds(errors[0].retry_after) == 3
    await w.server.send_text(w.ann, w.dm, "again")
    await w.server.wait_for(lambda: any(m.text == "echo: again" for m in w.server.messages(w.dm)))


@pytest.mark.parametrize("kind", ["500", "drop"])
async def test_polling_survives_get_updates_faults(
    w: World, app: tuple[Application[Any, Any, Any, Any, Any, Any], list[BaseException]], kind: str
) -> None:
    w.server.fail("getUpdates", kind)
    await w.server.send_text(w.ann, w.dm, "still there?")
    await w.server.wait_for(
        lambda: any(m.text == "echo: still there?" for m in w.server.messages(w.dm)), timeout=10
    )
