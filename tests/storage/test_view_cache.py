"""The console's view cache: written through by every write of this process, so a cached
view is always the stored one; a read that a write overtook is not cached."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from taskops.storage import console, recent
from taskops.storage.console import ViewUpdate
from taskops.storage.models import ConsoleStateRow
from taskops.storage.push_store import delivery_key
from taskops.storage.store import TaskStore
from tests.factories import FakeClock, make_settings


async def test_every_write_keeps_the_cache_equal_to_the_store(store: TaskStore,
                                                              clock: FakeClock) -> None:
    views = store.console
    key = await views.create("list", 5, {"page": 1})
    assert views.cached(key) == await views.get(key)
    await views.save(key, {"page": 2}, message_id=9)
    assert views.cached(key) == await views.get(key)
    assert views.cached(key).body == {"page": 2}  # type: ignore[union-attr]
    await views.update(ViewUpdate(key, 10, {"page": 3}))
    assert views.cached(key) is None  # dropped: the next get reads the row
    assert (await views.get(key)).message_id == 10  # type: ignore[union-attr]
    assert views.cached(key) == await views.get(key)
    assert await views.save_if(key, {"page": 3}, {"page": 4})
    assert not await views.save_if(key, {"page": 3}, {"page": 5})
    assert views.cached(key) == await views.get(key)
    await views.put(key, "list", 5, {"page": 6})
    assert views.cached(key) is None
    assert (await views.get(key)).body == {"page": 6}  # type: ignore[union-attr]
    clock.advance(2 * 86400)
    other = await views.create("list", 5, {"page": 1})
    assert await views.delete_unused(clock() - timedelta(days=1)) == 1
    assert views.cached(key) is None
    assert await views.get(key) is None
    assert views.cached(other) is not None
    await views.delete(other)
    assert views.cached(other) is None
    assert await views.get(other) is None


async def test_a_staged_body_is_the_views_until_its_save_ends(store: TaskStore) -> None:
    """A press stages its state, edits the message, then saves: meanwhile this process
    (the next press, push, a live view's save_if) sees the staged body, not the row."""
    views = store.console
    key = await views.create("digest", 5, {"push": "digest"})
    view = await views.get(key)
    assert view is not None
    pressed = {"push": None, "page": 2}
    views.stage(view, pressed)
    assert views.pending(key) == pressed
    assert views.cached(key).body == pressed  # type: ignore[union-attr]
    assert (await views.get(key)).body == {"push": "digest"}  # type: ignore[union-attr]
    # A live view re-rendering from the row it read must not write over the press.
    assert not await views.save_if(key, {"push": "digest"}, {"push": "digest", "n": 2})
    await views.save(key, pressed)
    assert views.pending(key) is None
    assert (await views.get(key)).body == pressed  # type: ignore[union-attr]
    assert await views.save_if(key, pressed, {"push": None, "page": 3})


async def test_a_staged_body_whose_save_fails_leaves_the_cache(store: TaskStore) -> None:
    views = store.console
    key = await views.create("list", 5, {"page": 1})
    view = await views.get(key)
    assert view is not None
    body = {"page": 2}
    views.stage(view, body)
    save = asyncio.create_task(views.save(key, body))
    await asyncio.sleep(0)  # the save is under way (waiting on the database) ...
    save.cancel()  # ... and does not end: a stop, or a store fault
    with pytest.raises(asyncio.CancelledError):
        await save
    assert views.pending(key) is None
    assert views.cached(key) is None  # the next press reads the row


async def test_push_writes_drop_the_views_they_change(store: TaskStore) -> None:
    sub, _ = await store.push.subscribe(7, {}, created_by=1)
    key = await store.console.create("digest", 7, {"n": 1})
    await store.push.advance(7, sub.cursor, delivery={"d": 1},
                             view=ViewUpdate(key, 3, {"n": 2}))
    assert store.console.cached(key) is None
    assert (await store.console.get(key)).body == {"n": 2}  # type: ignore[union-attr]
    assert (await store.console.get(delivery_key(7))).body == {"d": 1}  # type: ignore[union-attr]
    await store.push.unsubscribe(7)
    assert store.console.cached(delivery_key(7)) is None


async def test_a_read_overtaken_by_a_write_is_not_cached(store: TaskStore) -> None:
    views = store.console
    key = await views.create("list", 5, {"page": 1})
    views.cache.forget(key)
    writes = views.cache.writes
    async with store.db.write() as conn:  # as another process would
        await conn.execute(update(ConsoleStateRow).where(ConsoleStateRow.key == key)
                           .values(body={"page": 2}))
    stale = await views.get(key)
    assert stale is not None
    assert views.cached(key) == stale
    views.cache.forget(key)
    views.cache.read(stale, writes)  # read began before the forget: not cached
    assert views.cached(key) is None


async def test_saved_views_are_cached_and_this_process_writes_drop_them(
        store: TaskStore, tmp_path: Path, db_url: str, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    views = store.console
    assert await views.saved_views(5) == []
    first = await views.save_view(5, "Failed", {"status": "failed"})
    assert [v.name for v in await views.saved_views(5)] == ["Failed"]
    # Another replica on the same database changes the chat's views behind this cache.
    replica = await TaskStore.open(make_settings(tmp_path, db_url, {}), clock=clock)
    try:
        paused = await replica.console.save_view(5, "Paused", {"status": "paused"})
        assert [v.name for v in await views.saved_views(5)] == ["Failed"]  # from memory
        # This process's own writes are seen at once, with what the replica did.
        assert await views.rename_view(5, first, "Failed today")
        assert [v.name for v in await views.saved_views(5)] == ["Failed today", "Paused"]
        assert await views.delete_view(5, first)
        assert [v.name for v in await views.saved_views(5)] == ["Paused"]
        # Another replica's once the entry is older than the TTL.
        assert await replica.console.delete_view(5, paused)
        assert [v.name for v in await views.saved_views(5)] == ["Paused"]
        monkeypatch.setattr(views.saved_cache, "max_age", 0.0)
        assert await views.saved_views(5) == []
    finally:
        await replica.close()


async def test_latest_used_since_is_each_chats_newest_unmarked_view(store: TaskStore,
                                                                     clock: FakeClock) -> None:
    views = store.console
    start = clock()
    old = await views.create("list", 1, {"page": 1})
    clock.advance(10)
    newest = await views.create("detail", 1, {"page": 2})
    clock.advance(10)
    # A push message nobody pressed yet is marked: it is not the chat's view.
    await views.create("detail", 1, {"push": "alert"})
    other = await views.create("list", 2, {"page": 1})
    await views.create("restart", 2, {"page": 9})  # a kind not asked for
    kinds = ("list", "detail")
    latest = await views.latest_used_since(kinds, start, unmarked="push")
    assert {chat: v.key for chat, v in latest.items()} == {1: newest, 2: other}
    assert latest[1].body == {"page": 2}
    # A pressed push message (its mark set to null) is the chat's view again.
    clock.advance(10)
    pressed = await views.create("detail", 1, {"push": None, "page": 4})
    assert (await views.latest_used_since(kinds, start, unmarked="push"))[1].key == pressed
    # Without the mark, the marked ones count; by chat; since a time.
    marked = await views.latest_used_since(kinds, start)
    assert marked[1].key == pressed
    only_2 = await views.latest_used_since(kinds, start, chat_ids=[2], unmarked="push")
    assert list(only_2) == [2]
    assert await views.latest_used_since(kinds, start, chat_ids=[]) == {}
    later = await views.latest_used_since(kinds, clock(), unmarked="push")
    assert {chat: v.key for chat, v in later.items()} == {1: pressed}
    assert old not in {v.key for v in later.values()}


def test_views_idle_too_long_leave_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(recent.time, "monotonic", lambda: now[0])
    cache = console.ViewCache(size=3, idle_seconds=60)

    def view(key: str) -> console.ViewRecord:
        return console.ViewRecord(key, "list", 1, None, {}, datetime(2026, 12, 2, tzinfo=UTC))

    for key in "abc":
        cache.put(view(key))
        now[0] += 10
    cache.put(view("d"))  # over the size: the least recently used goes
    assert [k for k in "abcd" if cache.get(k)] == ["b", "c", "d"]
    now[0] += 55  # b, c, d used at 30; now 85: b goes for the size, none for idleness
    cache.put(view("e"))
    assert [k for k in "bcde" if cache.get(k)] == ["c", "d", "e"]
    now[0] += 61  # nobody used c, d, e for 61 s
    cache.put(view("f"))
    assert [k for k in "cdef" if cache.get(k)] == ["f"]
