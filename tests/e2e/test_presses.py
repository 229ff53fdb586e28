"""Every press is answered and re-checked, whatever its data says."""

from __future__ import annotations

import pytest

from taskops.bot.callbacks import Action, Callback
from tests.e2e.harness import Console, command, press
from tests.factories import make_task
from tests.fakegram import CallbackAnswer, FakeMessage, FakeUser

EXPIRED = "This list has expired — send /tasks again."


async def answer_to(console: Console, message: FakeMessage, data: str | None,
                    user: FakeUser | None = None) -> CallbackAnswer:
    server = console.server
    query_id = await server.press(user or console.admin, message.chat, message.message_id,
                                  data)
    await server.wait_for(lambda: any(a.query_id == query_id for a in server.callback_answers),
                          message=f"press with data {data!r} not answered")
    return next(a for a in server.callback_answers if a.query_id == query_id)


@pytest.mark.parametrize("data", [
    "garbage",  # not our format at all
    "2:o:Ab12Cd34:1",  # a version this bot does not speak (an old or newer client)
    "1:~:Ab12Cd34:1",  # an action that does not exist
    "1:o:not a key!:1",  # a key no view can have
    "",
])
async def test_data_no_handler_takes_is_answered_as_expired(console: Console,
                                                            data: str) -> None:
    await make_task(console.store, console.clock)
    message = await command(console, "/tasks")
    answer = await answer_to(console, message, data)
    assert answer.text == EXPIRED
    assert message.edits == []


async def test_a_press_on_a_view_of_another_kind_changes_nothing(console: Console) -> None:
    # A settings message's key under a list action: the key exists, but not as a list.
    await make_task(console.store, console.clock)
    settings = await command(console, "/subscribe")
    key = settings.buttons[0][0][1].split(":")[2]
    answer = await answer_to(console, settings, Callback(Action.PAGE, key, "2").encode())
    assert answer.text == EXPIRED
    assert settings.edits == []


async def test_a_press_from_another_chat_changes_nothing(console: Console) -> None:
    await make_task(console.store, console.clock)
    mine = await command(console, "/tasks")
    key = mine.buttons[0][0][1].split(":")[2]
    theirs = await command(console, "/tasks", user=console.other_admin)
    answer = await answer_to(console, theirs, Callback(Action.REFRESH, key).encode(),
                             user=console.other_admin)
    assert answer.text == EXPIRED
    assert mine.edits == []
    assert theirs.edits == []


async def shown_view(console: Console, message: FakeMessage) -> str:
    """The key of a console message's view, once the bot has saved it beside the message."""
    key = message.buttons[0][0][1].split(":")[2]

    async def saved() -> bool:
        record = await console.store.console.get(key)
        return record is not None and record.message_id == message.message_id

    await console.server.wait_for(saved)
    return key


async def test_a_list_saved_by_the_previous_version_keeps_working(console: Console) -> None:
    for i in range(25):
        await make_task(console.store, console.clock, name=f"job {i:02d}", final="done")
    message = await command(console, "/tasks status:completed")
    key = await shown_view(console, message)
    # What the version before the declared schema stored for this list.
    await console.store.console.save(key, {
        "status": "completed", "trigger": None, "provider": None, "from": None, "to": None,
        "sort": "name", "desc": False, "page": 1, "screen": "list", "menu": None,
        "menu_page": 1, "menu_options": [], "task_id": None, "back_to": "list",
        "shows_running": False, "detail_page": 1, "page_starts": [0], "show_thinking": False,
        "draft": None, "draft_error": None})
    # As after the upgrade: a new process, which knows no view yet (the command's own
    # save may otherwise land in this process's cache after the one above).
    console.store.console.cache.forget(key)
    await press(console, message, "▶")
    assert "Page 2 of 3" in message.text
    assert "sorted by Name ▲" in message.text

    # The save goes alongside the edit (bot/screens.py finish_press), so it may land just
    # after the edited message does.
    async def stored_again_in_todays_shape() -> bool:
        record = await console.store.console.get(key)
        return record is not None and record.body.get("v") == 2

    await console.server.wait_for(stored_again_in_todays_shape)


async def test_a_damaged_view_is_answered_as_expired(console: Console) -> None:
    await make_task(console.store, console.clock)
    message = await command(console, "/tasks")
    key = await shown_view(console, message)
    await console.store.console.save(key, {"v": 2, "screen": "detail", "list": "oops"})
    answer = await press(console, message, "🔄 Refresh", expect_edit=False)
    assert answer.text == EXPIRED
    assert message.edits == []


async def test_the_sort_cycle_button_of_an_older_message_still_sorts(console: Console) -> None:
    for i in range(3):
        await make_task(console.store, console.clock, name=f"t{i}", final="done")
    message = await command(console, "/tasks")
    key = message.buttons[0][0][1].split(":")[2]
    query = await console.server.press(console.admin, message.chat, message.message_id,
                                       f"1:s:{key}:field")
    await console.server.wait_for(lambda: any(a.query_id == query
                                              for a in console.server.callback_answers))
    await console.server.wait_for(lambda: "sorted by Name ▼" in message.text)
