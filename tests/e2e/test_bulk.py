"""Bulk actions from a filtered list: preview with the exact count, one confirmation, one
summary, audited, once per confirmation, on the previewed ids only."""

from __future__ import annotations

import asyncio
from pathlib import Path

from taskops.storage.domain import TaskStatus, Trigger
from tests.e2e.harness import Console, buttons, command, press, running_console
from tests.factories import make_task
from tests.fakegram import FakeTelegram


async def test_kill_all_running_of_a_cronjob_once_and_only_the_previewed(
        console: Console) -> None:
    store, clock = console.store, console.clock
    cron = [await make_task(store, clock, name=f"sync <{i}>", trigger=Trigger.CRONJOB)
            for i in range(6)]
    user = await make_task(store, clock, name="by hand")
    message = await command(console, "/tasks status:running trigger:cronjob")
    assert "🛑 Kill all 6 running here" in buttons(message)
    await press(console, message, "🛑 Kill all 6 running here")
    assert message.text.startswith("Kill 6 running tasks?\nThis will immediately abort these "
                                   "tasks. Any work in progress will be lost.")
    assert "sync <5>" in message.text
    assert "…and 1 more." in message.text
    assert buttons(message) == ["🛑 Kill 6", "Cancel"]
    late = await make_task(store, clock, name="late", trigger=Trigger.CRONJOB)  # not previewed
    server, chat = console.server, message.chat
    confirm = next(data for row in message.buttons for label, data in row
                   if label == "🛑 Kill 6")
    queries = await asyncio.gather(server.press(console.admin, chat, message.message_id, confirm),
                                   server.press(console.admin, chat, message.message_id, confirm))
    await server.wait_for(lambda: {a.query_id for a in server.callback_answers} >= set(queries))
    await server.wait_for(lambda: "Killed" in (server.last_bot_message(chat).text or ""))
    summary = server.last_bot_message(chat)
    assert summary.text.startswith("🛑 Killed 6 of 6 · by Ann")
    assert all(f"#{t.id} sync <" in summary.text for t in cron)
    tasks = await store.tasks_by_ids([t.id for t in cron] + [user.id, late.id])
    assert all(tasks[t.id].status is TaskStatus.FAILED for t in cron)
    assert tasks[user.id].status is TaskStatus.RUNNING
    assert tasks[late.id].status is TaskStatus.RUNNING
    summaries = [m for m in server.messages(chat) if m.from_bot and "Killed" in (m.text or "")]
    assert len(summaries) == 1
    log = await store.console.audit_log()
    kills = [e for e in log if e.action == "kill"]
    assert sorted(e.task_id for e in kills) == sorted(t.id for t in cron)
    assert all(e.outcome == "killed (bulk of 6)" for e in kills)
    await server.wait_for(lambda: message.text.startswith("Tasks ·"))
    assert "🛑 Kill all 1 running here" in buttons(message)  # only the late one is left
    assert server.violations == []


async def test_restart_all_failed_is_capped_and_cancel_changes_nothing(
        fakegram: FakeTelegram, tmp_path: Path) -> None:
    async with running_console(fakegram, tmp_path,
                               sections={"console": {"bulk_max": 2}}) as console:
        store, clock = console.store, console.clock
        for i in range(3):
            await make_task(store, clock, name=f"broken {i}", final="STATUS: failed\nSUMMARY: x")
        message = await command(console, "/tasks status:failed")
        await press(console, message, "🔁 Restart all 3 failed here")
        assert "Only 2 of the 3 here: at most 2 at once ([console] bulk_max)." in message.text
        await press(console, message, "Cancel")
        assert message.text.startswith("Tasks ·")
        assert (await store.list_tasks()).total == 3
        await press(console, message, "🔁 Restart all 3 failed here")
        await press(console, message, "🔁 Restart 2")
        server = console.server
        await server.wait_for(lambda: "Restarted" in (server.last_bot_message(message.chat).text
                                                      or ""))
        summary = server.last_bot_message(message.chat)
        assert summary.text.startswith("🔁 Restarted 2 of 2 · by Ann")
        assert "restarted as #4" in summary.text
        assert (await store.list_tasks()).total == 5
        restarts = [e for e in await store.console.audit_log() if e.action == "restart"]
        assert len(restarts) == 2
