"""task_totals: the day counters summed over the days (issue 11)

Every list page without a date filter summed a month of per-day counters per facet
combination (2,507 rows at 1M tasks: 2.7 ms on PostgreSQL, 1.3 ms on SQLite, each
press); the totals are about a hundred rows. Filled from ``task_counts`` here and kept in
step by the same writers since (``storage/counts.py``).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'task_totals',
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('trigger', sa.String(length=16), nullable=False),
        sa.Column('provider', sa.String(length=100), nullable=False),
        sa.Column('model', sa.String(length=200), nullable=False),
        sa.Column('used_default', sa.Boolean(), nullable=False),
        sa.Column('n', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('status', 'trigger', 'provider', 'model', 'used_default'),
    )
    op.execute("INSERT INTO task_totals (status, trigger, provider, model, used_default, n) "
               "SELECT status, trigger, provider, model, used_default, sum(n) "
               "FROM task_counts GROUP BY status, trigger, provider, model, used_default")


def downgrade() -> None:
    op.drop_table('task_totals')
