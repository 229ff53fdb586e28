"""/usage [7d|30d]: cost and tokens by provider, counts and failures, and the cost chart —
the shift summary's table and chart on demand (bot/usage_view.py)."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ChatAction
from telegram.ext import Application, CommandHandler, ContextTypes

from taskops.bot import usage_view
from taskops.bot.commands import Command, reply_error
from taskops.bot.commands import register as register_command
from taskops.bot.context import deps
from taskops.bot.usage_view import Period

CHOICES = (Period.WEEK, Period.MONTH)
USAGE = "Usage: /usage, /usage 7d or /usage 30d"


async def usage_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None
    args = [a.lower() for a in context.args or []]
    if len(args) > 1 or (args and args[0] not in CHOICES):
        await reply_error(update, USAGE)
        return
    period = Period(args[0]) if args else Period.WEEK
    # The chart takes a moment to draw: the chat shows the bot at work meanwhile.
    await message.reply_chat_action(ChatAction.UPLOAD_PHOTO)
    report = await usage_view.build(deps(context).store, period)
    await message.reply_text(report.text)
    await message.reply_photo(report.png, caption=report.caption)


def register(app: Application) -> None:  # type: ignore[type-arg]
    register_command(Command("usage", "Cost and tokens by provider, with a chart", "[7d|30d]"))
    app.add_handler(CommandHandler("usage", usage_command))
