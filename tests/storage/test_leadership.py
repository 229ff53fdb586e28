"""The fenced election of ``taskops run`` processes (storage.leader.Leadership): one
leader, the others stand by and take over when it dies, loses its session or is cut off
from the database — and never two leaders at once, even under a network split."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from taskops.storage.leader import CONSOLE, Leadership, Role
from taskops.storage.store import TaskStore
from tests.factories import make_settings

TIMING = {"ping": 0.2, "lease": 1.0, "server_timeout": 2.0, "standby_poll": 0.2}


class SplitProxy:
    """A TCP proxy to PostgreSQL that can stop passing bytes without closing anything:
    a network split as both ends see it (no FIN, no RST, just silence)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.open = asyncio.Event()
        self.open.set()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    await self.open.wait()
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def close(self) -> None:
        self.open.set()
        if self.server is not None:
            self.server.close()


@dataclass
class Member:
    leadership: Leadership
    #: (started, ended) of each time it led
    terms: list[list[float]] = field(default_factory=list)
    job: asyncio.Task[None] | None = None

    #: whether another member's fence still held when this one began to lead
    overlapped: bool = False
    others: list[Member] = field(default_factory=list)

    def lead(self) -> Callable[[], Coroutine[Any, Any, None]]:
        async def leading() -> None:
            self.overlapped |= any(m.leadership.valid() for m in self.others)
            self.terms.append([time.monotonic(), float("inf")])
            try:
                await asyncio.Event().wait()
            finally:
                self.terms[-1][1] = time.monotonic()
        return leading


async def _until(check: Callable[[], bool], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110 - a state of other tasks, polled
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def _running(members: list[Member], stop: asyncio.Event) -> AsyncIterator[list[bool]]:
    """Run the members' elections; sample every 5 ms that at most one is valid."""
    overlaps: list[bool] = []

    async def sample() -> None:
        while True:
            overlaps.append(sum(m.leadership.valid() for m in members) > 1)
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    for m in members:
        m.others = [o for o in members if o is not m]
    for m in members:
        if m.job is None:
            m.job = asyncio.create_task(m.leadership.run(stop, m.lead()))
    try:
        yield overlaps
    finally:
        stop.set()
        sampler.cancel()
        await asyncio.gather(*(m.job for m in members if m.job), return_exceptions=True)


def _disjoint(a: Member, b: Member) -> bool:
    terms = sorted(a.terms + b.terms)
    return all(terms[i][1] <= terms[i + 1][0] for i in range(len(terms) - 1))


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_split_leader_stops_before_a_standby_takes_over(
        store: TaskStore, tmp_path: Path) -> None:
    url = make_url(store.settings.database.url)
    proxy = SplitProxy(url.host or "127.0.0.1", url.port or 5432)
    port = await proxy.start()
    far = await TaskStore.open(make_settings(
        tmp_path, url.set(port=port).render_as_string(hide_password=False), {}))
    try:
        a = Member(far.cluster.leadership(CONSOLE, "a", **TIMING))
        b = Member(store.cluster.leadership(CONSOLE, "b", **TIMING))
        stop = asyncio.Event()
        async with _running([a], stop) as overlaps:
            await _until(lambda: a.leadership.role is Role.LEADER, 120)
            async with _running([a, b], stop) as overlaps:
                await _until(lambda: b.leadership.role is Role.STANDBY, 120)
                await asyncio.sleep(1.0)
                assert b.leadership.role is Role.STANDBY  # the leader's lock holds
                assert far.cluster.role() is Role.LEADER
                names = {m.name for m in await store.cluster.members()}
                assert {"taskops leader a", "taskops standby b"} <= names
                proxy.open.clear()  # the split: the leader hears nothing more
                split = time.monotonic()
                await _until(lambda: b.leadership.role is Role.LEADER, 120)
                took_over = time.monotonic() - split
                assert not b.overlapped  # a's fence had failed before b began
                assert not a.leadership.valid()
                proxy.open.set()
                await asyncio.sleep(1.0)
                assert a.leadership.role is Role.STANDBY  # back, it stands by
                assert not any(overlaps)
        # the server frees the lock after its timeout, and b waits a lease more
        assert took_over >= TIMING["lease"]
    finally:
        await far.close()
        await proxy.close()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_leader_whose_session_is_terminated_stands_down(
        store: TaskStore, tmp_path: Path) -> None:
    other = await TaskStore.open(store.settings)
    try:
        a = Member(store.cluster.leadership(CONSOLE, "a", **TIMING))
        b = Member(other.cluster.leadership(CONSOLE, "b", **TIMING))
        stop = asyncio.Event()
        async with _running([a], stop):
            await _until(lambda: a.leadership.role is Role.LEADER, 120)
        stop = asyncio.Event()
        a.job = None
        async with _running([a, b], stop) as overlaps:
            await _until(lambda: Role.LEADER in (a.leadership.role, b.leadership.role), 10)
            leader = a if a.leadership.role is Role.LEADER else b
            await _until(lambda: bool(leader.terms), 10)
            cut, terms = leader.terms[-1], len(a.terms) + len(b.terms)
            dsn = make_url(store.settings.database.url).set(drivername="postgresql")
            conn = await asyncpg.connect(dsn.render_as_string(hide_password=False))
            try:
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = $1", f"taskops leader {leader.leadership.member}")
            finally:
                await conn.close()
            # It stands down (its term ends), and a new term begins: usually the standby's,
            # but the member cut off may win the lock back first when the standby's poll
            # comes late (a loaded machine) — what matters is that the terms never overlap.
            await _until(lambda: cut[1] != float("inf")
                         and len(a.terms) + len(b.terms) > terms
                         and Role.LEADER in (a.leadership.role, b.leadership.role), 120)
            assert not a.overlapped
            assert not b.overlapped
            assert _disjoint(a, b)
            assert not any(overlaps)
        assert a.leadership.role is Role.STOPPED
    finally:
        await other.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_on_sqlite_the_file_lock_elects_one(store: TaskStore) -> None:
    other = await TaskStore.open(store.settings)
    try:
        a = Member(store.cluster.leadership(CONSOLE, "a", **TIMING))
        b = Member(other.cluster.leadership(CONSOLE, "b", **TIMING))
        stop_a, stop_b = asyncio.Event(), asyncio.Event()
        a.job = asyncio.create_task(a.leadership.run(stop_a, a.lead()))
        await _until(lambda: a.leadership.role is Role.LEADER, 120)
        b.job = asyncio.create_task(b.leadership.run(stop_b, b.lead()))
        await asyncio.sleep(0.5)
        assert b.leadership.role is Role.STANDBY
        assert not b.leadership.valid()
        stop_a.set()
        await a.job
        await _until(lambda: b.leadership.role is Role.LEADER, 120)
        stop_b.set()
        await b.job
        assert _disjoint(a, b)
    finally:
        await other.close()
