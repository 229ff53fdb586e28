"""PostgreSQL: statistics over the facet columns together, for the list's plans (issue 11)

The planner multiplies the selectivities of ``status``, ``trigger``, ``provider``,
``model`` and ``used_default`` as if they were independent. They are not: a model
belongs to one provider, cronjobs run on a few models, heartbeat tasks rarely fail. On
the 1M bench store it estimated 6,423 tasks on google/gemini-1.5-flash where there are
80,082, so a word search counted through ``ix_tasks_provider_name`` scanned the whole
provider range and tested the names on every entry (14 ms, 12,756 buffers) instead of
looking each name up in the index (1.2 ms, 1,358 buffers). Multivariate statistics (the
most common combinations, and the functional dependencies between the columns) give it
the real counts; there are about a hundred combinations, so the default statistics
target keeps them all and ANALYZE stays at ~1.5 s on a million tasks.

ANALYZE runs here: autovacuum would wait for a tenth of a large table to change.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""
from __future__ import annotations

from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE STATISTICS tasks_facets (mcv, dependencies) "
               "ON status, trigger, provider, model, used_default FROM tasks")
    op.execute("ANALYZE tasks")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP STATISTICS tasks_facets")
