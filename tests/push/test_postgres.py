"""The push side on PostgreSQL: notifications, a digest, stuck and results, end to end."""

from __future__ import annotations

from pathlib import Path

from taskops.storage.domain import TaskDraft
from tests.conftest import reset_database
from tests.e2e.harness import running_console
from tests.factories import make_task
from tests.fakegram import FakeTelegram
from tests.push.helpers import (
    bot_messages,
    digest_total,
    is_digest,
    notices,
    notified_ids,
    push,
    subscribe,
    wait_delivered,
)


async def test_push_on_postgresql(fakegram: FakeTelegram, tmp_path: Path,
                                  postgres_url: str) -> None:
    async with running_console(fakegram, tmp_path, db_url=postgres_url) as console:
        await reset_database(console.store)
        await console.store.rebuild_counts()
        dm = fakegram.private_chat(console.admin)
        await subscribe(console)
        single = await make_task(console.store, console.clock, name="one",
                                 final="STATUS: failed\nSUMMARY: x")
        await wait_delivered(console, dm.id)
        assert [notified_ids(m) for m in notices(console, dm)] == [[single.id]]
        burst = [await make_task(console.store, console.clock, name=f"b{i}")
                 for i in range(8)]
        for task in burst:
            await console.store.kill_task(task.id, by="test")
        await wait_delivered(console, dm.id)
        sent = notices(console, dm)[1:]
        assert sum(digest_total(m) if is_digest(m) else 1 for m in sent) == 8
        quiet = await make_task(console.store, console.clock, name="quiet")
        console.clock.advance(20 * 60)
        assert await push(console).stuck.check() == 1
        assert await push(console).stuck.check() == 0
        assert f"#{quiet.id} quiet" in notices(console, dm)[-1].text
        child = await console.store.create_task(TaskDraft(
            name="child", prompt="p", parent_session=f"telegram:{dm.id}"))
        await console.store.start_task(child.id)
        before = len(bot_messages(console, dm))
        await console.store.finish_task(child.id, "STATUS: completed\nSUMMARY: done")
        await fakegram.wait_for(lambda: len(bot_messages(console, dm)) > before)
        assert bot_messages(console, dm)[-1].text.startswith(f"✅ child · #{child.id}")
