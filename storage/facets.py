"""Which provider/model pairs occur under the list's other filters: the provider menu.

The menu offers only choices that would show tasks together with the filters already
set (status, trigger, dates), so a press never leads to an empty list; a selection that
no longer occurs can be told apart and dropped. Read from the per-day counts, like the
list's totals (the totals without a date filter), so it costs a few thousand rows at
most whatever the number of tasks.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from taskops.storage.domain import ListFilters, ProviderChoice
from taskops.storage.list_query import counter_where
from taskops.storage.models import TaskCountRow, TaskTotalRow


async def provider_options(conn: AsyncConnection,
                           filters: ListFilters | None = None) -> list[ProviderChoice]:
    """"Default" (when some matching task ran on the task default), then every
    provider/model pair of the matching tasks, sorted; the provider filter itself is
    ignored, since it is what the menu chooses."""
    others = replace(filters or ListFilters(), provider=None)
    # Without dates the totals answer (about a hundred rows, not a month of days).
    t: Any = TaskCountRow if others.date_from or others.date_to else TaskTotalRow
    rows = await conn.execute(
        select(t.provider, t.model, t.used_default)
        .where(*counter_where(t, others))
        .group_by(t.provider, t.model, t.used_default)
        .having(func.sum(t.n) > 0))
    found = list(rows)
    pairs = sorted({(r.provider, r.model) for r in found if r.provider})
    default = [ProviderChoice.default()] if any(r.used_default for r in found) else []
    return default + [ProviderChoice(provider, model) for provider, model in pairs]
