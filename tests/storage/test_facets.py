"""The provider menu offers exactly the providers that occur under the other filters."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, date, datetime, timedelta

from taskops.storage.domain import ListFilters, ProviderChoice, Task, TaskStatus, Trigger
from taskops.storage.list_query import (
    DEFAULT,
    PAIR,
    STATUS,
    TRIGGER,
    facet_counts,
    facets_of,
)
from taskops.storage.store import TaskStore
from tests.factories import FakeClock, make_task

PAIRS = [ProviderChoice("openai", "gpt-4o"), ProviderChoice("anthropic", "claude-sonnet-4"),
         ProviderChoice("local", "llama-3.1-70b"), ProviderChoice.default()]
ENDINGS = {TaskStatus.COMPLETED: "STATUS: completed\nSUMMARY: ok",
           TaskStatus.FAILED: "STATUS: failed\nSUMMARY: no",
           TaskStatus.PAUSED: "STATUS: question\nSUMMARY: ?", TaskStatus.RUNNING: None}
FIRST_DAY = date(2026, 11, 16)


async def add_random_tasks(store: TaskStore, clock: FakeClock, rng: random.Random,
                           count: int) -> None:
    """Tasks of random providers, triggers and endings over five days."""
    for n in range(count):
        day = FIRST_DAY + timedelta(days=rng.randrange(5))
        await make_task(store, clock, name=f"t{n}", provider=rng.choice(PAIRS),
                        trigger=rng.choice(list(Trigger)),
                        created=datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
                        final=ENDINGS[rng.choice(list(TaskStatus))])


async def test_the_menu_is_exactly_the_providers_under_the_other_filters(
        store: TaskStore, clock: FakeClock) -> None:
    await add_random_tasks(store, clock, random.Random(1316), 24)
    days = [None, *(FIRST_DAY + timedelta(days=d) for d in range(5))]
    everything = (await store.list_tasks(page_size=100)).tasks
    checked = 0
    for status, trigger, start, end in itertools.product(
            [None, *TaskStatus], [None, *Trigger], days, days):
        if start is not None and end is not None and end < start:
            continue
        filters = ListFilters(status=status, trigger=trigger, date_from=start, date_to=end)
        # Brute force: the tasks the other filters let through, and what they ran on.
        shown = (await store.list_tasks(filters, page_size=100)).tasks
        expected = sorted({(t.provider, t.model) for t in shown})
        wanted = ([ProviderChoice.default()] if any(t.used_default for t in shown) else []) + \
            [ProviderChoice(p, m) for p, m in expected]
        # The provider filter already set never narrows its own menu.
        for chosen in (None, PAIRS[0]):
            with_choice = ListFilters(status, trigger, chosen, start, end)
            assert await store.provider_options(with_choice) == wanted, filters
        for option in wanted:  # every choice offered shows tasks
            narrowed = ListFilters(status, trigger, option, start, end)
            assert (await store.list_tasks(narrowed)).total > 0
        checked += 1
    assert checked > 500
    assert len(everything) == 24


async def test_the_path_choice_counts_every_subset_of_the_filters(
        store: TaskStore, clock: FakeClock) -> None:
    """``facet_counts`` sums, in one row, what each index led by some of the request's
    facets holds; every subset, over all days and within the dates, equals a count of the
    tasks themselves."""
    rng = random.Random(2026)
    await add_random_tasks(store, clock, rng, 30)
    tasks = (await store.list_tasks(page_size=100)).tasks
    days = [None, *(FIRST_DAY + timedelta(days=d) for d in range(5))]

    def holds(task: Task, filters: ListFilters, facet: str) -> bool:
        p = filters.provider
        return {STATUS: task.status is filters.status,
                TRIGGER: task.trigger is filters.trigger,
                PAIR: p is not None and (task.provider, task.model) == (p.provider, p.model),
                DEFAULT: task.used_default}[facet]

    for _ in range(60):
        start, end = rng.choice(days), rng.choice(days)
        filters = ListFilters(status=rng.choice([None, *TaskStatus]),
                              trigger=rng.choice([None, *Trigger]),
                              provider=rng.choice([None, *PAIRS]), date_from=start,
                              date_to=end)
        async with store.db.read() as conn:
            counts = await facet_counts(conn, filters)
        facets = sorted(facets_of(filters))
        for r in range(len(facets) + 1):
            for subset in itertools.combinations(facets, r):
                matching = [t for t in tasks if all(holds(t, filters, f) for f in subset)]
                local = [t.created_at.astimezone(store.tz).date() for t in matching]
                dated = sum(1 for d in local if (start is None or d >= start)
                            and (end is None or d <= end))
                assert counts.count(subset, dated=False) == len(matching), (filters, subset)
                assert counts.count(subset, dated=True) == dated, (filters, subset)
