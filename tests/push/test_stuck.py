"""Stuck tasks are announced once to subscribed chats, with Kill."""

from __future__ import annotations

from taskops.storage.domain import EventKind, TaskDraft, TaskStatus
from tests.e2e.harness import Console, buttons, press
from tests.factories import make_task
from tests.push.helpers import notices, press_for_reply, push, subscribe


async def test_a_task_without_events_is_announced_once_with_kill(console: Console) -> None:
    dm = console.server.private_chat(console.admin)
    await subscribe(console)
    quiet = await make_task(console.store, console.clock, name="quiet <one>")
    busy = await make_task(console.store, console.clock, name="busy")
    console.clock.advance(14 * 60)
    await console.store.append_event(busy.id, EventKind.TEXT, {"text": "working"})
    assert await push(console).stuck.check() == 0  # 14 minutes: not yet
    console.clock.advance(2 * 60)
    assert await push(console).stuck.check() == 1
    assert await push(console).stuck.check() == 0  # once
    [stuck] = notices(console, dm)
    assert stuck.text.startswith(f"⏳ Task looks stuck · ⚪ #{quiet.id} quiet <one>")
    assert "No activity of its own for 16m 0s." in stuck.text
    assert buttons(stuck) == ["🙋 I'm on it", "🔎 Open", "🛑 Kill"]
    confirm = await press_for_reply(console, stuck, "🛑 Kill")
    assert confirm.text.startswith("Kill running task?")
    answer = await press(console, confirm, "🛑 Kill")
    assert answer.text == "Task killed successfully."
    assert (await console.store.get_task(quiet.id)).status is TaskStatus.FAILED
    await console.server.wait_for(lambda: "🛑 killed by Ann" in stuck.text)
    assert console.server.flood_violations == []


async def test_a_task_past_its_max_duration_is_stuck(console: Console) -> None:
    dm = console.server.private_chat(console.admin)
    await subscribe(console)
    task = await console.store.create_task(TaskDraft(name="overdue", prompt="p",
                                                     max_duration_minutes=5))
    await console.store.start_task(task.id)
    for _ in range(6):
        console.clock.advance(60)
        await console.store.append_event(task.id, EventKind.TEXT, {"text": "still here"})
    assert await push(console).stuck.check() == 1
    [stuck] = notices(console, dm)
    assert "Running for 6m 0s — past its max duration of 5m 0s." in stuck.text


async def test_paused_time_counts_towards_max_duration(console: Console) -> None:
    dm = console.server.private_chat(console.admin)
    await subscribe(console)
    task = await console.store.create_task(TaskDraft(name="asks", prompt="p",
                                                     max_duration_minutes=5))
    await console.store.start_task(task.id)
    await console.store.finish_task(task.id, "STATUS: question\nSUMMARY: ?")
    console.clock.advance(3 * 60)  # three minutes waiting for the answer
    await console.store.resume_task(task.id, "go", by="Ann")
    console.clock.advance(60)
    await console.store.append_event(task.id, EventKind.TEXT, {"text": "back"})
    assert await push(console).stuck.check() == 0  # 4 minutes since the start
    console.clock.advance(2 * 60)
    await console.store.append_event(task.id, EventKind.TEXT, {"text": "still"})
    assert await push(console).stuck.check() == 1  # 6: one of them paused, all counted
    [stuck] = [m for m in notices(console, dm) if "Task looks stuck" in (m.text or "")]
    assert "past its max duration of 5m 0s." in stuck.text


async def test_stuck_respects_the_toggle_and_mute(console: Console) -> None:
    dm = console.server.private_chat(console.admin)
    settings = await subscribe(console)
    await press(console, settings, "✅ ⏳ Stuck tasks")
    await make_task(console.store, console.clock, name="ignored")
    console.clock.advance(20 * 60)
    assert await push(console).stuck.check() == 0
    await press(console, settings, "▫️ ⏳ Stuck tasks")
    await press(console, settings, "🔕 1 h")
    assert await push(console).stuck.check() == 0
    assert notices(console, dm) == []


async def test_status_updates_are_not_activity(console: Console) -> None:
    """Progress messages ("still running") are about the task, not by it: stuck all the
    same (README, "Stuck tasks")."""
    dm = console.server.private_chat(console.admin)
    await subscribe(console)
    task = await make_task(console.store, console.clock, name="silent worker")
    await console.store.append_event(task.id, EventKind.TOOL_CALL, {
        "tool": "shell", "arguments": {}, "result": "ok", "is_error": False,
        "duration_ms": 5})
    for minute in range(1, 17):
        console.clock.advance(60)
        await console.store.append_event(task.id, EventKind.PROGRESS, {
            "name": task.name, "elapsed_minutes": minute, "tool_calls": 1, "tokens": 0,
            "text": "still running"})
        if minute == 14:
            assert await push(console).stuck.check() == 0
    assert await push(console).stuck.check() == 1
    [stuck] = notices(console, dm)
    assert "No activity of its own for 16m 0s." in stuck.text
    assert buttons(stuck) == ["🙋 I'm on it", "🔎 Open", "🛑 Kill"]
    await press(console, stuck, "🙋 I'm on it")
    assert "🙋 Ann is on it" in stuck.text
