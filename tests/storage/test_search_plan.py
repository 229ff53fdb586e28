"""PostgreSQL reads the names a search word is in through the trigram index, whatever the
statistics say (migration 0011): the function behind the index costs far more than an
operator, and a plan that called it on every name took 58 ms at 1M tasks."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, text

from taskops.storage.domain import ListFilters, Sort
from taskops.storage.list_query import ListQuery
from taskops.storage.models import TaskNameRow, TaskRow
from taskops.storage.store import TaskStore


async def test_the_names_of_a_common_short_word_are_read_through_the_index(
        store: TaskStore) -> None:
    if store.engines.is_sqlite:
        pytest.skip("SQLite searches the names through its FTS5 table")
    names = [f"the job {n} of the nightly run" if n % 5 else f"cleanup {n}"
             for n in range(3000)]
    async with store.engines.write.begin() as conn:
        await conn.execute(insert(TaskNameRow), [{"sort_name": n} for n in names])
    async with store.engines.read.connect() as conn:
        # No ANALYZE: a table just filled, as after a bulk load.
        stmt = ListQuery.make(ListFilters(search="the"), Sort(), store.tz, store.clock(),
                              "postgresql").names_matching()
        compiled = stmt.compile(conn.sync_connection, compile_kwargs={"literal_binds": True})
        plan = "\n".join(r[0] for r in await conn.execute(text(f"EXPLAIN {compiled}")))
        found = {r[0] for r in await conn.execute(stmt)}
        stored = {r[0] for r in await conn.execute(text("SELECT sort_name FROM task_names"))}
    assert "ix_task_names_trigrams" in plan, plan
    # Every stored name holding the word: ours, and any the fixture's store already had.
    assert found == {n for n in stored if "the" in n}
    assert {n for n in names if "the" in n} <= found
    async with store.engines.read.connect() as conn:
        options = (await conn.execute(text(
            "SELECT reloptions FROM pg_class WHERE relname = 'ix_task_names_trigrams'"))
        ).scalar_one()
    assert "fastupdate=off" in options


async def test_the_planner_knows_how_many_tasks_a_provider_and_model_hold(
        store: TaskStore) -> None:
    """A model belongs to one provider: the planner must not multiply their
    selectivities (migration 0012), or a search counted through a provider's name index
    scans the whole provider range (14 ms where per-name lookups take 1.2 ms at 1M)."""
    if store.engines.is_sqlite:
        pytest.skip("SQLite's list reads name their index; PostgreSQL's plan by estimates")
    clock = store.clock()
    pairs = [("p0", "m0"), ("p1", "m1"), ("p2", "m2"), ("p3", "m3")]
    rows = [{"name": f"t{i}", "sort_name": f"t{i}", "prompt": "x", "status": "completed",
             "trigger": "user", "provider": pairs[i % 4][0], "model": pairs[i % 4][1],
             "used_default": False, "created_at": clock, "parent_session": "s",
             "max_duration_minutes": 30}
            for i in range(4000)]
    async with store.engines.write.begin() as conn:
        await conn.execute(insert(TaskRow), rows)
        await conn.execute(text("ANALYZE tasks"))
    async with store.engines.read.connect() as conn:
        plan = (await conn.execute(text(
            "EXPLAIN (FORMAT JSON) SELECT id FROM tasks WHERE provider = 'p1' "
            "AND model = 'm1'"))).scalar_one()
        actual = (await conn.execute(text(
            "SELECT count(*) FROM tasks WHERE provider = 'p1' AND model = 'm1'"))).scalar_one()
    estimate = plan[0]["Plan"]["Plan Rows"]
    # Independent columns would give a quarter of the actual thousand.
    assert actual == 1000
    assert 700 <= estimate <= 1400, plan
