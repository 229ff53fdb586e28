"""List queries against a brute-force oracle, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql

from taskops.storage import list_order
from taskops.storage.domain import (
    ID_PREFIX_MIN,
    ListFilters,
    PageRequest,
    ProviderChoice,
    SearchTerms,
    Sort,
    SortField,
    Task,
    TaskPage,
    TaskStatus,
    Trigger,
)
from taskops.storage.list_query import _pg_opaque
from taskops.storage.models import FILTER_COLUMNS, TaskRow
from taskops.storage.store import TaskStore
from tests.conftest import reset_database
from tests.factories import FakeClock, make_settings, make_task

BASE = datetime(2026, 11, 10, 0, 0, tzinfo=UTC)
PROVIDERS = [None, ProviderChoice("openai", "gpt-4o"), ProviderChoice("openai", "gpt-4o-mini"),
             ProviderChoice("local", "llama-3"), ProviderChoice("scripted", "scripted")]
OUTCOMES = ["never", "running", "paused", "completed", "failed", "killed", "killed_unstarted"]

task_spec = st.fixed_dictionaries({
    "name": st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12)
              .filter(lambda s: s.strip() != ""),
    "outcome": st.sampled_from(OUTCOMES),
    "trigger": st.sampled_from(list(Trigger)),
    "provider": st.sampled_from(PROVIDERS),
    "created_minutes": st.integers(0, 8 * 24 * 60),
    "run_seconds": st.integers(0, 5000),
    "tokens": st.tuples(st.integers(0, 5000), st.integers(0, 5000)),
})


async def build(store: TaskStore, clock: FakeClock, specs: list[dict[str, Any]]) -> list[Task]:
    await reset_database(store)
    await store.rebuild_counts()
    for spec in specs:
        outcome = spec["outcome"]
        final = {"paused": "STATUS: question\nSUMMARY: ?", "completed": "done",
                 "failed": "STATUS: failed\nSUMMARY: no"}.get(outcome)
        await make_task(store, clock, name=spec["name"], trigger=spec["trigger"],
                        provider=spec["provider"],
                        created=BASE + timedelta(minutes=spec["created_minutes"]),
                        run_seconds=spec["run_seconds"], tokens=spec["tokens"], final=final,
                        killed=outcome in ("killed", "killed_unstarted"),
                        started=outcome not in ("never", "killed_unstarted"))
    clock.set(BASE + timedelta(days=9))
    page = await store.list_tasks(page_size=20)
    everything: list[Task] = []
    for p in range(1, page.page_count + 1):
        everything.extend((await store.list_tasks(page=p, page_size=20)).tasks)
    return everything


def id_matches(task_id: int, fragment: str) -> bool:
    if len(fragment) < ID_PREFIX_MIN:
        return str(task_id) == fragment
    return str(task_id).startswith(fragment)


def search_matches(task: Task, terms: SearchTerms) -> bool:
    name = task.name.casefold()[:200]
    return (all(w in name for w in terms.words)
            and all(id_matches(task.id, i) for i in terms.ids))


def matches(task: Task, f: ListFilters, store: TaskStore) -> bool:
    local_day = task.created_at.astimezone(store.tz).date()
    since = (None if f.within_minutes is None
             else store.clock() - timedelta(minutes=f.within_minutes))
    return (search_matches(task, f.terms)
            and (since is None or task.created_at >= since)
            and (f.status is None or task.status is f.status)
            and (f.trigger is None or task.trigger is f.trigger)
            and (f.provider is None
                 or (task.used_default if f.provider.is_default
                     else (task.provider, task.model) == (f.provider.provider, f.provider.model)))
            and (f.date_from is None or local_day >= f.date_from)
            and (f.date_to is None or local_day <= f.date_to))


def oracle(tasks: list[Task], f: ListFilters, sort: Sort, now: datetime,
           store: TaskStore) -> list[int]:
    chosen = [t for t in tasks if matches(t, f, store)]
    if sort.field is SortField.DURATION:
        started = [t for t in chosen if t.started_at is not None]
        never = [t for t in chosen if t.started_at is None]

        def ms(t: Task) -> int:
            assert t.started_at is not None
            return int(((t.finished_at or now) - t.started_at).total_seconds() * 1000)

        started.sort(key=lambda t: (ms(t), t.id), reverse=sort.descending)
        never.sort(key=lambda t: t.id, reverse=sort.descending)
        return [t.id for t in started + never]
    keys = {
        SortField.CREATED: lambda t: (t.created_at, t.id),
        SortField.NAME: lambda t: (t.name.casefold(), t.id),
        SortField.TOKENS: lambda t: (t.total_tokens, t.id),
        SortField.COST: lambda t: (-1.0 if t.cost_usd is None else t.cost_usd, t.id),
    }
    return [t.id for t in sorted(chosen, key=keys[sort.field], reverse=sort.descending)]


async def all_pages(store: TaskStore, f: ListFilters, sort: Sort, size: int) -> list[int]:
    first = await store.list_tasks(f, sort, 1, size)
    ids = [t.id for t in first.tasks]
    for p in range(2, first.page_count + 1):
        page = await store.list_tasks(f, sort, p, size)
        assert page.total == first.total
        ids.extend(t.id for t in page.tasks)
    assert len(ids) == first.total
    return ids


async def keyset_pages(store: TaskStore, f: ListFilters, sort: Sort, size: int) -> list[int]:
    """The whole list by ▶ from page 1, checked against ◀ back from the last page."""
    page = await store.list_tasks(f, sort, PageRequest(), size)
    forward = [t.id for t in page.tasks]
    pages: list[TaskPage] = [page]
    while page.page < page.page_count:
        page = await store.list_tasks(f, sort, PageRequest.after(page), size)
        assert page.page == len(pages) + 1
        assert page.total == pages[0].total  # ▶ may count in the page's own statement
        pages.append(page)
        forward.extend(t.id for t in page.tasks)
    last = await store.list_tasks(f, sort, PageRequest.last(), size)
    assert [t.id for t in last.tasks] == [t.id for t in pages[-1].tasks]
    backward = [t.id for t in last.tasks]
    page = last
    while page.page > 1:
        page = await store.list_tasks(f, sort, PageRequest.before(page), size)
        assert page.total == last.total
        backward[:0] = [t.id for t in page.tasks]
    assert backward == forward
    return forward


def search_text(draw: st.DrawFn, tasks: list[Task]) -> str:
    """Words cut from the tasks' names (in any case), id fragments, or a miss."""
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["name", "id", "miss"]) if tasks else st.just("miss"))
        if kind == "miss":
            parts.append(draw(st.sampled_from(["zzqx", "#9", "qq", "ÄÖÜ"])))
            continue
        task = draw(st.sampled_from(tasks))
        if kind == "id":
            digits = str(task.id)
            parts.append(("#" if draw(st.booleans()) else "")
                         + digits[:draw(st.integers(1, len(digits)))])
            continue
        words = task.name.split()
        if not words:
            continue
        word = draw(st.sampled_from(words))
        start = draw(st.integers(0, len(word) - 1))
        cut = word[start:start + draw(st.integers(1, 6))]
        parts.append(cut.upper() if draw(st.booleans()) else cut)
    return " ".join(parts)


filters_strategy = st.builds(
    ListFilters,
    status=st.none() | st.sampled_from(list(TaskStatus)),
    trigger=st.none() | st.sampled_from(list(Trigger)),
    provider=st.none() | st.sampled_from([ProviderChoice.default(), *PROVIDERS[1:]]),
    date_from=st.none() | st.dates(date(2026, 11, 9), date(2026, 11, 19)),
    date_to=st.none() | st.dates(date(2026, 11, 9), date(2026, 11, 19)),
    # a window from minutes to past the oldest task, starting at any time of a day
    within_minutes=st.none() | st.integers(1, 12 * 24 * 60),
)
sort_strategy = st.builds(Sort, field=st.sampled_from(list(SortField)), descending=st.booleans())


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(specs=st.lists(task_spec, max_size=25),
       queries=st.lists(st.tuples(filters_strategy, sort_strategy, st.integers(1, 7)),
                        min_size=1, max_size=6))
async def test_every_filter_and_sort_matches_the_oracle(
        store: TaskStore, clock: FakeClock, specs: list[dict[str, Any]],
        queries: list[tuple[ListFilters, Sort, int]]) -> None:
    tasks = await build(store, clock, specs)
    assert len(tasks) == len(specs)
    now = clock()
    for sort in (Sort(field, desc) for field in SortField for desc in (True, False)):
        assert await all_pages(store, ListFilters(), sort, 3) == oracle(tasks, ListFilters(),
                                                                        sort, now, store)
    for f, sort, size in queries:
        expected = oracle(tasks, f, sort, now, store)
        assert await all_pages(store, f, sort, size) == expected, (f, sort, size)


async def test_page_beyond_the_end_shows_the_last_page(store: TaskStore,
                                                       clock: FakeClock) -> None:
    for i in range(7):
        await make_task(store, clock, name=f"t{i}")
    page = await store.list_tasks(page=99, page_size=3)
    assert (page.page, page.page_count, page.total, len(page.tasks)) == (3, 3, 7, 1)
    empty = await store.list_tasks(ListFilters(status=TaskStatus.PAUSED), page=1, page_size=3)
    assert (empty.total, empty.page_count, empty.tasks) == (0, 1, [])


async def test_date_filters_are_whole_local_days(store: TaskStore, clock: FakeClock) -> None:
    # Europe/Berlin is UTC+1 in November: local midnight of the 20th is 23:00 UTC on the 19th.
    late = await make_task(store, clock, created=datetime(2026, 11, 19, 22, 59, 59, tzinfo=UTC))
    early = await make_task(store, clock, created=datetime(2026, 11, 19, 23, 0, tzinfo=UTC))
    last = await make_task(store, clock, created=datetime(2026, 11, 20, 22, 59, 59, tzinfo=UTC))
    after = await make_task(store, clock, created=datetime(2026, 11, 20, 23, 0, tzinfo=UTC))
    day = date(2026, 11, 20)
    page = await store.list_tasks(ListFilters(date_from=day, date_to=day))
    assert {t.id for t in page.tasks} == {early.id, last.id}
    assert page.total == 2
    assert {t.id for t in (await store.list_tasks(ListFilters(date_to=date(2026, 11, 19)))).tasks
            } == {late.id}
    assert {t.id for t in (await store.list_tasks(ListFilters(date_from=date(2026, 11, 21)))
                           ).tasks} == {after.id}


async def test_counts_follow_a_timezone_change(store: TaskStore, clock: FakeClock,
                                               tmp_path: Path) -> None:
    await make_task(store, clock, created=datetime(2026, 11, 19, 20, 0, tzinfo=UTC))
    the_20th = ListFilters(date_from=date(2026, 11, 20), date_to=date(2026, 11, 20))
    assert (await store.list_tasks(the_20th)).total == 0  # still the 19th in Berlin
    kolkata = make_settings(tmp_path, store.settings.database.url,
                            {"ui": {"timezone": "Asia/Kolkata"}})
    other = await TaskStore.open(kolkata, clock=clock)
    try:
        # 20:00 UTC is 01:30 on the 20th in Kolkata (UTC+5:30): the counts were rebuilt.
        page = await other.list_tasks(the_20th)
        assert (page.total, len(page.tasks)) == (1, 1)
    finally:
        await other.close()
    berlin_again = await TaskStore.open(store.settings, clock=clock)
    try:
        assert (await berlin_again.list_tasks(the_20th)).total == 0
    finally:
        await berlin_again.close()


async def test_provider_options_come_from_the_data(store: TaskStore, clock: FakeClock) -> None:
    await make_task(store, clock, provider=ProviderChoice("openai", "gpt-4o"))
    await make_task(store, clock, provider=ProviderChoice("anthropic", "claude-sonnet-4"))
    await make_task(store, clock)
    options = await store.provider_options()
    assert options == [ProviderChoice.default(), ProviderChoice("anthropic", "claude-sonnet-4"),
                       ProviderChoice("openai", "gpt-4o"), ProviderChoice("scripted", "scripted")]
    default_only = await store.list_tasks(ListFilters(provider=ProviderChoice.default()))
    assert default_only.total == 1


@pytest.fixture(params=["planned", "tight"])
def planner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """"tight" makes every walk hit its cap and every created page skip days, so the
    fallback paths answer too (the lists here are far too small to reach them)."""
    if request.param == "tight":
        monkeypatch.setattr(list_order, "CAP_MIN", 1)
        monkeypatch.setattr(list_order, "CAP_FACTOR", 0)
        monkeypatch.setattr(list_order, "DAY_SKIP_MIN", 0)
    return str(request.param)


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(specs=st.lists(task_spec, max_size=25), data=st.data())
async def test_search_and_keyset_paging_match_the_oracle(
        store: TaskStore, clock: FakeClock, planner: str, specs: list[dict[str, Any]],
        data: st.DataObject) -> None:
    tasks = await build(store, clock, specs)
    now = clock()
    for _ in range(4):
        f = replace(data.draw(filters_strategy), search=search_text(data.draw, tasks))
        sort = data.draw(sort_strategy)
        size = data.draw(st.integers(1, 6))
        expected = oracle(tasks, f, sort, now, store)
        assert await all_pages(store, f, sort, size) == expected, (f, sort, size)
        assert await keyset_pages(store, f, sort, size) == expected, (f, sort, size)


async def test_id_fragments_match_the_id_or_its_prefix(store: TaskStore,
                                                       clock: FakeClock) -> None:
    made = [await make_task(store, clock, name=f"n{i}", started=False) for i in range(125)]
    ids = [t.id for t in made]
    assert ids[-1] >= 120

    async def found(search: str) -> list[int]:
        page = await store.list_tasks(ListFilters(search=search), Sort(SortField.CREATED, False),
                                      1, 200)
        return [t.id for t in page.tasks]

    assert await found("#12") == [12]
    assert await found("12") == [12]
    assert await found("#120") == [i for i in ids if str(i).startswith("120")]
    assert await found("#11") == [11]
    assert await found("#012") == []
    named = {t.id: t.name for t in made}
    assert await found(f"#12 {named[12]}") == [12]
    assert await found("#12 #120") == []
    assert await found("N12") == [i for i in ids if "n12" in named[i]]


async def test_an_anchor_from_another_sort_falls_back_to_the_page_number(
        store: TaskStore, clock: FakeClock) -> None:
    for i in range(9):
        await make_task(store, clock, name=f"t{i}")
    by_name = await store.list_tasks(sort=Sort(SortField.NAME), page_size=3)
    other = PageRequest.after(by_name)
    page = await store.list_tasks(sort=Sort(SortField.TOKENS), page=other, page_size=3)
    numbered = await store.list_tasks(sort=Sort(SortField.TOKENS), page=2, page_size=3)
    assert (page.page, [t.id for t in page.tasks]) == (2, [t.id for t in numbered.tasks])


async def test_a_window_of_minutes_is_exact_across_local_midnight(store: TaskStore,
                                                                   clock: FakeClock) -> None:
    # Europe/Berlin: local midnight of the 20th is 23:00 UTC on the 19th. "Last hour" at
    # 23:30 UTC starts at 22:30 UTC, on the 19th's local day... of which it holds 30 min.
    made = {minute: await make_task(store, clock, trigger=Trigger.CRONJOB, name=f"t{minute}",
                                    created=datetime(2026, 11, 19, 21, 0, tzinfo=UTC)
                                    + timedelta(minutes=minute))
            for minute in (0, 89, 90, 91, 119, 120, 150)}
    await make_task(store, clock, trigger=Trigger.USER,
                    created=datetime(2026, 11, 19, 23, 10, tzinfo=UTC))
    clock.set(datetime(2026, 11, 19, 23, 30, tzinfo=UTC))
    hour = ListFilters(trigger=Trigger.CRONJOB, within_minutes=60)
    page = await store.list_tasks(hour, page_size=2)
    expected = [made[m].id for m in (150, 120, 119, 91, 90)]
    assert page.total == 5
    assert await all_pages(store, hour, Sort(), 2) == expected
    assert await keyset_pages(store, hour, Sort(SortField.NAME, False), 2) == sorted(
        expected, key=lambda i: (next(t.name.casefold() for t in made.values() if t.id == i), i))
    # With a From day after the window's start, the day wins; with a To day before it,
    # nothing is left.
    later = replace(hour, date_from=date(2026, 11, 20))
    assert (await store.list_tasks(later)).total == 2
    assert (await store.list_tasks(replace(hour, date_to=date(2026, 11, 19)))).total == 3


def test_every_list_column_has_a_no_op_form_on_postgresql() -> None:
    """The walk hides its residual filters from PostgreSQL's index choice with a no-op of
    the column's type (``x || ''``, ``x + 0``, …). A column type that does not say its
    Python type got ``+ interval`` and failed the list (``varchar + interval``)."""
    names = [*FILTER_COLUMNS, "created_at", "sort_name", "total_tokens", "cost_usd",
             "duration_ms"]
    expected = {"status": "||", "trigger": "||", "provider": "||", "model": "||",
                "used_default": "AND", "created_at": "+", "sort_name": "||",
                "total_tokens": "+", "cost_usd": "+", "duration_ms": "+"}
    for name in names:
        sql = str(_pg_opaque(getattr(TaskRow, name)).compile(dialect=postgresql.dialect()))
        assert f" {expected[name]} " in sql, (name, sql)
        assert "INTERVAL" not in sql.upper() or name == "created_at", (name, sql)


def test_an_id_fragment_leaves_out_the_ranges_above_every_id() -> None:
    """``#8185`` matches up to 15 prefix ranges; with the largest id known, only those
    that can hold an id are spelled (PostgreSQL planned each OR'd range against every
    index: 7 ms a statement)."""
    from sqlalchemy.dialects import postgresql

    from taskops.storage.list_query import id_ranges_where

    def arms(max_id: int | None) -> int:
        sql = str(id_ranges_where(["8185"], max_id=max_id).compile(dialect=postgresql.dialect()))
        return sql.count("tasks.id =") + sql.count("BETWEEN")

    assert arms(None) == 15
    assert arms(900_000) == 3  # 8185, 81850–81859, 818500–818599
    assert arms(8184) == 0
