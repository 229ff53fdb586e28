"""PostgreSQL: the name search's trigram function and index, tuned for reads (issue 11)

The name search reads ``task_names`` through the GIN index over
``taskops_trigrams(sort_name)``. Two things made a short common word slow on the 1M
bench store (4,066 names; "the" is in 768 of them):

* The function had the default cost of a SQL function, and ``task_names`` no statistics
  after a bulk fill: the planner read the names in sequence and called the function on
  every name ``strpos`` let through, 58 ms, where the index reads the same names in
  under 1 ms. The function builds an array of substrings: costed at ten times the default.
* The index kept its new entries in GIN's pending list (``fastupdate``), which every
  search reads in full until a vacuum merges it: 13 ms. New names are rare (a name is
  added once, by the trigger on ``tasks``), so they now go straight into the index.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""
from __future__ import annotations

from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER FUNCTION taskops_trigrams(text) COST 1000")
    op.execute("ALTER INDEX ix_task_names_trigrams SET (fastupdate = off)")
    op.execute("SELECT gin_clean_pending_list('ix_task_names_trigrams')")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER INDEX ix_task_names_trigrams RESET (fastupdate)")
    op.execute("ALTER FUNCTION taskops_trigrams(text) COST 100")
