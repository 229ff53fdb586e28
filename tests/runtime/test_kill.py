"""Kill stops a run at once, whatever it is doing; lost workers are noticed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from taskops.runtime import worker as worker_module
from taskops.runtime.run import RunEnd, TaskRun
from taskops.storage import notify
from taskops.storage.domain import EventKind, InvalidTransition, ProviderChoice, TaskStatus
from taskops.storage.store import TaskStore
from tests.factories import FakeClock
from tests.postgres import admin_url
from tests.runtime.conftest import (
    MakeStore,
    events,
    kinds,
    providers_with_fast_retries,
    running_worker,
    submit,
    until_gone,
    until_written,
    wait_ended,
    wait_in_step,
)
from tests.runtime.fake_openai import FakeOpenAI, FakeReply, sse_text

ROOT = Path(__file__).resolve().parents[2]


async def kill_when(store: TaskStore, task_id: int, marker: EventKind) -> int:
    """Kill once the task has written ``marker``; returns the events before the kill."""
    await until_written(store, task_id, marker)
    killed = await store.kill_task(task_id, by="Ann")
    return killed.event_count


async def assert_stopped_after_kill(store: TaskStore, task_id: int, ended: list[TaskRun],
                                   closing: int = 3) -> None:
    """The run stopped as killed, and nothing was written after the kill's events."""
    run = next(r for r in ended if r.task.id == task_id)
    assert run.end is RunEnd.STOPPED
    assert run.stop_reason == "killed"
    task = await store.get_task(task_id)
    assert task.status is TaskStatus.FAILED
    assert task.error == "Killed by Ann from Telegram"
    timeline = await events(store, task_id)
    assert [e.kind for e in timeline[-closing:]] == [
        EventKind.STATUS_CHANGE, EventKind.FINAL, EventKind.INJECTION]


async def test_kill_while_waiting(make_store: MakeStore) -> None:
    store = await make_store()
    task = await submit(store, "!say started\n!wait 60\n!say never\n!end completed never")
    ended: list[TaskRun] = []
    async with running_worker(store, on_run_end=ended.append) as worker:
        await kill_when(store, task.id, EventKind.TEXT)
        await until_gone(worker, task.id)
    await assert_stopped_after_kill(store, task.id, ended)
    assert (await kinds(store, task.id)).count(EventKind.TEXT) == 1


async def test_kill_during_a_tool_call(make_store: MakeStore) -> None:
    store = await make_store()
    task = await submit(store, '!say calling\n!tool wait {"seconds": 60}\n!end completed never')
    ended: list[TaskRun] = []
    async with running_worker(store, on_run_end=ended.append) as worker:
        await kill_when(store, task.id, EventKind.TEXT)
        await until_gone(worker, task.id)
    await assert_stopped_after_kill(store, task.id, ended)
    assert EventKind.TOOL_CALL not in await kinds(store, task.id)


async def test_kill_during_a_provider_stream(make_store: MakeStore) -> None:
    async with FakeOpenAI() as fake:
        store = await make_store({"providers.fake": {
            "kind": "openai", "base_url": fake.base_url, "models": ["m"]}})
        fake.replies.append(FakeReply(chunks=sse_text("a long answer " * 200), delay_between=0.05))
        task = await submit(store, "write an essay", provider=ProviderChoice("fake", "m"))
        ended: list[TaskRun] = []
        async with running_worker(store, on_run_end=ended.append,
                                  providers=providers_with_fast_retries(store)) as worker:
            await asyncio.wait_for(fake.streaming.wait(), 20)
            await store.kill_task(task.id, by="Ann")
            await until_gone(worker, task.id)
        await assert_stopped_after_kill(store, task.id, ended)
        await asyncio.wait_for(fake.disconnected.wait(), 20)  # the stream was abandoned
    assert (await kinds(store, task.id)) == [
        EventKind.STATUS_CHANGE, EventKind.STATUS_CHANGE, EventKind.FINAL, EventKind.INJECTION]


async def test_a_kill_racing_the_final_message_ends_in_one_state(make_store: MakeStore) -> None:
    store = await make_store({"runtime": {"concurrency": 20}})
    tasks = [await submit(store, "!end completed done") for _ in range(20)]
    async with running_worker(store):
        for task in tasks:
            # Completed first: "Cannot kill task with status 'completed'..."
            with contextlib.suppress(InvalidTransition):
                await store.kill_task(task.id, by="Ann")
        for task in tasks:
            await wait_ended(store, task.id)
    for task in tasks:
        timeline = await kinds(store, task.id)
        assert timeline.count(EventKind.FINAL) == 1
        assert timeline[-1] is EventKind.INJECTION


async def test_a_task_whose_worker_died_is_taken_up_again(make_store: MakeStore,
                                                         clock: FakeClock) -> None:
    store = await make_store()
    task = await submit(store, "!say working\n!end completed done")
    # A worker claimed it and died: it never renews its lease.
    claimed = await store.work.claim_new("dead-worker", 1, lease_seconds=30)
    assert [t.id for t in claimed] == [task.id]
    async with running_worker(store, worker_id="alive") as worker:
        await asyncio.sleep(0.1)
        assert (await store.get_task(task.id)).status is TaskStatus.RUNNING
        assert task.id not in worker.runs
        clock.advance(31)
        done = await wait_ended(store, task.id)
    assert (done.status, done.summary) == (TaskStatus.COMPLETED, "done")
    timeline = await kinds(store, task.id)
    assert timeline[:3] == [EventKind.STATUS_CHANGE, EventKind.RESUMED, EventKind.TEXT]


async def test_a_worker_that_lost_its_claim_stops_the_run(make_store: MakeStore,
                                                          clock: FakeClock) -> None:
    store = await make_store()
    task = await submit(store, "!say hi\n!wait 60")
    ended: list[TaskRun] = []
    async with running_worker(store, worker_id="slow", on_run_end=ended.append) as worker:
        await wait_in_step(worker, task.id)
        await until_written(store, task.id, EventKind.TEXT)
        clock.advance(40)  # as if this worker had hung past its lease
        claims = [c for c in await store.work.claims()
                  if store.work.expired(c, lease_seconds=30)]
        taken = await store.work.take_over("other", claims, lease_seconds=30)
        assert [t.id for t in taken] == [task.id]
        await until_gone(worker, task.id)
    assert ended[0].stop_reason == "claim lost"


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_kill_from_another_process_stops_the_worker(make_store: MakeStore,
                                                          tmp_path: Path) -> None:
    store = await make_store()
    config = tmp_path / "worker.toml"
    config.write_text(f'[database]\nurl = "{store.settings.database.url}"\n'
                      "[runtime]\npoll_interval_seconds = 0.2\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKOPS_")}
    env["PYTHONPATH"] = str(ROOT)
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "taskops.cli", "worker", "--config", str(config), cwd=tmp_path,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        # The store here has a fake clock; the worker process uses real time.
        task = await submit(store, "!say working\n!wait 60\n!say never\n!end completed never")
        count = await kill_when(store, task.id, EventKind.TEXT)
        assert worker.stderr is not None
        async with asyncio.timeout(30):
            while True:
                line = (await worker.stderr.readline()).decode()
                assert line, "the worker exited early"
                if f"task#{task.id} stopped (killed)" in line:
                    break
        assert (await store.get_task(task.id)).event_count == count
        worker.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(worker.communicate(), 30)
        assert worker.returncode == 0, err.decode()
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_kill_is_heard_before_it_waits_for_the_task_row(make_store: MakeStore,
                                                                db_url: str) -> None:
    """A journal batch holds the task's row while it writes: the owner hears the kill
    then, not once the kill got the row and committed."""
    store = await make_store()
    task = await submit(store, "!say working\n!wait 60")
    heard: asyncio.Queue[int] = asyncio.Queue()
    stop, ready = asyncio.Event(), asyncio.Event()
    listener = asyncio.create_task(store.work.listen_kills("probe", heard.put_nowait, stop,
                                                          ready=ready))
    batch = await asyncpg.connect(admin_url(db_url, make_url(db_url).database or ""))
    try:
        await asyncio.wait_for(ready.wait(), 20)
        await batch.execute("BEGIN")
        await batch.execute("SELECT id FROM tasks WHERE id = $1 FOR UPDATE", task.id)
        kill = asyncio.create_task(store.kill_task(task.id, by="Ann"))
        assert await asyncio.wait_for(heard.get(), 20) == task.id
        await asyncio.sleep(0.1)
        assert not kill.done()  # still waiting for the row
        await batch.execute("ROLLBACK")
        assert (await asyncio.wait_for(kill, 20)).status is TaskStatus.FAILED
        # Heard again at the commit (the listener's fallback for a missed announcement).
        assert await asyncio.wait_for(heard.get(), 20) == task.id
    finally:
        await batch.close()
        stop.set()
        await asyncio.wait_for(listener, 20)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_the_announcing_connection_is_made_again_after_a_cut(
        make_store: MakeStore, db_url: str) -> None:
    """The announcer keeps its connection between kills; one cut meanwhile (a server
    restart) must not cost the next kill its announcement."""
    store = await make_store()
    first = await submit(store, "!say working\n!wait 60")
    second = await submit(store, "!say working\n!wait 60")
    heard: asyncio.Queue[int] = asyncio.Queue()
    stop, ready = asyncio.Event(), asyncio.Event()
    listener = asyncio.create_task(store.work.listen_kills("probe", heard.put_nowait, stop,
                                                          ready=ready))
    admin = await asyncpg.connect(admin_url(db_url, make_url(db_url).database or ""))
    try:
        await asyncio.wait_for(ready.wait(), 20)
        await store.kill_task(first.id, by="Ann")
        assert [await asyncio.wait_for(heard.get(), 20) for _ in range(2)] == [first.id] * 2
        cut = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = $1", notify.ANNOUNCER_NAME)
        assert cut == 1
        await admin.execute("BEGIN")
        await admin.execute("SELECT id FROM tasks WHERE id = $1 FOR UPDATE", second.id)
        kill = asyncio.create_task(store.kill_task(second.id, by="Ann"))
        assert await asyncio.wait_for(heard.get(), 20) == second.id
        assert not kill.done()
        await admin.execute("ROLLBACK")
        await asyncio.wait_for(kill, 20)
    finally:
        await admin.close()
        stop.set()
        await asyncio.wait_for(listener, 20)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_run_stopped_for_a_kill_that_never_committed_is_taken_up_again(
        make_store: MakeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The announcement stops the run before the kill commits; if the kill then fails (the
    store broke under it), the task is still running and this worker's: after a grace it
    continues from its journal, and not before (the kill may still be committing)."""
    monkeypatch.setattr(worker_module, "KILL_COMMIT_SECONDS", 1.0)
    store = await make_store()
    task = await submit(store, "!say working\n!wait 2\n!say after\n!end completed done")
    ended: list[TaskRun] = []
    async with running_worker(store, on_run_end=ended.append) as worker:
        await asyncio.wait_for(worker.listening.wait(), 20)
        await wait_in_step(worker, task.id)
        await until_written(store, task.id, EventKind.TEXT)
        announcer = notify.KillAnnouncer(store.db)
        try:
            await announcer.announce(task.id)  # a kill that never commits
        finally:
            await announcer.close()
        await until_gone(worker, task.id)
        assert ended[0].stop_reason == "killed"
        await asyncio.sleep(0.5)
        assert task.id not in worker.runs
        assert (await store.get_task(task.id)).status is TaskStatus.RUNNING
        done = await wait_ended(store, task.id)
    assert (done.status, done.summary) == (TaskStatus.COMPLETED, "done")
    timeline = await kinds(store, task.id)
    assert EventKind.RESUMED in timeline
    assert timeline.count(EventKind.TEXT) == 2


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_kill_does_not_wait_for_its_announcement(make_store: MakeStore,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """The announcement goes out beside the kill's transaction: one that hangs (a connect
    to a server that does not answer) delays neither the kill nor closing the store."""
    hung = asyncio.Event()

    async def never(_self: notify.KillAnnouncer, _task_id: int) -> None:
        hung.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(notify.KillAnnouncer, "announce", never)
    store = await make_store()
    task = await submit(store, "!say working\n!wait 60")
    killed = await asyncio.wait_for(store.kill_task(task.id, by="Ann"), 10)
    assert killed.status is TaskStatus.FAILED
    assert hung.is_set()
    await asyncio.wait_for(store.close(), 10)
