"""Alembic environment: migrations run on a connection handed in by storage.db.migrate."""

from __future__ import annotations

from alembic import context

from taskops.storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `taskops migrate`, which passes a connection")

context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
