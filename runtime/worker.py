"""The worker: claims tasks from the store and runs up to ``[runtime] concurrency`` at once.

One loop, woken by the in-process bus (a task created, a question answered, a run
ended) or every ``check_interval`` seconds, does everything that is not a run itself:

* claim answered or released running tasks, then new ones (compare-and-set claims with
  a lease, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two workers never run one task);
* take up again the tasks of workers that are gone — a dead process on this host at
  once, another host's once its lease has run out — continuing from their journal
  (``runtime.resume``): nothing recorded is done twice;
* stop runs whose task ended elsewhere — at once for a kill in this process (the bus)
  and, on PostgreSQL, for a kill from another process (LISTEN/NOTIFY on a connection of
  its own); within ``poll_interval_seconds`` otherwise (polling, the fallback and the
  SQLite path);
* renew this worker's leases;
* enforce max duration and the paused timeout, write periodic status updates;
* ride out store outages: runs wait for the store; past ``store_patience_seconds`` they
  stop and are released once the store is back, to be taken up again. Limits still
  apply meanwhile: a run past its deadline stops at once, and its failure is recorded
  when the store answers again.

Times that decide a task's fate come from the store's clock (so tests control them);
the loop's own pacing is real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from taskops.config import Settings
from taskops.runtime import liveness
from taskops.runtime.lifecycle import progress_payload
from taskops.runtime.providers import ProviderError, Providers
from taskops.runtime.run import CLAIM_LOST, STORE_UNAVAILABLE, RunEnd, TaskRun
from taskops.runtime.tools import ToolRegistry, load_plugins
from taskops.runtime.tools import registry as default_tools
from taskops.storage.domain import (
    ClaimLost,
    EventKind,
    Fence,
    Task,
    TaskEvent,
    TaskStatus,
    Trigger,
)
from taskops.storage.faults import StoreUnavailable, describe, is_transient, retry
from taskops.storage.rules import MAX_DURATION_MESSAGE, PAUSED_TIMEOUT_MESSAGE, past_deadline
from taskops.storage.signals import TaskChange
from taskops.storage.store import TaskStore

log = logging.getLogger("taskops.runtime")

#: how many check intervals pass between two looks for lost workers and stale questions
RECOVERY_EVERY = 5
#: stop reasons after which the task is still running and is given back to be taken up
GIVEN_BACK = frozenset({"worker stopping", STORE_UNAVAILABLE})
#: stop reasons after which the task has not ended (here, at least): no outcome to record
NOT_ENDED = GIVEN_BACK | {CLAIM_LOST, "max duration"}
#: how long a stopping worker tries to give its tasks back to an unavailable store
RELEASE_PATIENCE = 5.0
#: how long a run stopped by a kill's announcement is not taken up again: its kill is
#: committing meanwhile; a task still running after that was not killed (the store failed
#: under the kill) and its run continues from the journal
KILL_COMMIT_SECONDS = 10.0

default_worker_id = liveness.default_worker_id


class Worker:
    def __init__(self, store: TaskStore, settings: Settings, *, worker_id: str | None = None,
                 providers: Providers | None = None, tools: ToolRegistry | None = None,
                 check_interval: float | None = None, lease_seconds: float | None = None,
                 on_run_end: Callable[[TaskRun], None] | None = None) -> None:
        self.store = store
        self.settings = settings
        self.worker_id = worker_id or default_worker_id()
        self.concurrency = settings.runtime.concurrency
        self.poll_interval = settings.runtime.poll_interval_seconds
        self.check_interval = check_interval or min(self.poll_interval, 1.0)
        self.lease_seconds = lease_seconds or settings.runtime.lease_seconds
        self.providers = providers or Providers(settings)
        self.tools = tools or default_tools
        self.on_run_end = on_run_end
        #: the runs in progress, by task id
        self.runs: dict[int, TaskRun] = {}
        self._wake = asyncio.Event()
        self._due: dict[str, float] = {}
        self._outcomes: list[int] = []
        #: tasks to give back once the store answers (their runs stopped for an outage)
        self._to_release: set[int] = set()
        #: failures decided while the store was away (max duration), to record later
        self._to_fail: dict[int, str] = {}
        self._progress: set[asyncio.Task[None]] = set()
        self._failing_since: float | None = None
        #: set while kills from other processes reach this worker at once (PostgreSQL)
        self.listening = asyncio.Event()
        #: tasks whose run a kill's announcement stopped → loop time until which they are
        #: not taken up again (their kill commits meanwhile)
        self._killed: dict[int, float] = {}
        #: whether there may be work to claim before the next poll: a task was created or
        #: answered here, or the last claim filled every free slot (more may be waiting)
        self._maybe_work = True

    # --- the loop -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; then stop the runs and release their tasks."""
        load_plugins(self.tools)
        liveness.started(self.worker_id)
        queue = self.store.bus.subscribe()
        helpers = [asyncio.create_task(self._watch(queue)),
                   asyncio.create_task(self._relay(stop)),
                   asyncio.create_task(self.store.work.listen_kills(
                       self.worker_id, self._killed_elsewhere, stop, ready=self.listening))]
        log.info("worker %s started: concurrency %d, provider(s) %s", self.worker_id,
                 self.concurrency, ", ".join(p.name for p in self.settings.providers))
        try:
            while not stop.is_set():
                await self._tick()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.check_interval)
                self._wake.clear()
        finally:
            for helper in helpers:
                helper.cancel()
            self.store.bus.unsubscribe(queue)
            await self._shutdown()
            liveness.stopped(self.worker_id)
            log.info("worker %s stopped", self.worker_id)

    def _killed_elsewhere(self, task_id: int) -> None:
        """A kill by any process, announced before its transaction or at its commit
        (PostgreSQL NOTIFY): stop the run at once, with no store call first."""
        run = self.runs.get(task_id)
        if run is not None:
            run.stop("killed")
            self._killed[task_id] = asyncio.get_running_loop().time() + KILL_COMMIT_SECONDS

    async def _relay(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    def _is_due(self, what: str, every: float) -> bool:
        now = asyncio.get_running_loop().time()
        if now < self._due.get(what, 0.0):
            return False
        self._due[what] = now + every
        return True

    async def _tick(self) -> None:
        self._reap()
        # First what needs no store: limits hold while the store is away.
        self._check_store()
        self._check_limits()
        try:
            await self._settle()
            await self._claim()
            if self.runs and self._is_due("poll", self.poll_interval):
                await self._poll_holdings()
            if self.runs and self._is_due("lease", self.lease_seconds / 3):
                await self.store.work.renew(self.worker_id, list(self.runs),
                                            self.lease_seconds)
            if self._is_due("recover", self.check_interval * RECOVERY_EVERY):
                await self._recover()
            while self._outcomes:
                await self.store.cronjobs.record_outcome(self._outcomes[0])
                self._outcomes.pop(0)
        except Exception as error:
            # The store may be away for a while; runs in flight carry on, and so do we.
            # One line when it starts (a traceback only if it is not a store outage) and
            # one when it is over.
            if self._failing_since is None:
                self._failing_since = time.monotonic()
                if is_transient(error) or isinstance(error, StoreUnavailable):
                    log.warning("worker %s: the store is unavailable (%s); retrying",
                                self.worker_id, describe(error))
                else:
                    log.exception("worker %s: housekeeping failed; retrying", self.worker_id)
        else:
            if self._failing_since is not None:
                log.info("worker %s: housekeeping works again after %.1fs", self.worker_id,
                         time.monotonic() - self._failing_since)
            self._failing_since = None

    async def _watch(self, queue: asyncio.Queue[TaskChange]) -> None:
        """React to the in-process bus: stop killed runs at once, claim new work early."""
        while True:
            change = await queue.get()
            run = self.runs.get(change.task_id)
            if run is not None:
                if change.killed:
                    run.stop("killed")
                elif change.status is not None and change.status.is_final:
                    run.stop(f"task {change.status.value}")
            elif change.created or change.status is TaskStatus.RUNNING:
                self._maybe_work = True
                self._wake.set()

    # --- claiming and ending runs -------------------------------------------------------

    async def _claim(self) -> None:
        free = self.concurrency - len(self.runs)
        if free <= 0:
            return
        # Tasks of dead workers first (their lease ran out): new tasks must not keep
        # them waiting while this worker has room.
        if self._is_due("take-over", self.check_interval):
            await self._take_over()
            free = self.concurrency - len(self.runs)
            if free <= 0:
                return
        # A run that ends wakes the loop too; it looks for work only when there may be
        # some (two reads each time, ~0.1 ms of CPU per event with 200 short tasks), and
        # every poll interval for work from other processes.
        if not self._maybe_work and not self._is_due("claim", self.poll_interval):
            return
        wanted = free
        # Answered questions first (someone is waiting), and tasks given back to be
        # taken up again.
        for held in await self.store.work.claim_unowned(self.worker_id, free,
                                                        self.lease_seconds):
            await self._start(held.task, held.fence, await self.store.task_journal(held.id))
            free -= 1
        for held in await self.store.work.claim_new(self.worker_id, free, self.lease_seconds):
            await self._start(held.task, held.fence, None)
            free -= 1
        self._maybe_work = free <= 0 < wanted

    async def _take_over(self) -> None:
        """Take up, from their journal, the tasks of workers that are gone (and tasks this
        worker holds without running them, e.g. after its run was stopped)."""
        free = self.concurrency - len(self.runs)
        if free <= 0:
            return
        now = asyncio.get_running_loop().time()
        self._killed = {i: until for i, until in self._killed.items() if until > now}
        gone = []
        for claim in await self.store.work.claims(exclude=list(self.runs)):
            if claim.worker_id == self.worker_id:
                mine_idle = claim.task_id not in self._to_fail and \
                    claim.task_id not in self._killed
            else:
                mine_idle = False
            if mine_idle or (claim.worker_id != self.worker_id and (
                    liveness.gone_here(claim.worker_id)
                    or self.store.work.expired(claim, self.lease_seconds))):
                gone.append(claim)
        for held in await self.store.work.take_over(self.worker_id, gone[:free],
                                                    self.lease_seconds):
            log.warning("        ↻ task#%d: its worker is gone; taking it up again", held.id)
            await self._start(held.task, held.fence, await self.store.task_journal(held.id))

    async def _start(self, task: Task, fence: Fence,
                     history: tuple[TaskEvent, ...] | None) -> None:
        stale = self.runs.get(task.id)
        if stale is not None:
            # Claimed again while an old run of it is still here (it lost the claim
            # meanwhile): the old run's writes are fenced out; it stops, and the claim
            # held now is taken up from the journal by the take-over once it is gone.
            stale.stop(CLAIM_LOST)
            return
        try:
            provider = self.providers.get(task.provider)
        except ProviderError as exc:
            try:
                await self.store.fail_task(task.id, str(exc), allowed=[TaskStatus.RUNNING],
                                           fence=fence, patience=0)
            except ClaimLost:
                return  # another worker took it up meanwhile: it is that worker's now
            self._ended(task)
            return
        run = TaskRun(self.store, self.settings, task, provider, self.tools, fence, history)
        self.runs[task.id] = run
        run.start().add_done_callback(lambda _: self._wake.set())
        log.info("        → task#%d %s (%s/%s)", task.id,
                 "resumed" if run.resumed else "continued" if history else "started",
                 task.provider, task.model)

    def _ended(self, task: Task) -> None:
        if task.trigger is Trigger.CRONJOB:
            self._outcomes.append(task.id)

    def _reap(self) -> None:
        for task_id, run in list(self.runs.items()):
            if not run.done:
                continue
            del self.runs[task_id]
            if run.stop_reason == STORE_UNAVAILABLE:
                self._to_release.add(task_id)
            if run.stop_reason not in NOT_ENDED:
                self._ended(run.task)
            if self.on_run_end is not None:
                self.on_run_end(run)

    async def _shutdown(self) -> None:
        for run in self.runs.values():
            run.stop("worker stopping")
        await asyncio.gather(*(run.wait() for run in self.runs.values()))
        # Stopped mid-run: give the tasks back so a worker takes them up again from their
        # journal; tasks that ended meanwhile are not touched by the release.
        stopped = {i for i, r in self.runs.items() if r.end is RunEnd.STOPPED}
        with contextlib.suppress(Exception):
            await retry(lambda: self.store.work.release(self.worker_id,
                                                        stopped | self._to_release),
                        give_up_after=RELEASE_PATIENCE, what="release")
        for job in self._progress:
            job.cancel()
        self._reap()
        await self.providers.aclose()

    # --- the store away -----------------------------------------------------------------

    def _check_store(self) -> None:
        """Stop the runs once the store has been away longer than they may wait."""
        since = self.store.journal.unavailable_since
        patience = self.settings.runtime.store_patience_seconds
        if since is None or time.monotonic() - since < patience:
            return
        for run in self.runs.values():
            run.stop(STORE_UNAVAILABLE)

    async def _settle(self) -> None:
        """Record what could not be recorded while the store was away. (The loop's own
        writes never wait for the store, ``patience=0``: it retries them next tick and
        meanwhile keeps enforcing limits.)"""
        if self._to_release:
            await self.store.work.release(self.worker_id, list(self._to_release))
            log.info("worker %s: %d task(s) given back to be taken up again", self.worker_id,
                     len(self._to_release))
            self._to_release.clear()
        for task_id, error in list(self._to_fail.items()):
            task = await self.store.fail_task(task_id, error, allowed=[TaskStatus.RUNNING],
                                              patience=0)
            del self._to_fail[task_id]
            if task is not None:
                self._ended(task)

    # --- watching the runs --------------------------------------------------------------

    async def _poll_holdings(self) -> None:
        """Notice kills (and lost claims) made by other processes."""
        held = await self.store.work.holdings(list(self.runs))
        for task_id, run in list(self.runs.items()):
            holding = held.get(task_id)
            if holding is None or holding.status is not TaskStatus.RUNNING:
                run.stop("killed" if holding and holding.killed_by else "ended elsewhere")
            elif holding.claimed_by != self.worker_id:
                run.stop(CLAIM_LOST)

    def _check_limits(self) -> None:
        """Stop runs past their deadline (recorded as failed by :meth:`_settle`) and start
        the status updates that are due."""
        now = self.store.clock()
        tasks = self.settings.tasks
        period = tasks.status_update_minutes * 60
        for task_id, run in list(self.runs.items()):
            if run.done or run.stop_reason is not None:
                continue
            if past_deadline(run.task.started_at or run.claimed_at,
                             run.task.max_duration_minutes, now):
                # Stop first: the deadline holds even while the store is away.
                run.stop("max duration")
                self._to_fail[task_id] = MAX_DURATION_MESSAGE
                continue
            if not tasks.status_updates:
                continue
            elapsed = run.elapsed_seconds(now)
            mark = int(elapsed // period)
            if run.progress_mark is None:
                run.progress_mark = int(run.elapsed_seconds(run.claimed_at) // period)
            if mark > run.progress_mark:
                run.progress_mark = mark
                job = asyncio.create_task(self._write_progress(task_id, elapsed, run.fence))
                self._progress.add(job)
                job.add_done_callback(self._progress.discard)

    async def _write_progress(self, task_id: int, elapsed: float, fence: Fence) -> None:
        # Off the loop: the journal holds it while the store is away.
        try:
            task = await retry(lambda: self.store.get_task(task_id), what="status update")
            await self.store.append_event(task_id, EventKind.PROGRESS,
                                          progress_payload(task, elapsed / 60), fence=fence)
        except ClaimLost:
            pass  # the run is another worker's now, and so are its status updates
        except Exception:
            log.exception("task#%d: the status update could not be written", task_id)

    async def _recover(self) -> None:
        await self._take_over()
        limit = self.settings.tasks.paused_timeout_hours * 3600
        now = self.store.clock()
        for paused in await self.store.work.paused():
            # Max duration is wall-clock from the start: it runs out while a task waits too.
            if past_deadline(paused.started_at, paused.max_duration_minutes, now):
                error = MAX_DURATION_MESSAGE
            elif (now - paused.since).total_seconds() >= limit:
                error = PAUSED_TIMEOUT_MESSAGE
            else:
                continue
            task = await self.store.fail_task(paused.id, error, allowed=[TaskStatus.PAUSED],
                                              patience=0)
            if task is not None:
                log.info("        ✗ task#%d (paused): %s", paused.id, error)
                self._ended(task)
