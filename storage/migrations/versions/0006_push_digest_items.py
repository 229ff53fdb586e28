"""push digest items: every task of a digest message, so each stays reachable page by
page (the message itself shows one page of them)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from taskops.storage.models import UTCDateTime

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'push_digest_items',
        sa.Column('view_key', sa.String(length=32), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('task_id', ID, nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('view_key', 'seq'),
    )


def downgrade() -> None:
    op.drop_table('push_digest_items')
