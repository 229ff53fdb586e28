"""push alerts: failure, pause, stuck and loop alerts as objects with a lifecycle (ack,
escalation, resolution), and the one message a recurring task's runs update

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from taskops.storage.models import UTCDateTime

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'push_alerts',
        sa.Column('id', ID, autoincrement=True, nullable=False),
        sa.Column('chat_id', sa.BigInteger(), nullable=False),
        sa.Column('task_id', ID, nullable=False),
        sa.Column('follow_task_id', ID, nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('view_key', sa.String(length=32), nullable=False),
        sa.Column('message_id', sa.BigInteger(), nullable=True),
        sa.Column('group_key', sa.String(length=64), nullable=True),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('lifecycle', JSON, nullable=False),
        sa.Column('seen_event_id', sa.BigInteger(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.Column('acked_by', sa.String(length=200), nullable=True),
        sa.Column('acked_at', UTCDateTime(), nullable=True),
        sa.Column('escalated_at', UTCDateTime(), nullable=True),
        sa.Column('resolved_at', UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('push_alerts', schema=None) as batch_op:
        batch_op.create_index('ix_push_alerts_follow', ['follow_task_id'], unique=False)
        batch_op.create_index('ix_push_alerts_group', ['chat_id', 'group_key', 'id'],
                              unique=False)
        batch_op.create_index('ix_push_alerts_view', ['view_key'], unique=False)
        batch_op.create_index('ix_push_alerts_open',
                              ['acked_at', 'resolved_at', 'escalated_at', 'created_at'],
                              unique=False)


def downgrade() -> None:
    op.drop_table('push_alerts')
