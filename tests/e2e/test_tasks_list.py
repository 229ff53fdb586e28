"""The /tasks list end to end through the fake Telegram server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from taskops.bot.refresh import refresh_lists
from taskops.storage.domain import ListFilters, ProviderChoice, Sort, SortField, TaskStatus, Trigger
from taskops.storage.models import ConsoleStateRow
from tests.e2e.harness import (
    Console,
    buttons,
    command,
    press,
    row_number,
    running_console,
    task_ids,
)
from tests.factories import make_task
from tests.fakegram import FakeTelegram

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


async def seed(console: Console, n: int = 25) -> None:
    store, clock = console.store, console.clock
    providers = [None, ProviderChoice("openai", "gpt-4o"), ProviderChoice("anthropic",
                                                                           "claude-3-haiku")]
    triggers = list(Trigger)
    for i in range(n):
        outcome = i % 4
        final = {0: "done", 1: "STATUS: failed\nSUMMARY: boom", 2: None,
                 3: "STATUS: question\nSUMMARY: which?"}[outcome]
        await make_task(store, clock, name=f"job {i:02d} <&>", trigger=triggers[i % 5],
                        provider=providers[i % 3],
                        created=NOW - timedelta(days=n - i, minutes=i),
                        run_seconds=30 + i * 7, tokens=(100 * i, 10 * i), final=final)
    clock.set(NOW)


async def test_empty_state(console: Console) -> None:
    message = await command(console, "/tasks")
    assert "No tasks yet" in message.text
    assert ("Background tasks will appear here once they are triggered by you, the agent, "
            "or a scheduled cronjob.") in message.text
    assert "Page" not in message.text
    assert "✖ Clear filters" not in buttons(message)


async def test_list_blocks_and_paging_cover_every_task_once(console: Console) -> None:
    await seed(console)
    message = await command(console, "/tasks")
    assert message.text.startswith("Tasks · All · sorted by Created ▼")
    assert "25 tasks · Page 1 of 3" in message.text
    assert "job 24 <&>" in message.text
    assert "⚪" in message.text
    assert "🟢" in message.text
    # Each task once: its text row; its button is only the row's number.
    assert buttons(message)[:10] == [str(n) for n in range(1, 11)]
    assert all("job" not in label for label in buttons(message))
    seen = task_ids(message)
    assert len(seen) == 10
    for expected_page in (2, 3):
        await press(console, message, "▶")
        assert f"25 tasks · Page {expected_page} of 3" in message.text
        seen += task_ids(message)
    assert "▶" not in buttons(message)
    assert "⏭" not in buttons(message)
    assert sorted(seen) == list(range(1, 26))
    assert seen == sorted(seen, reverse=True)  # created descending
    await press(console, message, "◀")
    await press(console, message, "◀")
    assert "Page 1 of 3" in message.text
    assert "◀" not in buttons(message)
    assert "⏮" not in buttons(message)
    # The provider line (and the token split) are one tap away: the row's number.
    await press(console, message, "1")
    assert "Default (scripted – scripted)" in message.text
    assert console.server.violations == []


async def test_first_and_last_page_in_one_tap(console: Console) -> None:
    await seed(console)
    message = await command(console, "/tasks")
    await press(console, message, "⏭")
    assert "25 tasks · Page 3 of 3" in message.text
    last = await console.store.list_tasks(page=3)
    assert task_ids(message) == [t.id for t in last.tasks]
    await press(console, message, "◀")
    assert "Page 2 of 3" in message.text
    await press(console, message, "⏮")
    assert "Page 1 of 3" in message.text
    assert task_ids(message) == [t.id for t in (await console.store.list_tasks()).tasks]


async def test_running_tasks_get_a_kill_button_and_counting_duration(console: Console) -> None:
    await seed(console, 8)
    message = await command(console, "/tasks")
    running = [t for t in (await console.store.list_tasks()).tasks
               if t.status is TaskStatus.RUNNING]
    kill_buttons = [b for b in buttons(message) if b.startswith("🛑 ")]
    assert kill_buttons == [f"🛑 {row_number(message, t.id)}" for t in running]
    assert len(running) == 2


@pytest.mark.parametrize(("menu", "option", "expected"), [
    ("Status:", "🔴 Failed", ListFilters(status=TaskStatus.FAILED)),
    ("Trigger:", "Cronjob", ListFilters(trigger=Trigger.CRONJOB)),
    ("Provider:", "openai/gpt-4o", ListFilters(provider=ProviderChoice("openai", "gpt-4o"))),
    ("Provider:", "Default", ListFilters(provider=ProviderChoice.default())),
])
async def test_each_filter_from_its_menu(console: Console, menu: str, option: str,
                                         expected: ListFilters) -> None:
    await seed(console)
    message = await command(console, "/tasks")
    await press(console, message, menu)
    assert "« Back" in buttons(message)
    await press(console, message, option)
    page = await console.store.list_tasks(expected)
    assert task_ids(message) == [t.id for t in page.tasks]
    assert page.total > 0
    label = option.split(" ", 1)[-1] if menu == "Status:" else option
    assert f"{menu} {label}" in buttons(message)
    assert "✖ Clear filters" in buttons(message)
    await press(console, message, "✖ Clear filters")
    assert "25 tasks" in message.text


async def test_provider_menu_lists_only_pairs_found_in_tasks(console: Console) -> None:
    await seed(console, 6)
    message = await command(console, "/tasks")
    await press(console, message, "Provider:")
    options = buttons(message)
    assert options[:4] == ["All", "Default", "anthropic/claude-3-haiku", "openai/gpt-4o"]
    assert "gpt-4o-mini" not in " ".join(options)  # configured price, but no task used it


async def test_provider_menu_offers_only_providers_under_the_other_filters(
        console: Console) -> None:
    await seed(console, 6)  # the failed tasks ran on openai and anthropic, none on Default
    message = await command(console, "/tasks")
    await press(console, message, "Status:")
    await press(console, message, "🔴 Failed")
    await press(console, message, "Provider:")
    assert buttons(message)[:4] == ["All", "anthropic/claude-3-haiku", "openai/gpt-4o",
                                    "« Back"]


async def test_a_provider_selection_no_longer_available_is_dropped(console: Console) -> None:
    await seed(console, 6)
    message = await command(console, "/tasks")
    await press(console, message, "Provider:")
    await press(console, message, "Default")
    assert "Provider: Default" in buttons(message)
    await press(console, message, "Status:")
    await press(console, message, "🔴 Failed")  # no failed task ran on the default
    assert "Provider: Default" not in buttons(message)
    failed = await console.store.list_tasks(ListFilters(status=TaskStatus.FAILED))
    assert task_ids(message) == [t.id for t in failed.tasks]
    assert failed.total == 2


async def test_date_presets_and_typed_dates(console: Console) -> None:
    await seed(console)
    message = await command(console, "/tasks")
    await press(console, message, "From:")
    await press(console, message, "Last 7 days")
    expected = await console.store.list_tasks(ListFilters(
        date_from=NOW.astimezone(console.store.tz).date() - timedelta(days=6)))
    assert task_ids(message) == [t.id for t in expected.tasks]
    assert "from " in message.text.splitlines()[0]
    # A typed To date earlier than From is refused, and nothing changes.
    await press(console, message, "To:")
    before = message.text
    await press(console, message, "📅 Type a date", expect_edit=False)
    prompt = console.server.last_bot_message(message.chat)
    assert "as YYYY-MM-DD" in prompt.text
    await console.server.reply_to(console.admin, message.chat, prompt.message_id, "2026-11-01")
    await console.server.wait_for(lambda: "is after To" in
                                  console.server.last_bot_message(message.chat).text)
    assert message.text == before
    await console.server.reply_to(console.admin, message.chat, prompt.message_id, "not a date")
    await console.server.wait_for(lambda: "is not a date" in
                                  console.server.last_bot_message(message.chat).text)
    edits = len(message.edits)
    await console.server.reply_to(console.admin, message.chat, prompt.message_id, "2026-11-19")
    await console.server.wait_for(lambda: len(message.edits) > edits)
    assert "to 19 Nov 2026" in message.text.splitlines()[0]


async def test_text_filters(console: Console) -> None:
    await seed(console)
    message = await command(console, "/tasks status:failed trigger:agent sort:-cost page:1")
    expected = await console.store.list_tasks(
        ListFilters(status=TaskStatus.FAILED, trigger=Trigger.AGENT),
        Sort(SortField.COST, True))
    assert task_ids(message) == [t.id for t in expected.tasks]
    assert message.text.startswith("Tasks · Failed · Agent · sorted by Est. cost ▼")
    message = await command(console, "/tasks provider:default from:2026-11-01 to:2026-11-20")
    assert "Default" in message.text.splitlines()[0]


@pytest.mark.parametrize(("args", "expected"), [
    ("status:done", "Unknown status 'done': use running, paused, completed or failed."),
    ("trigger:cron", "Unknown trigger 'cron'"),
    ("from:yesterday", "'yesterday' is not a date: use YYYY-MM-DD"),
    ("from:2026-11-20 to:2026-11-01", "is after To"),
    ("sort:price", "Unknown sort 'price'"),
    ("page:0", "'0' is not a page number"),
    ("colour:red", "Unknown filter 'colour'"),
    ("provider:openai", "is not a provider"),
])
async def test_bad_text_filters_get_one_clear_line(console: Console, args: str,
                                                   expected: str) -> None:
    message = await command(console, f"/tasks {args}")
    assert expected in message.text
    assert len(message.text.splitlines()) == 1
    assert message.buttons == []


async def test_every_sort_both_ways_in_two_taps(console: Console) -> None:
    await seed(console)
    message = await command(console, "/tasks")
    labels = {SortField.CREATED: "Created", SortField.NAME: "Name",
              SortField.DURATION: "Duration", SortField.TOKENS: "Tokens",
              SortField.COST: "Est. cost"}
    for field, label in labels.items():
        for descending in (True, False):
            arrow = "▼" if descending else "▲"
            await press(console, message, "↕")
            assert message.text.splitlines()[-2] == "Sort by:"
            await press(console, message, f"{label} {arrow}")
            expected = await console.store.list_tasks(sort=Sort(field, descending))
            assert task_ids(message) == [t.id for t in expected.tasks], (field, descending)
            assert f"sorted by {label} {arrow}" in message.text.splitlines()[0]
            assert f"↕ {label} {arrow}" in buttons(message)


async def test_refresh_after_a_task_changes(console: Console) -> None:
    await seed(console, 4)
    message = await command(console, "/tasks")
    running = next(t for t in (await console.store.list_tasks()).tasks
                   if t.status is TaskStatus.RUNNING)
    await console.store.finish_task(running.id, "done")
    await press(console, message, "🔄 Refresh")
    assert f"🟢 #{running.id} " in message.text


async def test_auto_refresh_follows_running_tasks_and_pauses_in_detail(
        console: Console) -> None:
    await seed(console, 4)
    message = await command(console, "/tasks")
    running = next(t for t in (await console.store.list_tasks()).tasks
                   if t.status is TaskStatus.RUNNING)
    assert await refresh_lists(console.app) in (0, 1)  # durations may tick; nothing else
    await console.store.finish_task(running.id, "STATUS: failed\nSUMMARY: x")
    assert await refresh_lists(console.app) == 1
    assert f"🔴 #{running.id} " in message.text
    # No running task shown: nothing changes, nothing is edited...
    assert await refresh_lists(console.app) == 0
    # ...but the first page of the newest tasks shows a new one as it appears.
    fresh = await make_task(console.store, console.clock, name="fresh")
    assert await refresh_lists(console.app) == 1
    assert "fresh" in message.text
    # ...until the chat opens a task: then the list is paused.
    await press(console, message, row_number(message, fresh.id))  # a running task
    other = await make_task(console.store, console.clock, name="other")
    assert await refresh_lists(console.app) == 0
    assert "other" not in message.text
    await press(console, message, "◀ Back to tasks")
    assert f"#{other.id} " in message.text
    assert await refresh_lists(console.app) == 0  # unchanged since the press
    console.clock.advance(11 * 60)
    await console.store.kill_task(other.id, by="x")
    assert await refresh_lists(console.app) == 0  # 10 minutes without a press


async def test_buttons_keep_working_after_a_restart(fakegram: FakeTelegram,
                                                    tmp_path: Path) -> None:
    async with running_console(fakegram, tmp_path) as console:
        await seed(console)
        message = await command(console, "/tasks sort:name")
    async with running_console(fakegram, tmp_path,
                               db_url=f"sqlite+aiosqlite:///{tmp_path / 'console.db'}") as again:
        await press(again, message, "▶")
        assert "Page 2 of 3" in message.text
        assert "sorted by Name ▲" in message.text
        answer = await press(again, message, "Status:", expect_edit=True)
        assert answer.text is None


async def test_a_forgotten_view_says_it_expired(console: Console) -> None:
    await seed(console, 12)
    message = await command(console, "/tasks")
    key = message.buttons[0][0][1].split(":")[2]
    await console.store.console.delete(key)
    answer = await press(console, message, "▶", expect_edit=False)
    assert answer.text == "This list has expired — send /tasks again."
    assert message.edits == []


async def test_kill_from_the_list(console: Console) -> None:
    await seed(console, 4)
    message = await command(console, "/tasks")
    await press(console, message, "🛑 ")
    assert message.text.startswith("Kill running task?\nThis will immediately abort the task. "
                                   "Any work in progress will be lost.")
    assert buttons(message) == ["🛑 Kill", "Cancel"]
    await press(console, message, "Cancel")
    assert message.text.startswith("Tasks ·")
    await press(console, message, "🛑 ")
    answer = await press(console, message, "🛑 Kill")
    assert answer.text == "Task killed successfully."
    assert message.text.startswith("Tasks ·")
    killed = [t for t in (await console.store.list_tasks()).tasks if t.killed_by]
    assert len(killed) == 1
    assert killed[0].killed_by == "Ann"
    log = await console.store.console.audit_log()
    assert log[0].action == "kill"
    assert log[0].outcome == "killed"


async def test_a_stranger_in_a_group_cannot_press_list_buttons(console: Console) -> None:
    await seed(console, 12)
    group = console.server.add_group(-100900, "Ops", members=[console.admin, console.stranger])
    message = await command(console, "/tasks@taskops_bot", chat=group)
    text = message.text
    await press(console, message, "▶", user=console.stranger, expect_edit=False)
    kill_data = next(data for row in message.buttons for label, data in row
                     if label.startswith("🛑 "))
    query = await console.server.press(console.stranger, group, message.message_id, kill_data)
    await console.server.wait_for(lambda: any(a.query_id == query
                                              for a in console.server.callback_answers))
    assert message.text == text
    assert message.edits == []
    assert all(t.killed_by is None for t in (await console.store.list_tasks()).tasks)


async def test_search_from_the_command_and_the_button(console: Console) -> None:
    await seed(console)
    message = await command(console, "/tasks status:failed job")
    failed = await console.store.list_tasks(ListFilters(status=TaskStatus.FAILED))
    assert task_ids(message) == [t.id for t in failed.tasks]
    assert "🔎 job" in message.text.splitlines()[0]
    message = await command(console, "/tasks #7")
    assert task_ids(message) == [7]
    await press(console, message, "🔎", expect_edit=False)
    prompt = console.server.last_bot_message(message.chat)
    assert "search task names" in prompt.text
    await console.server.reply_to(console.admin, message.chat, prompt.message_id, "-")
    await console.server.wait_for(lambda: "🔎" not in message.text.splitlines()[0])
    assert "25 tasks · Page 1 of 3" in message.text
    await press(console, message, "🔎", expect_edit=False)
    prompt = console.server.last_bot_message(message.chat)
    edits = len(message.edits)
    await console.server.reply_to(console.admin, message.chat, prompt.message_id, "JOB 1")
    await console.server.wait_for(lambda: len(message.edits) > edits)
    # "1" is an id fragment: the word "job" and the id 1 both match task 1 only.
    assert task_ids(message) == [1]


async def test_next_and_prev_seek_from_the_rows_shown(console: Console) -> None:
    await seed(console)
    # Nothing running: the auto-refresh (which re-reads a page by its number) stays away.
    for task in (await console.store.list_tasks(ListFilters(status=TaskStatus.RUNNING))).tasks:
        await console.store.finish_task(task.id, "done")
    message = await command(console, "/tasks sort:name")
    first = task_ids(message)
    await press(console, message, "▶")
    second = task_ids(message)
    # A task that sorts before every shown row does not shift the next page: ▶ goes on
    # from the last row shown, ◀ back from the first.
    await make_task(console.store, console.clock, name="aaa first", created=NOW)
    await press(console, message, "▶")
    third = task_ids(message)
    assert "Page 3 of 3" in message.text
    assert not set(third) & set(second + first)
    await press(console, message, "◀")
    assert task_ids(message) == second
    await press(console, message, "◀")
    assert task_ids(message) == first


async def test_a_press_reads_a_view_another_replica_changed(console: Console) -> None:
    """The press path acts on its cached view only while the message shows the keyboard
    this process gave it: a view another bot replica changed is read from the store."""
    await seed(console)
    message = await command(console, "/tasks")
    key = message.buttons[0][0][1].split(":")[2]
    record = await console.store.console.get(key)
    assert record is not None
    body = dict(record.body)
    body["list"] = {**body["list"], "sort": {"field": "name", "descending": False}}
    # The other replica writes the row and edits the message (not through this process).
    async with console.store.db.write() as conn:
        await conn.execute(update(ConsoleStateRow).where(ConsoleStateRow.key == key)
                           .values(body=body))
    await console.app.bot.edit_message_reply_markup(
        message.chat.id, message.message_id, reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton("🔄 Refresh", callback_data=f"1:r:{key}:")]]))
    await console.server.wait_for(lambda: buttons(message) == ["🔄 Refresh"])
    # The auto-refresh may render the changed view first (then the press's edit is "not
    # modified"): either way the message shows the other replica's sort.
    await press(console, message, "🔄 Refresh", expect_edit=False)
    await console.server.wait_for(lambda: "sorted by Name ▲" in message.text)
    by_name = await console.store.list_tasks(sort=Sort(SortField.NAME, False))
    assert task_ids(message) == [t.id for t in by_name.tasks]
