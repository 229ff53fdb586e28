"""One batch of the task journal, one transaction (storage.journal queues the batches).

A batch is a handful of statements whatever its size: lock and read the tasks' rows
(status, event count, model, claim), add the counters with an ``executemany`` UPDATE
(one for the tasks whose events carry tokens or cost, one for the others, which leaves
the indexed token and cost columns alone), insert the events with one ``executemany``
INSERT (on SQLite numbered in the transaction, see :meth:`BatchWriter._insert`), then the
batch's endings — each a status transition (``transitions.transition``) — and one update
of the day counters for all of them (``counts.move_many``).

An event or ending carrying a run's :class:`Fence` is written only while the task, read
with its row locked in this transaction, still carries that claim; otherwise it is
refused with :class:`ClaimLost` and nothing of it is written.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import JSON, bindparam, case, func, insert, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from taskops import metrics
from taskops.storage import counts, rules, transitions
from taskops.storage.db import Database
from taskops.storage.domain import (
    ACTIVE_STATUSES,
    ClaimLost,
    EventKind,
    Fence,
    StoreError,
    Task,
    TaskEvent,
)
from taskops.storage.faults import backoff, is_transient
from taskops.storage.models import TaskEventRow, TaskRow, UTCDateTime

_ACTIVE = frozenset(s.value for s in ACTIVE_STATUSES)
_PG_TXID = "pg_current_xact_id()::text::bigint"


#: a task's ending, done inside a batch's transaction: given the connection and the
#: batch's list of status changes to count (``counts.move_many``, once for the batch),
#: it makes the transition and returns the task (``transitions.transition``)
Ending = Callable[[AsyncConnection, list[counts.Move]], Awaitable[Task]]


@dataclass(eq=False)
class Entry:
    task_id: int
    kind: EventKind
    payload: dict[str, Any]
    at: datetime
    prompt_tokens: int
    completion_tokens: int
    #: a cost the provider reported itself; None: from the price table
    cost_usd: float | None
    #: the claim of the run that appends it (None: not a run's, e.g. a test's or a tool's)
    fence: Fence | None
    future: asyncio.Future[Any]
    taken: bool = False
    dropped: bool = False
    #: seconds of store outage after which the caller is told (None: wait for the store)
    patience: float | None = None
    #: ``time.monotonic()`` when it was appended
    queued: float = field(default_factory=time.monotonic)


@dataclass(eq=False)
class End:
    task_id: int
    apply: Ending
    patience: float | None
    future: asyncio.Future[Any]
    taken: bool = False
    dropped: bool = False
    queued: float = field(default_factory=time.monotonic)


Item = Entry | End


@dataclass
class _TaskTotals:
    entries: list[Entry] = field(default_factory=list)
    tool_calls: int = 0
    prompt: int = 0
    completion: int = 0
    reported_cost: float | None = None

    def add(self, entry: Entry) -> None:
        self.entries.append(entry)
        self.tool_calls += entry.kind is EventKind.TOOL_CALL
        self.prompt += entry.prompt_tokens
        self.completion += entry.completion_tokens
        if entry.cost_usd is not None:
            self.reported_cost = (self.reported_cost or 0.0) + entry.cost_usd


class _Locked(NamedTuple):
    """A task's row as a batch sees it, locked until the batch commits."""

    event_count: int
    status: str
    model: str | None
    claimed_by: str | None
    claim_token: int
    #: the batch's PostgreSQL transaction id (None on SQLite)
    txid: int | None


#: what an item comes to: its event, None (the task has ended), a refusal (the claim was
#: lost; an ending's InvalidTransition), or an ending's task
Outcome = TaskEvent | Task | StoreError | None


class BatchWriter:
    """Writes one batch of the journal in one transaction (see the module docstring)."""

    def __init__(self, db: Database, on_unavailable: Callable[[BaseException], None]) -> None:
        self.db = db
        #: told of each transient failure while asking whether a batch committed
        self.on_unavailable = on_unavailable
        self._update = self._update_statement(usage=True)
        self._update_light = self._update_statement(usage=False)
        # The payloads were cleaned by append: bound as plain JSON, not cleaned again by
        # the column's JSONPayload (every string of a payload, redaction included).
        self._insert_numbered = insert(TaskEventRow).values(
            payload=bindparam("payload", type_=JSON()))

    @staticmethod
    def _update_statement(*, usage: bool) -> Any:
        """The counters' UPDATE. Without ``usage`` it leaves the token and cost columns
        alone: those are in the list's sort indexes, and an UPDATE that names them makes
        SQLite rewrite every such index entry (and PostgreSQL give up its heap-only
        update), even when it adds 0 — most events carry no tokens."""
        values: dict[str, Any] = dict(
            event_count=TaskRow.event_count + bindparam("n"),
            last_event_at=bindparam("at", type_=UTCDateTime()),
            tool_call_count=TaskRow.tool_call_count + bindparam("k"))
        if usage:
            cost = bindparam("cost", type_=TaskRow.cost_usd.type)
            values.update(prompt_tokens=TaskRow.prompt_tokens + bindparam("p"),
                          completion_tokens=TaskRow.completion_tokens + bindparam("c"),
                          total_tokens=TaskRow.total_tokens + bindparam("pc"),
                          cost_usd=case((cost.is_(None), TaskRow.cost_usd),
                                        else_=func.coalesce(TaskRow.cost_usd, 0.0) + cost))
        return update(TaskRow).where(TaskRow.id == bindparam("tid")).values(**values)

    async def write(self, batch: list[Item]) -> dict[int, Outcome]:
        by_task: dict[int, list[Entry]] = {}
        endings: list[End] = []
        for item in batch:
            if isinstance(item, End):
                endings.append(item)
            else:
                by_task.setdefault(item.task_id, []).append(item)
        ids = sorted(set(by_task) | {e.task_id for e in endings})
        results: dict[int, Outcome] = {id(e): None for e in batch}
        txid: int | None = None
        placed: list[Entry] = []
        async with self.db.engines.write.connect() as conn:
            await conn.begin()
            if not self.db.is_sqlite:
                # The connection asks for custom plans (for the list's reads, db.py), which
                # made PostgreSQL plan the foreign-key check of every event row again, and
                # every statement here; all of them look tasks up by primary key, where a
                # cached generic plan is as good.
                await conn.exec_driver_sql("SET LOCAL plan_cache_mode = auto")
            current = await self._lock_tasks(conn, ids)
            txid = next((t.txid for t in current.values()), None)
            updates: list[dict[str, Any]] = []
            light: list[dict[str, Any]] = []
            rows: list[dict[str, Any]] = []
            for task_id in sorted(by_task):
                found = current.get(task_id)
                if found is None or found.status not in _ACTIVE:
                    continue  # gone or ended: its events are refused
                totals = _TaskTotals()
                for entry in by_task[task_id]:
                    if entry.fence is not None and not transitions.holds(found, entry.fence):
                        # a stale run's: another worker holds the task now
                        results[id(entry)] = ClaimLost(task_id)
                    else:
                        totals.add(entry)
                entries = totals.entries
                if not entries:
                    continue
                counters = dict(tid=task_id, n=len(entries), at=max(e.at for e in entries),
                                k=totals.tool_calls)
                cost = self._cost(totals, found.model)
                if totals.prompt or totals.completion or cost is not None:
                    updates.append(dict(counters, p=totals.prompt, c=totals.completion,
                                        pc=totals.prompt + totals.completion, cost=cost))
                else:
                    light.append(counters)
                for offset, entry in enumerate(entries, start=1):
                    rows.append(dict(task_id=task_id, seq=found.event_count + offset,
                                     at=entry.at, kind=entry.kind.value, payload=entry.payload,
                                     txid=found.txid))
                    placed.append(entry)
            if rows:
                if updates:
                    await conn.execute(self._update, updates)
                if light:
                    await self._update_counters(conn, light)
                for entry, row, event_id in zip(placed, rows, await self._insert(conn, rows),
                                                strict=True):
                    results[id(entry)] = TaskEvent(event_id, entry.task_id, row["seq"], entry.at,
                                                   entry.kind, entry.payload)
            if endings:
                await self._end_tasks(conn, endings, results)
            try:
                await conn.commit()
            except Exception as error:
                if txid is None or not is_transient(error) or not await self.committed(txid):
                    raise
        if metrics.enabled():
            for entry in placed:
                metrics.events_written(entry.kind.value)
        return results

    async def _end_tasks(self, conn: AsyncConnection, endings: list[End],
                         results: dict[int, Outcome]) -> None:
        """The batch's endings, after its events (each task's in the order they came), and
        then the day counters of all of them in one statement."""
        moves: list[counts.Move] = []
        for ending in sorted(endings, key=lambda e: e.task_id):
            try:
                results[id(ending)] = await ending.apply(conn, moves)
            except StoreError as refused:  # refused before anything was written
                results[id(ending)] = refused
        if moves:
            await counts.move_many(conn, self.db.tz, moves)

    async def _update_counters(self, conn: AsyncConnection,
                               light: list[dict[str, Any]]) -> None:
        """Add the counters of tasks whose events carry no usage. PostgreSQL: one UPDATE
        for all of them, from arrays (an ``executemany`` runs the statement once per task,
        each run with its own executor start and index lookups)."""
        if self.db.is_sqlite or len(light) == 1:
            await conn.execute(self._update_light, light)
            return
        await conn.exec_driver_sql(
            "UPDATE tasks SET event_count = tasks.event_count + v.n, last_event_at = v.at, "
            "tool_call_count = tasks.tool_call_count + v.k "
            "FROM unnest($1::bigint[], $2::int[], $3::timestamp[], $4::int[]) AS v(tid, n, at, k) "
            "WHERE tasks.id = v.tid",
            ([c["tid"] for c in light], [c["n"] for c in light],
             [c["at"].astimezone(UTC).replace(tzinfo=None) for c in light],
             [c["k"] for c in light]))

    async def _insert(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[int]:
        """Insert the events in order; returns their ids.

        SQLite: the transaction holds the database's only write lock, so the ids are the
        next ones after the largest (what SQLite would choose itself, one by one) and the
        rows go in with one ``executemany`` — a RETURNING insert would be run row by row.
        PostgreSQL: ids come from the sequence, in parameter order (one statement)."""
        if self.db.is_sqlite:
            last = (await conn.execute(select(func.max(TaskEventRow.id)))).scalar() or 0
            ids = list(range(last + 1, last + 1 + len(rows)))
            for row, event_id in zip(rows, ids, strict=True):
                row["id"] = event_id
            await conn.execute(self._insert_numbered, rows)
            return ids
        inserted = await conn.exec_driver_sql(
            "INSERT INTO task_events (task_id, seq, at, kind, payload, txid) "
            "SELECT v.task_id, v.seq, v.at, v.kind, v.payload::jsonb, v.txid FROM unnest("
            "$1::bigint[], $2::int[], $3::timestamp[], $4::varchar[], $5::text[], "
            "$6::bigint[]) AS v(task_id, seq, at, kind, payload, txid) "
            "RETURNING id, task_id, seq",
            ([r["task_id"] for r in rows], [r["seq"] for r in rows],
             [r["at"].astimezone(UTC).replace(tzinfo=None) for r in rows],
             [r["kind"] for r in rows], [json.dumps(r["payload"]) for r in rows],
             [r["txid"] for r in rows]))
        by_seq = {(row.task_id, row.seq): int(row.id) for row in inserted}
        return [by_seq[r["task_id"], r["seq"]] for r in rows]

    async def _lock_tasks(self, conn: AsyncConnection, ids: list[int]) -> dict[int, _Locked]:
        """What the batch needs of each task, its row locked until commit (SQLite: the
        write lock the transaction already holds), in id order so two writers never wait
        for each other in a circle. The claim is read under that lock: a take-over waits
        for this transaction, or this one sees the take-over."""
        txid: Any = None if self.db.is_sqlite else literal_column(_PG_TXID)
        query = (select(TaskRow.id, TaskRow.event_count, TaskRow.status, TaskRow.model,
                        TaskRow.claimed_by, TaskRow.claim_token,
                        *(() if txid is None else (txid.label("txid"),)))
                 .where(TaskRow.id.in_(ids)).order_by(TaskRow.id).with_for_update())
        out = {}
        for row in await conn.execute(query):
            out[row.id] = _Locked(row.event_count, row.status, row.model, row.claimed_by,
                                  row.claim_token, None if txid is None else row.txid)
        return out

    def _cost(self, totals: _TaskTotals, model: str | None) -> float | None:
        """The cost these events add: what the provider reported, plus the price table's
        estimate for the tokens that came without a reported cost."""
        unreported = [e for e in totals.entries if e.cost_usd is None]
        p = sum(e.prompt_tokens for e in unreported)
        c = sum(e.completion_tokens for e in unreported)
        cost = totals.reported_cost
        price = self.db.settings.price_for(model) if (p or c) else None
        if price is not None:
            cost = (cost or 0.0) + rules.estimate_cost(price.input_per_million,
                                                       price.output_per_million, p, c)
        return cost

    async def committed(self, txid: int) -> bool:
        """Whether the PostgreSQL transaction ``txid`` committed (asked on a new
        connection, once the server answers again)."""
        attempt = 0
        while True:
            try:
                async with self.db.engines.write.connect() as conn:
                    status = (await conn.execute(select(func.pg_xact_status(
                        literal_column(f"'{int(txid)}'::xid8"))))).scalar_one()
                return status == "committed"
            except Exception as error:
                if not is_transient(error):
                    raise
                self.on_unavailable(error)
                await asyncio.sleep(backoff(attempt))
                attempt += 1
