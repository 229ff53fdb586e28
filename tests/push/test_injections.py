"""Task results and status updates delivered to the Telegram chat a task belongs to."""

from __future__ import annotations

from pathlib import Path

from taskops.storage.domain import EventKind, TaskDraft, Trigger
from taskops.storage.store import TaskStore
from tests.e2e.harness import Console, running_console
from tests.fakegram import FakeTelegram
from tests.push.helpers import bot_messages, push

HOSTILE = '<b>x</b> & "q"'


async def child(store: TaskStore, chat_id: int | None, name: str = "child",
                trigger: Trigger = Trigger.AGENT) -> int:
    task = await store.create_task(TaskDraft(
        name=name, prompt="p", trigger=trigger,
        parent_session=f"telegram:{chat_id}" if chat_id is not None else "web:abc"))
    await store.start_task(task.id)
    return task.id


async def relay_ready(console: Console) -> None:
    """The relay starts at the feed's head the first time: wait until it has one."""
    await console.server.wait_for(lambda: push(console).relay.cursor is not None, timeout=10)


async def wait_relayed(console: Console) -> None:
    relay = push(console).relay

    async def done() -> bool:
        return relay.cursor is not None and not (
            await console.store.read_changes(relay.cursor, 1)).events

    await console.server.wait_for(done, timeout=10)


async def test_results_go_to_the_parent_chat_readably(console: Console) -> None:
    await relay_ready(console)
    dm = console.server.private_chat(console.admin)
    before = len(bot_messages(console, dm))
    done = await child(console.store, dm.id, name=f"report {HOSTILE}")
    await console.store.finish_task(
        done, f"STATUS: completed\nSUMMARY:\n**Found** 3 issues in `{HOSTILE}`")
    asks = await child(console.store, dm.id, name="asks")
    await console.store.finish_task(asks, "STATUS: question\nSUMMARY:\nWhich branch?")
    silent = await child(console.store, dm.id, name="silent")
    await console.store.finish_task(silent, "STATUS: silent\nSUMMARY:\nnothing")
    elsewhere = await child(console.store, None, name="web child")
    await console.store.finish_task(elsewhere, "done")
    killed = await child(console.store, dm.id, name="killed")
    await console.store.kill_task(killed, by="Ann")
    await wait_relayed(console)
    sent = bot_messages(console, dm)[before:]
    assert len(sent) == 3, [m.text for m in sent]
    result, question, kill = sent
    assert result.text.startswith(f"✅ report {HOSTILE} · #{done} completed")
    assert "Agent · ⏱ 0s · 0 tokens" in result.text
    assert f"Found 3 issues in {HOSTILE}" in result.text
    assert "<task_injection" not in result.text
    assert any(e["type"] == "bold" for e in result.entities)
    assert question.text.startswith(f"❓ asks · #{asks} asks a question")
    assert f"Answer with /answer {asks} your answer" in question.text
    assert kill.text.startswith(f"❌ killed · #{killed} failed")
    assert "Killed by Ann from Telegram" in kill.text
    assert console.server.violations == []


async def test_status_updates_go_to_the_parent_chat(console: Console) -> None:
    await relay_ready(console)
    group = console.server.add_group(-100600, "Team", members=[console.admin])
    task_id = await child(console.store, group.id, name="long run")
    await console.store.append_event(task_id, EventKind.PROGRESS, {
        "name": "long run", "elapsed_minutes": 10, "tool_calls": 42, "tokens": 12345,
        "text": "raw text"})
    await wait_relayed(console)
    [update] = bot_messages(console, group)
    assert update.text == (f"⏳ #{task_id} long run is still running\n"
                           "10m 0s elapsed · 42 tool calls · 12,345 tokens so far\n"
                           f"Stop it with /kill_task {task_id}")


async def test_a_result_while_the_bot_was_down_arrives_after_a_restart(
        fakegram: FakeTelegram, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'console.db'}"
    async with running_console(fakegram, tmp_path) as console:
        dm = fakegram.private_chat(console.admin)
        task_id = await child(console.store, dm.id)
        await wait_relayed(console)
        settings, clock = console.settings, console.clock
    store = await TaskStore.open(settings, clock=clock)
    await store.finish_task(task_id, "STATUS: failed\nSUMMARY: while down")
    await store.close()
    async with running_console(fakegram, tmp_path, db_url=url) as again:
        await wait_relayed(again)
        [result] = [m for m in bot_messages(again, dm) if f"#{task_id}" in (m.text or "")]
        assert "while down" in result.text
