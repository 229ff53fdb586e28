"""The push side's alert rows and task questions, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from taskops.storage.domain import EventKind, TaskDraft, TaskStatus
from taskops.storage.push_store import AlertKind, AlertRepeat, DigestAppend, DigestItem, NewAlert
from taskops.storage.store import TaskStore
from tests.factories import FakeClock


async def test_ack_and_escalation_happen_once(store: TaskStore, clock: FakeClock) -> None:
    task = await store.create_task(TaskDraft(name="t", prompt="p"))
    alert = await store.push.add_alert(-100, NewAlert(task.id, AlertKind.FAILED, "k1", 5,
                                                      "cron:1", "<b>x</b>"))
    private = await store.push.add_alert(7, NewAlert(task.id, AlertKind.FAILED, "k2", 6,
                                                     None, "x"))
    assert alert.is_open
    assert (await store.push.alert_of_view("k1")) == alert
    assert await store.push.due_escalations(clock() - timedelta(minutes=1)) == []
    clock.advance(600)
    due = await store.push.due_escalations(clock() - timedelta(minutes=5))
    assert [a.id for a in due] == [alert.id]  # groups only
    assert await store.push.mark_escalated(alert.id)
    assert not await store.push.mark_escalated(alert.id)
    assert await store.push.due_escalations(clock()) == []
    acked, first = await store.push.ack_alert(private.id, "Ann")
    again, second = await store.push.ack_alert(private.id, "Olaf")
    assert first
    assert not second
    assert acked is not None
    assert again is not None
    assert again.acked_by == "Ann"
    assert not again.is_open


async def test_following_and_repeats(store: TaskStore) -> None:
    one = await store.create_task(TaskDraft(name="t", prompt="p"))
    two = await store.create_task(TaskDraft(name="t", prompt="p"))
    await store.push.subscribe(7, {}, created_by=1)
    await store.push.advance(7, "", alert=NewAlert(one.id, AlertKind.COMPLETED, "k", 9,
                                                   "name:t", "first", 11))
    latest = await store.push.latest_of_group(7, "name:t")
    assert latest is not None
    assert latest.count == 1
    assert latest.seen_event_id == 11
    await store.push.advance(7, "", alert=AlertRepeat(latest.id, two.id, "second", 12))
    latest = await store.push.latest_of_group(7, "name:t")
    assert latest is not None
    assert (latest.count, latest.task_id, latest.text) == (2, two.id, "second")
    assert [a.id for a in await store.push.alerts_following([two.id], 7)] == [latest.id]
    assert await store.push.alerts_following([one.id]) == []
    await store.push.update_alert(latest.id, lifecycle=["🔁 restarted by <Ann>"])
    assert (await store.push.alert(latest.id)).lifecycle == ["🔁 restarted by <Ann>"]


async def test_activity_is_the_tasks_own_events(store: TaskStore, clock: FakeClock) -> None:
    task = await store.create_task(TaskDraft(name="t", prompt="p"))
    await store.start_task(task.id)
    clock.advance(60)
    await store.append_event(task.id, EventKind.TOOL_CALL, {
        "tool": "sh", "arguments": {}, "result": "denied", "is_error": True})
    own = clock()
    for _ in range(3):
        clock.advance(60)
        await store.append_event(task.id, EventKind.PROGRESS, {"text": "still running"})
    assert await store.push.last_activity([task.id]) == {task.id: own}
    failed = await store.push.last_failed_tool_call(task.id)
    assert failed is not None
    assert failed.payload["result"] == "denied"


async def test_a_digest_keeps_every_task_page_by_page(store: TaskStore, clock: FakeClock) -> None:
    await store.push.subscribe(7, {}, created_by=1)
    first = [DigestItem(i, TaskStatus.FAILED, f"task {i}") for i in range(1, 6)]
    later = [DigestItem(i, TaskStatus.PAUSED if i % 2 else TaskStatus.FAILED, "n" * 100)
             for i in range(6, 12)]
    await store.push.advance(7, "", digest=DigestAppend("dg1", 0, first))
    clock.advance(30)
    await store.push.advance(7, "", digest=DigestAppend("dg1", 5, later))
    await store.push.advance(7, "", digest=DigestAppend("dg2", 0, first[:1]))
    page = await store.push.digest_page("dg1", 1, 4)
    assert page.total == 11
    assert page.counts == {TaskStatus.FAILED: 8, TaskStatus.PAUSED: 3}
    assert page.started is not None
    assert page.updated is not None
    assert (page.updated - page.started).total_seconds() == 30
    assert [i.task_id for i in page.items] == [11, 10, 9, 8]
    assert page.items[0].status is TaskStatus.PAUSED
    assert len(page.items[0].name) == 64
    last = await store.push.digest_page("dg1", 3, 4)
    assert [i.task_id for i in last.items] == [3, 2, 1]
    assert (await store.push.digest_page("nope", 1, 4)).total == 0
    # Forgotten with their message state, and only then.
    clock.advance(3600)
    await store.console.put("dg1", "digest", 7, {})
    assert await store.push.forget_digests(clock()) == 1  # dg2's one task
    assert (await store.push.digest_page("dg1", 1, 4)).total == 11


async def test_a_digest_carries_alerts_acked_at_once(store: TaskStore, clock: FakeClock) -> None:
    tasks = [await store.create_task(TaskDraft(name=f"t{i}", prompt="p")) for i in range(3)]
    await store.push.subscribe(-100, {}, created_by=1)
    carried = [NewAlert(t.id, AlertKind.FAILED, "dg", 9, None, f"t{i}", 20 + i)
               for i, t in enumerate(tasks)]
    await store.push.advance(-100, "", digest=DigestAppend("dg", 0, [
        DigestItem(t.id, TaskStatus.FAILED, t.name) for t in tasks]), digest_alerts=carried)
    found = await store.push.alerts_of_view("dg")
    assert [(a.task_id, a.message_id, a.group_key) for a in found] == \
        [(t.id, 9, None) for t in tasks]
    await store.push.update_alert(found[0].id, resolved_at=clock())
    assert await store.push.ack_alerts_of_view("dg", "Ann") == 2  # not the resolved one
    assert await store.push.ack_alerts_of_view("dg", "Olaf") == 0
    after = await store.push.alerts_of_view("dg")
    assert [a.acked_by for a in after] == [None, "Ann", "Ann"]
    clock.advance(600)
    assert await store.push.due_escalations(clock()) == []
