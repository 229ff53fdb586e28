"""set/get/deleteMyCommands with every scope and language_code, and the menu users see."""

from __future__ import annotations

import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    BotCommandScopeChatAdministrators,
    BotCommandScopeChatMember,
    BotCommandScopeDefault,
)
from telegram.error import BadRequest

from tests.fakegram_tests.helpers import World, bot_fixture, flood_fixture, w_fixture  # noqa: F401


def cmds(*names: str) -> list[BotCommand]:
    return [BotCommand(n, f"{n} description") for n in names]


async def test_each_scope_is_stored_separately(bot: Bot, w: World) -> None:
    scopes = {
        "default": BotCommandScopeDefault(),
        "all_private_chats": BotCommandScopeAllPrivateChats(),
        "all_group_chats": BotCommandScopeAllGroupChats(),
        "all_chat_administrators": BotCommandScopeAllChatAdministrators(),
        "chat": BotCommandScopeChat(w.dm.id),
        "chat_administrators": BotCommandScopeChatAdministrators(w.group.id),
        "chat_member": BotCommandScopeChatMember(w.group.id, w.bob.id),
    }
    for name, scope in scopes.items():
        assert await bot.set_my_commands(cmds(name), scope=scope)
    for name, scope in scopes.items():
        got = await bot.get_my_commands(scope=scope)
        assert [c.command for c in got] == [name]
    assert w.server.commands() == [{"command": "default", "description": "default description"}]
    assert w.server.commands(BotCommandScopeAllGroupChats())[0]["command"] == "all_group_chats"
    assert w.server.commands({"type": "chat", "chat_id": w.dm.id})[0]["command"] == "chat"
    assert (
        w.server.commands({"type": "chat_member", "chat_id": w.group.id, "user_id": w.bob.id})[0][
            "command"
        ]
        == "chat_member"
    )
    assert await bot.delete_my_commands(scope=scopes["chat"])
    assert await bot.get_my_commands(scope=scopes["chat"]) == ()
    assert [c.command for c in await bot.get_my_commands()] == ["default"]


async def test_language_codes(bot: Bot, w: World) -> None:
    await bot.set_my_commands(cmds("tasks"))
    await bot.set_my_commands([BotCommand("tasks", "Aufgaben")], language_code="de")
    assert (await bot.get_my_commands(language_code="de"))[0].description == "Aufgaben"
    assert (await bot.get_my_commands())[0].description == "tasks description"
    assert await bot.get_my_commands(language_code="fr") == ()  # no fallback in getMyCommands
    assert w.server.commands(language_code="de") == [
        {"command": "tasks", "description": "Aufgaben"}
    ]
    with pytest.raises(BadRequest):
        await bot.set_my_commands(cmds("x"), language_code="german")
    assert await bot.set_my_commands([])  # an empty list deletes
    assert w.server.commands() == []


async def test_visible_menu_resolution(bot: Bot, w: World) -> None:
    await bot.set_my_commands(cmds("help"))
    await bot.set_my_commands(cmds("tasks", "task"), scope=BotCommandScopeChat(w.dm.id))
    await bot.set_my_commands(cmds("admin"), scope=BotCommandScopeChatAdministrators(w.group.id))
    bob_dm = w.server.private_chat(w.bob)
    assert [c["command"] for c in w.server.visible_commands(w.ann, w.dm)] == ["tasks", "task"]
    assert [c["command"] for c in w.server.visible_commands(w.bob, bob_dm)] == ["help"]
    assert [c["command"] for c in w.server.visible_commands(w.ann, w.group)] == ["admin"]
    assert [c["command"] for c in w.server.visible_commands(w.bob, w.group)] == ["help"]
    await bot.set_my_commands(cmds("hilfe"), language_code="de")
    assert [c["command"] for c in w.server.visible_commands(w.bob, bob_dm, "de")] == ["hilfe"]


async def test_invalid_commands_and_scopes(bot: Bot, w: World) -> None:
    with pytest.raises(BadRequest):
        await bot.set_my_commands([BotCommand("Bad-Name", "x")])
    assert w.server.violations[-1].description == "Bad Request: BOT_COMMAND_INVALID"
    with pytest.raises(BadRequest):
        await bot.set_my_commands(cmds("ok"), scope=BotCommandScopeChat(-100777))
    assert w.server.violations[-1].description == "Bad Request: chat not found"
