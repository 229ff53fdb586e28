"""tasks at fillfactor 70 on PostgreSQL: room on each heap page for heap-only updates of
a running task's counters (issue 13)

Every journal batch updates the running tasks' event_count, tool_call_count and
last_event_at. None of them is indexed, so PostgreSQL can update the row in place on its
page (a heap-only tuple) — if the page has room. At the default fillfactor (100) new
tasks fill their pages, every such update moves the row to another page and adds an
entry to each of the ~30 list indexes. With 30 % of each new page kept free, the updates
stay on the page. Measured with bench/runtime.py (docs/BENCHMARKS.md, Runtime).

It applies to pages filled from now on; existing pages are not rewritten (no lock, no
table rewrite at upgrade). SQLite has no such setting (and updates rows in place).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""
from __future__ import annotations

from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE tasks SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE tasks RESET (fillfactor)")
