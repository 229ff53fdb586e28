"""The provider menu offers exactly the providers that occur under the other filters."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, date, datetime, timedelta

from taskops.storage.domain import ListFilters, ProviderChoice, TaskStatus, Trigger
from taskops.storage.store import TaskStore
from tests.factories import FakeClock, make_task

PAIRS = [ProviderChoice("openai", "gpt-4o"), ProviderChoice("anthropic", "claude-sonnet-4"),
         ProviderChoice("local", "llama-3.1-70b"), ProviderChoice.default()]
ENDINGS = {TaskStatus.COMPLETED: "STATUS: completed\nSUMMARY: ok",
           TaskStatus.FAILED: "STATUS: failed\nSUMMARY: no",
           TaskStatus.PAUSED: "STATUS: question\nSUMMARY: ?", TaskStatus.RUNNING: None}
FIRST_DAY = date(2026, 11, 16)


async def test_the_menu_is_exactly_the_providers_under_the_other_filters(
        store: TaskStore, clock: FakeClock) -> None:
    rng = random.Random(1316)
    for n in range(24):
        day = FIRST_DAY + timedelta(days=rng.randrange(5))
        await make_task(store, clock, name=f"t{n}", provider=rng.choice(PAIRS),
                        trigger=rng.choice(list(Trigger)),
                        created=datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
                        final=ENDINGS[rng.choice(list(TaskStatus))])
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
