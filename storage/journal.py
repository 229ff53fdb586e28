"""The task journal's writer: the events of many tasks, committed together (group commit).

A running task's events are its journal (runtime: resume replays it), so an event the
agent has been told is recorded must survive a crash — :meth:`Journal.append` returns
only after the transaction that holds the event has committed. What makes that cheap is
sharing the transaction: while one batch is being written, the events of every other
task queue up, and the next batch takes them all (no timer is needed for that; an
optional ``window`` waits a little longer to gather more).

A batch is one transaction of a handful of statements whatever its size
(storage.journal_batch). The guarantees of one-event-per-transaction stay:

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
* the counts per day are kept in step by the endings: a task's ending (its status
  transition, ``finish_task``/``fail_task``) rides in the next batch after that batch's
  events, so many tasks' endings share one commit and one update of the day counters.

Faults: a transient error (storage.faults) retries the batch with backoff, holding the
events — and the agents waiting on them — until the store is back. If the connection
breaks while COMMIT is under way on PostgreSQL, ``pg_xact_status`` says whether the
batch committed, so an event is never written twice. A batch that fails for any other
reason is split, so one bad event fails alone. An append whose caller is cancelled before
its batch was taken is dropped (it was never acknowledged, so it never happened). An
ending given a ``patience`` is told :class:`StoreUnavailable` once the store has been
away that long (a run then stops and is taken up again later, as before).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

from taskops.storage import rules
from taskops.storage.db import Database
from taskops.storage.domain import EventKind, Fence, StoreError, Task, TaskEvent
from taskops.storage.faults import StoreUnavailable, backoff, describe, is_transient
from taskops.storage.journal_batch import BatchWriter, End, Ending, Entry, Item

log = logging.getLogger("taskops.storage")

#: how many events one transaction takes at most
MAX_BATCH = 1000


class Journal:
    def __init__(self, db: Database, *, window: float = 0.0, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.window = window
        self.max_batch = max_batch
        self._pending: deque[Item] = deque()
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
        self._batch = BatchWriter(db, self._unavailable)

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
        entry = Entry(task_id, kind, rules.clean(payload), self.db.clock(), prompt_tokens,
                       completion_tokens, cost_usd, fence, loop.create_future())
        self._pending.append(entry)
        self._kick()
        try:
            return await entry.future
        except asyncio.CancelledError:
            if not entry.taken:
                entry.dropped = True  # never acknowledged: it did not happen
            raise

    async def end(self, task_id: int, apply: Ending, *,
                  patience: float | None = None) -> Task:
        """End (or pause) a task in the next batch's transaction, after that batch's events
        (``apply`` makes the transition; its refusal — InvalidTransition, ClaimLost — is
        raised here, with nothing written). Many tasks' endings share one commit and one
        update of the day counters. With ``patience``, :class:`StoreUnavailable` once the
        store has been away that long (the ending was not written)."""
        entry = End(task_id, apply, patience, asyncio.get_running_loop().create_future())
        self._pending.append(entry)
        self._kick()
        try:
            task: Task = await entry.future
        except asyncio.CancelledError:
            if not entry.taken:
                entry.dropped = True
            raise
        return task

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

    def _take(self) -> list[Item]:
        batch: list[Item] = []
        while self._pending and len(batch) < self.max_batch:
            entry = self._pending.popleft()
            if entry.dropped or entry.future.done():
                continue
            entry.taken = True
            batch.append(entry)
        return batch

    async def _flush(self, batch: list[Item]) -> None:
        attempt = 0
        while True:
            # A waiter cancelled meanwhile (its run stopped), or told that the store is
            # away, was never acknowledged: a batch that has to be written again leaves
            # its item out.
            live = [e for e in batch if not e.future.done()]
            if not live:
                return
            try:
                results = await self._batch.write(live)
            except Exception as error:
                if is_transient(error):
                    self._unavailable(error)
                    self._give_up(live, error)
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
            if isinstance(outcome, StoreError):
                _settle(entry.future, error=outcome)
            else:
                _settle(entry.future, result=outcome)

    def _give_up(self, live: list[Item], error: BaseException) -> None:
        """Tell the waiters whose patience with the store has run out (nothing of theirs
        was written: a batch is retried only when it did not commit), those queued behind
        the batch being retried too."""
        if self.unavailable_since is None:
            return
        now = time.monotonic()
        for item in (*live, *self._pending):
            since = max(self.unavailable_since, item.queued)
            if item.patience is not None and now - since >= item.patience:
                _settle(item.future, error=StoreUnavailable(since, error))

    def _unavailable(self, error: BaseException) -> None:
        self.last_error = describe(error)
        if self.unavailable_since is None:
            self.unavailable_since = time.monotonic()
            log.warning("journal: the store is unavailable (%s); holding %d event(s) and "
                        "retrying", self.last_error, len(self._pending) + 1)


def _settle(future: asyncio.Future[Any], *, result: Any = None,
            error: BaseException | None = None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
