"""tasks.claim_token: the fencing token of a worker's claim, so a worker that lost its
claim (its lease ran out and another worker took the task up) cannot write to the task's
journal any more (issue 14)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: no table rewrite on either engine (a million tasks migrate at
    # once, also while workers run).
    op.add_column('tasks', sa.Column('claim_token', sa.Integer(), nullable=False,
                                     server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('claim_token')
