"""The bot skeleton end to end: admin gate, /start, /help, command menus."""

from __future__ import annotations

import asyncio

from telegram import BotCommandScopeChat

from tests.e2e.harness import ADMIN_ID, OTHER_ADMIN_ID, Console


async def test_admin_start_and_help(console: Console) -> None:
    server, dm = console.server, console.server.private_chat(console.admin)
    await server.send_text(console.admin, dm, "/start")
    await server.wait_for(lambda: server.last_bot_message(dm) is not None)
    start = server.last_bot_message(dm)
    assert start is not None
    assert start.text is not None
    assert "Hello, Ann" in start.text
    assert "/help — What this bot can do" in start.text
    await server.send_text(console.admin, dm, "/help")
    await server.wait_for(lambda: len([m for m in server.messages(dm) if m.from_bot]) == 2)
    help_ = server.last_bot_message(dm)
    assert help_ is not None
    assert help_.text is not None
    assert help_.text.startswith("taskops commands")
    assert "/start — Start the console" in help_.text
    assert server.violations == []


async def test_commands_addressed_to_the_bot_in_a_group(console: Console) -> None:
    server = console.server
    group = server.add_group(-100500, "Ops", members=[console.admin, console.stranger])
    await server.send_text(console.admin, group, "/help@taskops_bot")
    await server.wait_for(lambda: server.last_bot_message(group) is not None)
    assert server.violations == []


async def test_a_stranger_gets_nothing_in_private_or_group(console: Console) -> None:
    server = console.server
    dm = server.private_chat(console.stranger)
    group = server.add_group(-100501, "Ops", members=[console.admin, console.stranger])
    await server.send_text(console.stranger, dm, "/start")
    await server.send_text(console.stranger, dm, "/help")
    await server.send_text(console.stranger, group, "/help@taskops_bot")
    # Then an admin's message, answered only after the stranger's were processed.
    admin_dm = server.private_chat(console.admin)
    await server.send_text(console.admin, admin_dm, "/help")
    await server.wait_for(lambda: server.last_bot_message(admin_dm) is not None)
    await asyncio.sleep(0.2)
    assert server.last_bot_message(dm) is None
    assert server.last_bot_message(group) is None
    sent_to = {c.params.get("chat_id") for c in server.calls_of("sendMessage")}
    assert sent_to == {ADMIN_ID}


async def test_a_stranger_pressing_a_button_in_a_group_changes_nothing(console: Console) -> None:
    server = console.server
    group = server.add_group(-100502, "Ops", members=[console.admin, console.stranger])
    await server.send_text(console.admin, group, "/help@taskops_bot")
    await server.wait_for(lambda: server.last_bot_message(group) is not None)
    message = server.last_bot_message(group)
    assert message is not None
    calls_before = len(server.calls)
    query_id = await server.press(console.stranger, group, message.message_id, "v1:x")
    await server.wait_for(lambda: any(a.query_id == query_id for a in server.callback_answers))
    answer = next(a for a in server.callback_answers if a.query_id == query_id)
    assert (answer.text, answer.show_alert) == (None, False)
    methods = {c.method for c in server.calls[calls_before:]}
    assert methods <= {"getUpdates", "answerCallbackQuery"}
    after = server.last_bot_message(group)
    assert after is not None
    assert after.edits == []
    assert after.text == message.text


async def test_command_menu_is_scoped_to_admins(console: Console) -> None:
    server = console.server
    await server.wait_for(lambda: len(server.calls_of("setMyCommands")) >= 2)
    assert server.commands() == []  # the default scope: what everyone else sees
    for admin_id in (ADMIN_ID, OTHER_ADMIN_ID):
        names = [c["command"] for c in server.commands(scope=BotCommandScopeChat(admin_id)
                                                      .to_dict())]
        assert names[:2] == ["start", "help"]
