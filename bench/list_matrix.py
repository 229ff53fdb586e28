"""The random matrix of list requests for bench/list_tasks.py: filters, search, sort, page.

A combination is drawn from a seeded ``random.Random`` over the whole space an admin can
reach: status any/each, trigger any/each, provider any/each/Default, dates none / last
1 d / last 7 d / any range / a window of 1 minute to 31 days before now, search none /
a common word / a rare word / an id fragment, every sort both ways, and the page: first,
middle, last, a random one, a typed deep jump, or one ◀/▶ step from a random page.
Words are classed by how many tasks they match in the store at hand (``search_words``),
so the same seed draws the same kinds on any store.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select

from taskops.storage.domain import (
    ListFilters,
    PageRequest,
    ProviderChoice,
    Sort,
    SortField,
    TaskPage,
    TaskStatus,
    Trigger,
)
from taskops.storage.models import TaskNameRow
from taskops.storage.store import TaskStore

PAGES = ("first", "middle", "last", "random", "deep", "next", "prev")
SEARCHES = ("none", "common", "rare", "id")
DATES = ("none", "1 d", "7 d", "range", "window")
#: a common word matches at least this share of the tasks; a rare one at most RARE
COMMON, RARE = 0.01, 0.002
_WORD = re.compile(r"[^\W\d_]{3,}")
_MARKED = re.compile(r"\S*[^\W\d_]\S*\d\S*|\S*\d\S*[^\W\d_]\S*")
_ID = re.compile(r"#?\d+")


@dataclass(frozen=True)
class Words:
    common: tuple[str, ...]
    rare: tuple[str, ...]


@dataclass(frozen=True)
class Combo:
    n: int
    filters: ListFilters
    sort: Sort
    page: str
    search: str
    dates: str
    #: where a random, deep or ◀/▶ page falls, as a fraction of the page count
    at: float

    @property
    def klass(self) -> str:
        """The combination class the growth figure groups by: what the search and the page
        position make the store do (the filters and the sort vary within a class)."""
        return f"search {self.search} · page {self.page}"

    def describe(self) -> str:
        f = self.filters
        parts = [f"status={f.status.value}" if f.status else "",
                 f"trigger={f.trigger.value}" if f.trigger else "",
                 f"provider={f.provider.key() if f.provider.provider else 'Default'}"
                 if f.provider else "",
                 f"last {f.within_minutes} min" if f.within_minutes is not None else
                 f"dates {self.dates} ({f.date_from}..{f.date_to})" if self.dates != "none"
                 else "",
                 f"search {self.search} {f.search!r}" if f.search else ""]
        shown = " ".join(p for p in parts if p) or "no filter"
        return f"{shown} · {sort_label(self.sort)} · {self.page}"


def sort_label(sort: Sort) -> str:
    return f"{sort.field.value} {'▼' if sort.descending else '▲'}"


async def search_words(store: TaskStore, tasks: int, limit: int = 40) -> Words:
    """Words from the stored names, classed by the number of tasks they match."""
    async with store.engines.read.connect() as conn:
        # In order: the ranking's ties (and so the words drawn) must not depend on the
        # order an engine happens to return the names in.
        names = [r[0] for r in await conn.execute(select(TaskNameRow.sort_name)
                                                  .order_by(TaskNameRow.sort_name))]
    by_names = Counter(w for name in names for w in set(_WORD.findall(name)))
    ranked = [w for w, _ in by_names.most_common()]
    pick = random.Random(0)
    # Tokens with digits in them ("ops-4521", "v2.13") are what few names share.
    marked = sorted({t for name in names for t in name.split()
                     if _MARKED.fullmatch(t) and not _ID.fullmatch(t)})
    candidates = (ranked[:limit] + pick.sample(ranked[limit:], min(limit, len(ranked) - limit))
                  + pick.sample(marked, min(limit, len(marked))))
    common, rare = [], []
    for word in sorted(set(candidates)):
        total = (await store.list_tasks(ListFilters(search=word), page_size=1)).total
        if total >= COMMON * tasks:
            common.append(word)
        elif 0 < total <= max(1, RARE * tasks):
            rare.append(word)
    return Words(tuple(common), tuple(rare))


def draw(rng: random.Random, n: int, providers: list[ProviderChoice], today: date,
         words: Words, max_id: int) -> Combo:
    status = rng.choice([None, *TaskStatus])
    trigger = rng.choice([None, *Trigger])
    provider = rng.choice([None, *providers])
    dates = rng.choice(DATES)
    date_from = date_to = None
    if dates == "1 d":
        date_from = date_to = today
    elif dates == "7 d":
        date_from, date_to = today - timedelta(days=6), today
    elif dates == "range":
        a, b = sorted(rng.randrange(0, 31) for _ in range(2))
        date_from, date_to = today - timedelta(days=b), today - timedelta(days=a)
    within = rng.randrange(1, 31 * 24 * 60 + 1) if dates == "window" else None
    search = rng.choice(SEARCHES)
    text = ""
    if search == "common" and words.common:
        text = rng.choice(words.common)
    elif search == "rare" and words.rare:
        text = rng.choice(words.rare)
    elif search == "id":
        digits = str(rng.randrange(1, max_id + 1))
        text = "#" + digits[:rng.randrange(3, len(digits) + 1)] if len(digits) > 3 else digits
    else:
        search = "none"
    sort = Sort(rng.choice(list(SortField)), rng.random() < 0.5)
    return Combo(n, ListFilters(status, trigger, provider, date_from, date_to, text, within),
                 sort, rng.choice(PAGES), search, dates, rng.random())


def matrix(seed: int, count: int, providers: list[ProviderChoice], today: date,
           words: Words, max_id: int) -> list[Combo]:
    rng = random.Random(seed)
    return [draw(rng, n, providers, today, words, max_id) for n in range(count)]


async def prepare(store: TaskStore, combo: Combo, page_size: int) -> PageRequest:
    """The request a combination times; ◀/▶ first read their starting page (untimed)."""
    first = await store.list_tasks(combo.filters, combo.sort, PageRequest(), page_size)
    count = first.page_count
    if combo.page == "first":
        return PageRequest()
    if combo.page == "last":
        return PageRequest.last()
    if combo.page == "middle":
        return PageRequest.at((count + 1) // 2)
    if combo.page == "random":
        return PageRequest.at(1 + int(combo.at * count))
    if combo.page == "deep":  # typed page:N somewhere in the middle half
        return PageRequest.at(max(1, int(count * (0.25 + combo.at / 2))))
    start: TaskPage
    if combo.page == "next":
        start = await store.list_tasks(combo.filters, combo.sort,
                                       PageRequest.at(1 + int(combo.at * max(1, count - 1))),
                                       page_size)
        return PageRequest.after(start)
    start = await store.list_tasks(combo.filters, combo.sort,
                                   PageRequest.at(2 + int(combo.at * max(1, count - 1))),
                                   page_size)
    return PageRequest.before(start)
