"""The list at any combination: every list index carries the filter columns, a (filter,
sort key) index per pair, the name dictionary with its trigram index for search, partial
indexes for the few unfinished and never-started tasks, the counts in facet order

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

UNFINISHED = sa.text("finished_at IS NULL")
COST = sa.text("coalesce(cost_usd, -1.0)")
FILTERS = ['status', 'trigger', 'provider', 'model', 'used_default']
FACETS = {'status': ['status'], 'trigger': ['trigger'], 'provider': ['provider', 'model'],
          'default': ['used_default']}
SORTS: dict[str, list[Any]] = {'created': ['created_at', 'id'], 'name': ['sort_name', 'id'],
                               'tokens': ['total_tokens', 'id'],
                               'cost': [COST, 'id', 'cost_usd'],
                               'duration': ['duration_ms', 'id']}
TAILS = {'created': [], 'name': ['created_at', 'total_tokens', 'cost_usd', 'duration_ms']}
#: 0001/0002's list indexes, dropped and made again carrying every filter column
BEFORE: dict[str, list[Any]] = {
    'ix_tasks_created': ['created_at', 'id'], 'ix_tasks_name': ['sort_name', 'id'],
    'ix_tasks_duration': ['duration_ms', 'id'], 'ix_tasks_tokens': ['total_tokens', 'id'],
    'ix_tasks_cost': [COST, 'id', 'cost_usd'],
    'ix_tasks_status_created': ['status', 'created_at', 'id'],
    'ix_tasks_status_trigger_created': ['status', 'trigger', 'created_at', 'id'],
    'ix_tasks_trigger_created': ['trigger', 'created_at', 'id'],
    'ix_tasks_provider_created': ['provider', 'model', 'created_at', 'id'],
    'ix_tasks_default_created': ['used_default', 'created_at', 'id'],
}


def layout() -> dict[str, list[Any]]:
    """models.list_index_layout() as of this revision."""
    out: dict[str, list[Any]] = {}
    for key, sort_cols in SORTS.items():
        tail = TAILS.get(key, ['created_at'])
        out[f'ix_tasks_{key}'] = [*sort_cols, *FILTERS, *tail]
        for facet, lead in FACETS.items():
            rest = [c for c in FILTERS if c not in lead]
            out[f'ix_tasks_{facet}_{key}'] = [*lead, *sort_cols, *rest, *tail]
    out['ix_tasks_status_trigger_created'] = ['status', 'trigger', 'created_at', 'id',
                                              'provider', 'model', 'used_default']
    return out


SQLITE_SEARCH = [
    # Trigrams of every distinct name; a quoted phrase matches an exact substring.
    """CREATE VIRTUAL TABLE task_names_fts USING fts5(
        sort_name, content='task_names', content_rowid='id',
        tokenize='trigram case_sensitive 1')""",
    """CREATE TRIGGER task_names_fts_ai AFTER INSERT ON task_names BEGIN
        INSERT INTO task_names_fts(rowid, sort_name) VALUES (new.id, new.sort_name);
    END""",
    """CREATE TRIGGER tasks_names_ai AFTER INSERT ON tasks BEGIN
        INSERT OR IGNORE INTO task_names(sort_name) VALUES (new.sort_name);
    END""",
    """CREATE TRIGGER tasks_names_au AFTER UPDATE OF sort_name ON tasks BEGIN
        INSERT OR IGNORE INTO task_names(sort_name) VALUES (new.sort_name);
    END""",
]
SQLITE_SEARCH_DOWN = ["DROP TRIGGER tasks_names_au", "DROP TRIGGER tasks_names_ai",
                      "DROP TRIGGER task_names_fts_ai", "DROP TABLE task_names_fts"]

POSTGRESQL_SEARCH = [
    # Trigrams by code point, like SQLite's FTS5 trigram tokenizer, so both engines match
    # the same names for any script, punctuation or emoji (pg_trgm keeps only
    # alphanumerics and would fall back to a full scan for "<b>").
    """CREATE FUNCTION taskops_trigrams(s text) RETURNS text[]
        LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
        SELECT coalesce(array_agg(DISTINCT substr(s, i, 3)), '{}'::text[])
        FROM generate_series(1, length(s) - 2) AS i $$""",
    """CREATE INDEX ix_task_names_trigrams ON task_names
        USING gin (taskops_trigrams(sort_name))""",
    # Statement-level, so a bulk COPY adds its names in one statement.
    """CREATE FUNCTION taskops_note_task_names() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO task_names (sort_name)
            SELECT DISTINCT sort_name FROM new_tasks ORDER BY 1
            ON CONFLICT DO NOTHING;
            RETURN NULL;
        END $$""",
    """CREATE TRIGGER tasks_names_ai AFTER INSERT ON tasks
        REFERENCING NEW TABLE AS new_tasks
        FOR EACH STATEMENT EXECUTE FUNCTION taskops_note_task_names()""",
    """CREATE TRIGGER tasks_names_au AFTER UPDATE ON tasks
        REFERENCING NEW TABLE AS new_tasks
        FOR EACH STATEMENT EXECUTE FUNCTION taskops_note_task_names()""",
]
POSTGRESQL_SEARCH_DOWN = [
    "DROP TRIGGER tasks_names_au ON tasks", "DROP TRIGGER tasks_names_ai ON tasks",
    "DROP FUNCTION taskops_note_task_names()", "DROP INDEX ix_task_names_trigrams",
    "DROP FUNCTION taskops_trigrams(text)",
]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        'task_names',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('sort_name', sa.String(length=200).with_variant(
            sa.String(length=200, collation='C'), 'postgresql'), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('sort_name'),
    )
    for statement in SQLITE_SEARCH if sqlite else POSTGRESQL_SEARCH:
        op.execute(statement)
    op.execute("INSERT INTO task_names (sort_name) SELECT DISTINCT sort_name FROM tasks "
               "ORDER BY 1")
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        for name in BEFORE:
            batch_op.drop_index(name)
        for name, columns in layout().items():
            batch_op.create_index(name, columns, unique=False)
        batch_op.drop_index('ix_tasks_unfinished')
        batch_op.create_index('ix_tasks_unfinished', ['status', 'started_at'], unique=False,
                              sqlite_where=UNFINISHED, postgresql_where=UNFINISHED)
        batch_op.drop_index('ix_tasks_never_started')
    op.create_index('ix_task_counts_facets', 'task_counts', ['status', 'trigger', 'provider',
                                                             'model', 'used_default', 'day', 'n'])
    op.execute("ANALYZE")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_index('ix_task_counts_facets', table_name='task_counts')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        for name in layout():
            batch_op.drop_index(name)
        for name, columns in BEFORE.items():
            batch_op.create_index(name, columns, unique=False)
        batch_op.create_index('ix_tasks_never_started', ['started_at', 'id'], unique=False)
        batch_op.drop_index('ix_tasks_unfinished')
        batch_op.create_index('ix_tasks_unfinished', ['finished_at', 'status', 'started_at'],
                              unique=False)
    for statement in SQLITE_SEARCH_DOWN if sqlite else POSTGRESQL_SEARCH_DOWN:
        op.execute(statement)
    op.drop_table('task_names')
