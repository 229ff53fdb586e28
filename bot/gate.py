"""The admin gate: nobody but the configured admins gets any answer.

It runs first (handler group -1) for every update type. A stranger's update stops there
— no reply, no state change. A stranger's button press is answered with no text, so
their client stops spinning, and nothing else happens.
"""

from __future__ import annotations

import contextlib
import logging

from telegram import (
    Bot,
    BotCommandScope,
    BotCommandScopeChat,
    BotCommandScopeChatMember,
    Update,
)
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from taskops.bot.commands import COMMANDS
from taskops.bot.context import deps

log = logging.getLogger(__name__)


def is_admin(update: Update, admin_ids: frozenset[int]) -> bool:
    user = update.effective_user
    return user is not None and user.id in admin_ids


async def admin_gate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d = deps(context)
    if not is_admin(update, d.settings.telegram.admin_ids):
        user = update.effective_user
        log.info("ignored update %s from non-admin %s", update.update_id,
                 user.id if user else "unknown")
        if update.callback_query is not None:
            # Too old or already answered: there is nothing to tell a stranger anyway.
            with contextlib.suppress(TelegramError):
                await update.callback_query.answer()
        raise ApplicationHandlerStop
    await ensure_group_menu(update, context)


async def _set_menu(bot: Bot, scope: BotCommandScope) -> bool:
    try:
        await bot.set_my_commands([(c.name, c.description) for c in COMMANDS], scope=scope)
    except TelegramError as exc:
        log.warning("could not set the command menu (%s): %s", scope.type, exc)
        return False
    return True


async def ensure_group_menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Show the command menu to an admin where they use the bot, the first time.

    Groups are only known once an admin writes there, and a private chat only once the
    admin opened it (Telegram refuses a menu for a chat that does not exist yet).
    """
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None:
        return
    d = deps(context)
    if (chat.id, user.id) in d.menu_chats:
        return
    scope: BotCommandScope = (BotCommandScopeChat(chat_id=chat.id)
                              if chat.type == ChatType.PRIVATE
                              else BotCommandScopeChatMember(chat_id=chat.id, user_id=user.id))
    if await _set_menu(context.bot, scope):
        d.menu_chats.add((chat.id, user.id))


async def set_admin_menus(bot: Bot, admin_ids: frozenset[int],
                          menu_chats: set[tuple[int, int]]) -> None:
    """Command menu in each admin's private chat only; the default scope stays empty."""
    await bot.delete_my_commands()
    for admin_id in sorted(admin_ids):
        if await _set_menu(bot, BotCommandScopeChat(chat_id=admin_id)):
            menu_chats.add((admin_id, admin_id))
