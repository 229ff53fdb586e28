"""subscriptions on the old default settings move to the quiet default (issue 12)

Until the quiet defaults (7067f53) a new subscription was saved with completions on:
``{"statuses": ["completed", "failed", "paused"], "triggers": <all five>, "stuck": true}``.
A chat subscribed then still gets every completion. Only a subscription whose saved
settings are exactly that — the same three keys, those statuses, every trigger, stuck on —
moves to the new default (failed and paused; completions opt-in). Any other settings were
chosen by someone and stay as they are: a chat that turned completions on since the quiet
defaults has its settings saved with a ``muted_groups`` key, which the old default never
had, so it keeps them.

The downgrade leaves the settings alone: a moved subscription cannot be told from one
subscribed with the quiet default.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# The values as they were written, not as the code may spell them later.
TRIGGERS = ["agent", "consolidation", "cronjob", "heartbeat", "user"]
OLD_DEFAULT: dict[str, Any] = {"statuses": ["completed", "failed", "paused"],
                               "triggers": TRIGGERS, "stuck": True}
NEW_DEFAULT: dict[str, Any] = {"statuses": ["failed", "paused"], "triggers": TRIGGERS,
                               "stuck": True, "muted_groups": {}}

subscriptions = sa.table(
    'subscriptions',
    sa.column('chat_id', sa.BigInteger()),
    sa.column('settings', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()),
                                                 'postgresql')),
)


def is_old_default(settings: Any) -> bool:
    """Exactly the old default (the lists in any order, each value once)."""
    if not isinstance(settings, dict) or set(settings) != set(OLD_DEFAULT):
        return False
    statuses, triggers = settings["statuses"], settings["triggers"]
    return (isinstance(statuses, list) and sorted(statuses) == OLD_DEFAULT["statuses"]
            and isinstance(triggers, list) and sorted(triggers) == TRIGGERS
            and settings["stuck"] is True)


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(subscriptions.c.chat_id, subscriptions.c.settings)).all()
    moved = [row.chat_id for row in rows if is_old_default(row.settings)]
    for chat_id in moved:
        bind.execute(subscriptions.update().where(subscriptions.c.chat_id == chat_id)
                     .values(settings=NEW_DEFAULT))


def downgrade() -> None:
    pass
