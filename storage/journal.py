"""The task journal's writer: the events of many tasks, committed together (group commit).

A running task's events are its journal (runtime: resume replays it), so an event the
agent has been told is recorded must survive a crash — :meth:`Journal.append` returns
only after the transaction that holds the event has committed. What makes that cheap is
sharing the transaction: while one batch is being written, the events of every other
task queue up, and the next batch takes them all (no timer is needed for that; an
optional ``window`` waits a little longer to gather more).

A batch is a handful of statements whatever its size: lock and read the tasks' rows
(status, event count, model, claim), add the counters with an ``executemany`` UPDATE (one for
the tasks whose events carry tokens or cost, one for the others, which leaves the
indexed token and cost columns alone), insert the events with one ``executemany``
INSERT (on SQLite numbered in the transaction, see :meth:`Journal._insert`). The
guarantees of one-event-per-transaction stay:

* per-task order: a task's events get consecutive ``seq`` numbers in the order they
  were appended, and ids in the same order (the INSERT keeps parameter order);
* an event for a task that has ended is refused (``None``), as before;
* fenced by the claim: an event appended with a run's :class:`Fence` is written only if
  the task, read with its row locked in the batch's own transaction, still carries that
  claim (worker and token); otherwise it is refused with :class:`ClaimLost` and nothing of
  it — event, counters, usage — is written. A worker that lost its lease (starved past
  it, cut off) can therefore not write after another worker took the task up; the check
  and the write are one transaction, so no take-over can slip in between;
* the change feed: on PostgreSQL every event of a batch carries the batch's
  transaction id, so (txid, id) order still follows commit order (storage.feed);
* the counts per day are untouched (events do not change a task's status).

Faults: a transient error (storage.faults) retries the batch with backoff, holding the
events — and the agents waiting on them — until the store is back. If the connection
breaks while COMMIT is under way on PostgreSQL, ``pg_xact_status`` says whether the
batch committed, so an event is never written twice. A batch that fails for any other
reason is split, so one bad event fails alone. An append whose caller is cancelled before
its batch was taken is dropped (it was never acknowledged, so it never happened).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, case, func, insert, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from taskops import metrics
from taskops.storage import rules, transitions
from taskops.storage.db import Database
from taskops.storage.domain import (
    ACTIVE_STATUSES,
    ClaimLost,
    EventKind,
    Fence,
    StoreError,
    TaskEvent,
)
from taskops.storage.faults import backoff, describe, is_transient
from taskops.storage.models import TaskEventRow, TaskRow, UTCDateTime

log = logging.getLogger("taskops.storage")

_ACTIVE = frozenset(s.value for s in ACTIVE_STATUSES)
_PG_TXID = "pg_current_xact_id()::text::bigint"

#: how many events one transaction takes at most
MAX_BATCH = 1000


@dataclass(eq=False)
class _Entry:
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
    future: asyncio.Future[TaskEvent | None]
    taken: bool = False
    dropped: bool = False


@dataclass
class _TaskTotals:
    entries: list[_Entry] = field(default_factory=list)
    tool_calls: int = 0
    prompt: int = 0
    completion: int = 0
    reported_cost: float | None = None

    def add(self, entry: _Entry) -> None:
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


#: what an append comes to: its event, None (the task has ended), or the claim was lost
_Outcome = TaskEvent | ClaimLost | None


class Journal:
    def __init__(self, db: Database, *, window: float = 0.0, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.window = window
        self.max_batch = max_batch
        self._pending: deque[_Entry] = deque()
        # (asyncio events bind to a loop on first use, not here)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._flusher: asyncio.Task[None] | None = None
        #: monotonic time since when batches have failed with transient errors (None: fine)
        self.unavailable_since: float | None = None
        self.last_error: str | None = None
        #: batches and events written (for benchmarks and logs)
        self.batches = 0
        self.events = 0
        self._update = self._update_statement(usage=True)
        self._update_light = self._update_statement(usage=False)
        self._insert_numbered = insert(TaskEventRow)
        self._insert_returning = insert(TaskEventRow).returning(TaskEventRow.id,
                                                                sort_by_parameter_order=True)

    # --- the callers' side --------------------------------------------------------------

    async def append(self, task_id: int, kind: EventKind, payload: dict[str, Any], *,
                     prompt_tokens: int = 0, completion_tokens: int = 0,
                     cost_usd: float | None = None,
                     fence: Fence | None = None) -> TaskEvent | None:
        """Record one event of a running task; returns it once committed, or None when the
        task has ended (nothing is written then). With a ``fence``: :class:`ClaimLost`
        (nothing written) when the task is no longer held under it."""
        if prompt_tokens < 0 or completion_tokens < 0:
            raise StoreError("token counts cannot be negative")
        loop = asyncio.get_running_loop()
        entry = _Entry(task_id, kind, rules.clean(payload), self.db.clock(), prompt_tokens,
                       completion_tokens, cost_usd, fence, loop.create_future())
        self._pending.append(entry)
        self._kick()
        try:
            return await entry.future
        except asyncio.CancelledError:
            if not entry.taken:
                entry.dropped = True  # never acknowledged: it did not happen
            raise

    async def drain(self) -> None:
        """Wait until everything appended so far is written (or has failed)."""
        while self._flusher is not None and not self._flusher.done() and not self._idle.is_set():
            await self._idle.wait()

    async def close(self) -> None:
        await self.drain()
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None

    @property
    def backlog(self) -> int:
        return len(self._pending)

    def _kick(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_forever(), name="journal")
        self._idle.clear()
        self._wake.set()

    # --- the flusher --------------------------------------------------------------------

    async def _flush_forever(self) -> None:
        while True:
            if not self._pending:
                self._idle.set()
                await self._wake.wait()
            self._wake.clear()
            if self.window:
                await asyncio.sleep(self.window)
            batch = self._take()
            try:
                await self._flush(batch)
            except BaseException as error:
                for entry in batch:
                    _settle(entry.future, error=error)
                raise

    def _take(self) -> list[_Entry]:
        batch: list[_Entry] = []
        while self._pending and len(batch) < self.max_batch:
            entry = self._pending.popleft()
            if entry.dropped or entry.future.done():
                continue
            entry.taken = True
            batch.append(entry)
        return batch

    async def _flush(self, batch: list[_Entry]) -> None:
        attempt = 0
        while True:
            # A waiter cancelled meanwhile (its run stopped) was never acknowledged: a batch
            # that has to be written again leaves its event out.
            live = [e for e in batch if not e.future.cancelled()]
            if not live:
                return
            try:
                results = await self._write(live)
            except Exception as error:
                if is_transient(error):
                    self._unavailable(error)
                    await asyncio.sleep(backoff(attempt))
                    attempt += 1
                    continue
                if len(live) > 1:  # one bad event must not fail the others
                    for entry in live:
                        await self._flush([entry])
                    return
                log.exception("task#%d: an event could not be written", live[0].task_id)
                _settle(live[0].future, error=error)
                return
            break
        if self.unavailable_since is not None:
            log.info("journal: the store is back after %.1fs",
                     time.monotonic() - self.unavailable_since)
            self.unavailable_since = None
        self.batches += 1
        self.events += sum(1 for r in results.values() if isinstance(r, TaskEvent))
        for entry in live:
            outcome = results.get(id(entry))
            if isinstance(outcome, ClaimLost):
                _settle(entry.future, error=outcome)
            else:
                _settle(entry.future, result=outcome)

    def _unavailable(self, error: BaseException) -> None:
        self.last_error = describe(error)
        if self.unavailable_since is None:
            self.unavailable_since = time.monotonic()
            log.warning("journal: the store is unavailable (%s); holding %d event(s) and "
                        "retrying", self.last_error, len(self._pending) + 1)

    # --- one batch, one transaction -----------------------------------------------------

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

    async def _write(self, batch: list[_Entry]) -> dict[int, _Outcome]:
        by_task: dict[int, list[_Entry]] = {}
        for entry in batch:
            by_task.setdefault(entry.task_id, []).append(entry)
        ids = sorted(by_task)
        results: dict[int, _Outcome] = {id(e): None for e in batch}
        txid: int | None = None
        placed: list[_Entry] = []
        async with self.db.engines.write.connect() as conn:
            await conn.begin()
            current = await self._lock_tasks(conn, ids)
            updates: list[dict[str, Any]] = []
            light: list[dict[str, Any]] = []
            rows: list[dict[str, Any]] = []
            for task_id in ids:
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
                txid = found.txid
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
            try:
                await conn.commit()
            except Exception as error:
                if txid is None or not is_transient(error) or not await self._committed(txid):
                    raise
        if metrics.enabled():
            for entry in placed:
                metrics.events_written(entry.kind.value)
        return results

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

    async def _committed(self, txid: int) -> bool:
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
                self._unavailable(error)
                await asyncio.sleep(backoff(attempt))
                attempt += 1


def _settle(future: asyncio.Future[TaskEvent | None], *, result: TaskEvent | None = None,
            error: BaseException | None = None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
