"""Live task views: edited as events arrive, at most once every 2 s, to the final render."""

from __future__ import annotations

import asyncio
import itertools

from taskops.bot.views import ViewKind
from taskops.storage.domain import EventKind
from tests.e2e.harness import Console, buttons, command, press
from tests.factories import make_task
from tests.fakegram import FakeMessage


def edit_times(console: Console, message: FakeMessage) -> list[float]:
    return [c.at for c in console.server.calls_of("editMessageText")
            if str(c.params.get("message_id")) == str(message.message_id)
            and str(c.params.get("chat_id")) == str(message.chat.id) and c.status == 200]


async def opened(console: Console, text: str) -> FakeMessage:
    """A command's console message, once the bot has saved its view: the save (which
    marks the view used, at the store's time) comes just after the message appears, and
    a clock moved in between would make the view used after the move."""
    message = await command(console, text)

    async def saved() -> bool:
        view = await console.store.console.find(message.chat.id, message.message_id,
                                                ViewKind.LIST)
        return view is not None

    await console.server.wait_for(saved)
    return message


async def event(console: Console, task_id: int, text: str) -> None:
    console.clock.advance(1)  # the store's clock: each event is newer than the last render
    await console.store.append_event(task_id, EventKind.TEXT, {"text": text})


async def test_the_open_detail_follows_a_task_to_its_end_within_the_edit_budget(
        console: Console) -> None:
    task = await make_task(console.store, console.clock, name="live one")
    message = await opened(console, f"/task {task.id}")
    assert "● Live" in message.text
    assert "▶ Follow" in buttons(message)
    for i in range(12):
        await event(console, task.id, f"step {i}")
        await asyncio.sleep(0.3)
    console.clock.advance(1)
    await console.store.finish_task(task.id, "STATUS: completed\nSUMMARY: all **done**")
    await console.server.wait_for(lambda: "🟢" in message.text.splitlines()[0], timeout=10)
    assert "● Live" not in message.text
    assert "all done" in message.text
    assert "step 11" in message.text
    live = [e.text for e in message.edits if e.text and "● Live" in e.text]
    assert any("step" in text for text in live)  # shown while it ran
    times = edit_times(console, message)
    assert len(times) >= 2
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1.9, gaps  # at most one edit every 2 s
    assert len(times) <= 6  # coalesced: far fewer edits than events
    await asyncio.sleep(2.5)
    assert edit_times(console, message) == times  # nothing after the final render
    assert console.server.violations == []


async def test_follow_outlasts_the_idle_limit_until_another_view_opens(
        console: Console) -> None:
    followed = await make_task(console.store, console.clock, name="followed")
    other = await make_task(console.store, console.clock, name="other")
    message = await opened(console, f"/task {followed.id}")
    answer = await press(console, message, "▶ Follow", expect_edit=False)
    assert answer.text == f"Following #{followed.id}: this message updates as it runs."
    console.clock.advance(11 * 60)  # past the idle limit of an opened detail
    await event(console, followed.id, "still going")
    await console.server.wait_for(lambda: "still going" in message.text, timeout=5)
    await command(console, f"/task {other.id}")  # the chat opens another view
    await console.server.wait_for(lambda: _no_follows(console))
    edits = len(message.edits)
    await event(console, followed.id, "unseen")
    await asyncio.sleep(2.5)
    assert len(message.edits) == edits
    assert "unseen" not in message.text


async def test_a_detail_stops_being_live_after_ten_idle_minutes(console: Console) -> None:
    task = await make_task(console.store, console.clock, name="idle")
    message = await opened(console, f"/task {task.id}")
    console.clock.advance(11 * 60)
    await event(console, task.id, "nobody looks")
    await asyncio.sleep(2.5)
    assert message.edits == []


async def test_following_stops_after_30_quiet_minutes(console: Console) -> None:
    task = await make_task(console.store, console.clock, name="quiet")
    message = await opened(console, f"/task {task.id}")
    await press(console, message, "▶ Follow", expect_edit=False)
    console.clock.advance(31 * 60)
    await console.server.wait_for(lambda: _no_follows(console), timeout=5)
    edits = len(message.edits)
    await event(console, task.id, "too late")
    await asyncio.sleep(2.5)
    assert len(message.edits) == edits


async def test_follow_on_an_ended_task_just_says_so(console: Console) -> None:
    task = await make_task(console.store, console.clock, name="ends")
    message = await opened(console, f"/task {task.id}")
    await console.store.finish_task(task.id, "done")
    answer = await press(console, message, "▶ Follow")
    assert answer.text == f"Task #{task.id} is not running any more."
    assert "▶ Follow" not in buttons(message)


async def _no_follows(console: Console) -> bool:
    return await console.store.console.of_kind(ViewKind.FOLLOW) == []


async def test_a_restarted_tasks_view_follows_the_new_run_at_once(console: Console) -> None:
    """The detail that "Save & restart" opens shows the new run not started yet ("⏱ —").
    A worker in the same process starts it while the press is still saving that render:
    the start is no newer than the saved view, yet the message never showed it."""
    failed = await make_task(console.store, console.clock, name="flaky", final="STATUS: "
                             "failed\nSUMMARY: boom")
    message = await command(console, f"/task {failed.id}")
    await press(console, message, "🔁 Edit & restart")
    await press(console, message, "Save & restart")
    [new_id] = await console.store.restarted_as(failed.id)
    assert f"#{new_id}" in message.text.splitlines()[0]
    assert "⏱ —" in message.text
    await console.store.start_task(new_id)  # same store time as the press's save
    await console.server.wait_for(lambda: "⏱ —" not in message.text, timeout=5)
    assert "● Live" in message.text
