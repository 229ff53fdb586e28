"""Bursts become digests: nothing missing, nothing twice, no flood-limit violation."""

from __future__ import annotations

import asyncio
from pathlib import Path

from taskops.storage.domain import TaskStatus
from tests.e2e.harness import Console, buttons, press, running_console
from tests.fakegram import FakeMessage, FakeTelegram
from tests.push.helpers import (
    LISTED,
    digest_total,
    is_digest,
    is_single,
    notices,
    notified_ids,
    running_tasks,
    subscribe,
    wait_delivered,
)


def delivered(messages: list[FakeMessage]) -> tuple[int, list[int]]:
    """(changes counted by digests and singles, ids listed anywhere)."""
    total, listed = 0, []
    for message in messages:
        if is_digest(message):
            total += digest_total(message)
            listed += [int(i) for i in LISTED.findall(message.text or "")]
        else:
            total += 1
            listed += notified_ids(message)
    return total, listed


async def test_a_burst_of_500_becomes_digests_with_nothing_missing(console: Console) -> None:
    server = console.server
    dm = server.private_chat(console.admin)
    group = server.add_group(-100500, "Ops", members=[console.admin])
    await subscribe(console)
    await subscribe(console, chat=group)
    ids = await running_tasks(console.store, 500)
    for task_id in ids:
        await console.store.fail_task(task_id, "Max duration exceeded")
    await wait_delivered(console, dm.id, group.id, timeout=60)
    for chat in (dm, group):
        sent = notices(console, chat)
        total, listed = delivered(sent)
        assert total == 500, [m.text[:80] for m in sent]
        assert len(listed) == len(set(listed))
        assert set(listed) <= set(ids)
        digests = [m for m in sent if is_digest(m)]
        assert digests, "a burst goes as a digest"
        assert len(sent) <= 10  # not 500 messages
        assert "tasks failed in the last minute" in digests[0].text
        assert all(len(m.text) <= 4096 for m in sent)
    last = notices(console, dm)[-1]
    if is_digest(last) and digest_total(last) > 8:
        assert last.text.splitlines()[-1].endswith(f"page 1 of {-(-digest_total(last) // 8)}")
    assert server.flood_violations == []


async def test_a_digest_is_extended_in_place_while_the_burst_lasts(console: Console) -> None:
    dm = console.server.private_chat(console.admin)
    await subscribe(console)
    ids = await running_tasks(console.store, 10)
    for task_id in ids[:5]:
        await console.store.fail_task(task_id, "first wave")
    await wait_delivered(console, dm.id)
    [digest] = [m for m in notices(console, dm) if is_digest(m)]
    shown = digest_total(digest)
    for task_id in ids[5:]:  # within the digest window (10 s)
        await console.store.fail_task(task_id, "second wave")
    await wait_delivered(console, dm.id)
    assert [m for m in notices(console, dm) if is_digest(m)] == [digest]
    assert digest.edits, "extended in place"
    assert digest_total(digest) == shown + 5
    assert delivered(notices(console, dm))[0] == 10
    listed = [int(i) for i in LISTED.findall(digest.text)]
    assert listed[:5] == ids[5:][::-1]  # newest first


async def test_digest_lists_open_buttons_and_the_list_button(console: Console) -> None:
    dm = console.server.private_chat(console.admin)
    settings = await subscribe(console)
    await press(console, settings, "▫️ 🟢 Completed")
    ids = await running_tasks(console.store, 6)
    for task_id in ids[:4]:
        await console.store.fail_task(task_id, "boom")
    for task_id in ids[4:]:
        await console.store.finish_task(task_id, "done")
    await wait_delivered(console, dm.id)
    sent = notices(console, dm)
    assert delivered(sent)[0] == 6
    digest = next(m for m in sent if is_digest(m))
    labels = buttons(digest)
    assert labels[-1] == "📋 Show in the list"
    opened = next(label for label in labels if label.startswith("🔴 #"))
    await press(console, digest, opened)
    # The digest became the task's detail; its header carries the #id (issue 15).
    header = digest.text.splitlines()[0]
    assert header.startswith(f"{opened} burst ")
    assert header.endswith(" · Failed")
    assert "◀ Back to tasks" in buttons(digest)
    await press(console, digest, "◀ Back to tasks")
    assert digest.text.startswith("Tasks ·")
    # A digest someone pressed is theirs now: later changes start a new message.
    before = notices(console, dm)
    more = await running_tasks(console.store, 5, name="later")
    for task_id in more:
        await console.store.fail_task(task_id, "again")
    await wait_delivered(console, dm.id)
    assert digest.text.startswith("Tasks ·")
    later = [m for m in notices(console, dm) if m not in before]
    assert digest not in later
    assert delivered(later)[0] == 5


async def test_a_quiet_window_closes_the_digest(fakegram: FakeTelegram, tmp_path: Path) -> None:
    sections = {"notifications": {"digest_threshold": 2, "digest_window_seconds": 0.5}}
    async with running_console(fakegram, tmp_path, sections=sections) as console:
        dm = fakegram.private_chat(console.admin)
        await subscribe(console)
        ids = await running_tasks(console.store, 7)
        for task_id in ids[:5]:
            await console.store.fail_task(task_id, "burst")
        await wait_delivered(console, dm.id)
        await asyncio.sleep(1.0)  # longer than the window: the burst is over
        await console.store.fail_task(ids[5], "alone")
        await wait_delivered(console, dm.id)
        sent = notices(console, dm)
        assert is_single(sent[-1])
        assert notified_ids(sent[-1]) == [ids[5]]
        assert delivered(sent)[0] == 6
        assert (await console.store.get_task(ids[6])).status is TaskStatus.RUNNING
        assert fakegram.flood_violations == []


async def test_paused_tasks_keep_answer_in_a_digest(console: Console) -> None:
    dm = console.server.private_chat(console.admin)
    await subscribe(console)
    ids = await running_tasks(console.store, 5)
    for task_id in ids:
        await console.store.finish_task(task_id, "STATUS: question\nSUMMARY: which one?")
    await wait_delivered(console, dm.id)
    digest = next(m for m in notices(console, dm) if is_digest(m))
    answers = [label for label in buttons(digest) if label.startswith("💬 #")]
    assert answers
    task_id = int(answers[0].split("#")[1])
    before = digest.text
    await press(console, digest, answers[0], expect_edit=False)
    await console.server.wait_for(lambda: "Your answer" in str(
        console.server.last_bot_message(dm).keyboard or ""))
    prompt = console.server.last_bot_message(dm)
    await console.server.reply_to(console.admin, dm, prompt.message_id, "the first")
    await console.server.wait_for(lambda: (console.server.last_bot_message(dm).text or "")
                                  .startswith(f"💬 Answer sent to #{task_id} "))
    assert (await console.store.get_task(task_id)).status is TaskStatus.RUNNING
    # The digest stays the digest; it only gains the answer under the task's line.
    await console.server.wait_for(lambda: "↳ 💬 answered by Ann" in digest.text)
    assert [line for line in digest.text.splitlines() if "↳" not in line] == \
        before.splitlines()


def digest_page_buttons(message: FakeMessage) -> tuple[list[int], list[int]]:
    """(task ids with an Open button, task ids with an Answer button) on a digest page."""
    labels = buttons(message)
    opened = [int(label.split("#")[1]) for label in labels
              if "#" in label and not label.startswith("💬")]
    answered = [int(label.split("#")[1]) for label in labels if label.startswith("💬 #")]
    return opened, answered


async def test_every_task_of_a_digest_is_reachable_page_by_page(console: Console) -> None:
    dm = console.server.private_chat(console.admin)
    await subscribe(console)
    ids = await running_tasks(console.store, 21)
    paused = set(ids[1::4])  # spread over the pages: 6 of them
    for task_id in ids:
        if task_id in paused:
            await console.store.finish_task(task_id, "STATUS: question\nSUMMARY: which?")
        else:
            await console.store.fail_task(task_id, "boom")
    await wait_delivered(console, dm.id)
    sent = notices(console, dm)
    [digest] = [m for m in sent if is_digest(m)]
    # The first changes of a burst may go alone, before it is known to be one.
    alone = {i for m in sent if is_single(m) for i in notified_ids(m)}
    digested = [i for i in ids if i not in alone]
    assert len(digested) > 16  # three pages
    assert digest_total(digest) == len(digested)
    paused &= set(digested)
    assert f"🟠 {len(paused)} paused" in digest.text
    opened, answered = digest_page_buttons(digest)
    assert opened == [int(i) for i in LISTED.findall(digest.text)]
    assert len(opened) == 8
    assert buttons(digest)[-2:] == ["▶", "📋 Show in the list"]
    seen_open, seen_answer = list(opened), list(answered)
    for page in (2, 3):
        await press(console, digest, "▶")
        opened, answered = digest_page_buttons(digest)
        assert opened == [int(i) for i in LISTED.findall(digest.text)]
        assert digest.text.splitlines()[-1].endswith(f"page {page} of 3")
        assert digest_total(digest) == len(digested)  # the header stays the whole digest's
        seen_open += opened
        seen_answer += answered
    assert "▶" not in buttons(digest)
    assert seen_open == digested[::-1]  # every task once, newest first
    assert sorted(seen_answer) == sorted(paused)  # every paused task keeps its Answer
    await press(console, digest, "◀")
    assert digest.text.splitlines()[-1].endswith("page 2 of 3")
    # An Answer from a later page works like one from the first.
    task_id = digest_page_buttons(digest)[1][0]
    await press(console, digest, f"💬 #{task_id}", expect_edit=False)
    await console.server.wait_for(lambda: "Your answer" in str(
        console.server.last_bot_message(dm).keyboard or ""))
    prompt = console.server.last_bot_message(dm)
    await console.server.reply_to(console.admin, dm, prompt.message_id, "this one")
    await console.server.wait_for(lambda: (console.server.last_bot_message(dm).text or "")
                                  .startswith(f"💬 Answer sent to #{task_id} "))
    assert (await console.store.get_task(task_id)).status is TaskStatus.RUNNING
    # Paged by a person, the digest is theirs: the next burst starts a new message.
    more = await running_tasks(console.store, 5, name="later")
    for task_id in more:
        await console.store.fail_task(task_id, "again")
    await wait_delivered(console, dm.id)
    assert digest.text.splitlines()[-1].endswith("page 2 of 3")
    assert len([m for m in notices(console, dm) if is_digest(m)]) == 2
