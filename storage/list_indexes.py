"""Bulk loads without the list's indexes: drop them first, build them again at the end.

Every list index carries the filter columns and there is one per (filter, sort key) pair
(``models.list_index_layout``): some 26 B-trees over ``tasks``. Kept up row by row, a
million-task seed inserts into each of them in random key order and took over 13 minutes
on SQLite; sorted once by CREATE INDEX they take about two.

On PostgreSQL the foreign keys of ``task_events`` go the same way (``checks_suspended``):
each event row's check is a query the server plans again for every row (the connection
asks for custom plans, ``db.POSTGRESQL_SETTINGS``), and those checks were 70 % of a
million-task seed's server time. Added back, the key is checked by one join.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import Index, Table, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.schema import CreateIndex, DropIndex

from taskops.storage.models import TaskRow, list_index_layout

#: Appending fewer tasks than this keeps the indexes: rebuilding costs more.
SUSPEND_MIN = 50_000


def _indexes() -> list[Index]:
    names = set(list_index_layout())
    table: Table = TaskRow.__table__  # type: ignore[assignment]
    return sorted((i for i in table.indexes if i.name in names), key=lambda i: str(i.name))


@asynccontextmanager
async def suspended(conn: AsyncConnection, rows: int) -> AsyncIterator[None]:
    """Drop the list indexes around a bulk insert of ``rows`` tasks, if that many."""
    if rows < SUSPEND_MIN:
        yield
        return
    async with conn.begin():
        for index in _indexes():
            await conn.execute(DropIndex(index, if_exists=True))
    try:
        yield
    finally:
        async with conn.begin():
            if conn.dialect.name == "postgresql":
                await conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
            for index in _indexes():
                await conn.execute(CreateIndex(index, if_not_exists=True))


@asynccontextmanager
async def checks_suspended(conn: AsyncConnection, rows: int) -> AsyncIterator[None]:
    """PostgreSQL: drop the foreign keys of ``task_events`` around a bulk insert of
    ``rows`` tasks, if that many, and add them back from their own definitions."""
    if rows < SUSPEND_MIN or conn.dialect.name != "postgresql":
        yield
        return
    async with conn.begin():
        keys = (await conn.execute(text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'task_events'::regclass AND contype = 'f' ORDER BY conname"
        ))).all()
        for name, _definition in keys:
            await conn.exec_driver_sql(f'ALTER TABLE task_events DROP CONSTRAINT "{name}"')
    try:
        yield
    finally:
        async with conn.begin():
            await conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
            for name, definition in keys:
                await conn.exec_driver_sql(
                    f'ALTER TABLE task_events ADD CONSTRAINT "{name}" {definition}')
