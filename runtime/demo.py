"""``taskops run --demo``: keep a handful of scripted tasks running, failing, pausing and
completing, so a new user sees a live console within a minute.

Every ``interval`` seconds the next prompt of a fixed rotation is submitted, unless a few
tasks are already running; the question prompt is skipped while earlier runs of it still
wait for answers, so unanswered questions do not pile up. All prompts use the scripted provider's
step language (docs/scripted-provider.md) and run on the worker like any task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from taskops.storage.domain import (
    ListFilters,
    ProviderChoice,
    StoreError,
    TaskDraft,
    TaskStatus,
    Trigger,
)
from taskops.storage.store import TaskStore

log = logging.getLogger("taskops.runtime")

#: at most this many running tasks before the demo waits
MAX_RUNNING = 4
#: the question prompt is skipped while this many of its runs wait for an answer
MAX_PAUSED = 2

def _prompt(*lines: str) -> str:
    return "\n".join(lines)


DEMO_TASKS: tuple[tuple[str, Trigger, str], ...] = (
    ("Summarise the overnight alerts", Trigger.USER, _prompt(
        "Collect last night's alerts and summarise them for the on-call channel.",
        "!think Start with the alert feed, then group by service.",
        "!say Pulling the alert feed for the last 12 hours.",
        '!tool fetch_alerts {"since": "12h"} -> 14 alerts: 9 × disk-space (db-2), '
        "3 × 5xx (api), 2 × cert-expiry",
        "!tokens 1800 240",
        "!wait 4",
        '!tool current_time {"timezone": "Europe/Berlin"}',
        "!say Grouped by service; **db-2** is the only one that needs action.",
        "!tokens 2600 410",
        "!wait 3",
        r"!end completed **14 alerts overnight**\n\n- db-2: disk at 91 %, 9 alerts — needs "
        r"cleanup\n- api: 3 short 5xx bursts, recovered\n- cert-expiry: renewal scheduled",
    )),
    ("Rotate the staging API keys", Trigger.AGENT, _prompt(
        "Rotate the API keys of the staging environment and update the secrets store.",
        "!say Listing the staging keys.",
        '!tool list_keys {"env": "staging"} -> 3 keys: payments, search, mail',
        "!tokens 900 120",
        "!wait 3",
        '!tool rotate_key {"env": "staging", "name": "payments"} !! 403 Forbidden: the token '
        "lacks the keys:rotate scope",
        "!tokens 1100 160",
        "!wait 2",
        "!end failed Could not rotate the staging keys: the service token lacks the "
        "`keys:rotate` scope. Grant it and restart the task.",
    )),
    ("Deploy the release notes page", Trigger.USER, _prompt(
        "Build and deploy the release notes page.",
        "!say Building the release notes page.",
        '!tool build_site {"target": "release-notes"} -> built 42 pages in 8.1s',
        "!tokens 1500 200",
        "!wait 3",
        "!end question Which branch should I deploy: `main` or `release/2.3`?",
        "!say Deploying the answered branch.",
        '!tool deploy {"target": "release-notes"} -> deployed, '
        "https://example.com/release-notes",
        "!tokens 1200 150",
        "!wait 3",
        "!end completed Deployed the release notes page.",
    )),
    ("Sync the CRM contacts", Trigger.CRONJOB, _prompt(
        "Sync new CRM contacts into the mailing list.",
        "!say Starting the contact sync.",
        "!wait 2",
        "!loop crm_sync",
    )),
    ("Tidy the shared drive", Trigger.HEARTBEAT, _prompt(
        "Look for stale files in the shared drive.",
        '!tool list_stale {"older_than_days": 365} -> 0 files',
        "!tokens 600 60",
        "!wait 2",
        "!end silent Nothing stale found.",
    )),
    ("Crawl the competitor pricing pages", Trigger.USER, _prompt(
        "Crawl the pricing pages of three competitors and compare the plans.",
        "!think Three sites; crawl each, then compare the plans side by side.",
        '!tool crawl {"url": "https://example.com/pricing"} -> 4 plans, from $9 to $99',
        "!tokens 3200 300",
        "!wait 12",
        '!tool crawl {"url": "https://example.org/pricing"} -> 3 plans, from $12 to $79',
        "!tokens 3100 280",
        "!wait 12",
        '!tool crawl {"url": "https://example.net/pricing"} !! timeout after 30s',
        "!wait 6",
        '!tool crawl {"url": "https://example.net/pricing"} -> 5 plans, from $5 to $149',
        "!tokens 3300 900",
        "!wait 8",
        r"!end completed | | cheapest | priciest |\n|---|---|---|\n| example.com | $9 | $99 |"
        r"\n| example.org | $12 | $79 |\n| example.net | $5 | $149 |",
    )),
)

SCRIPTED = ProviderChoice("scripted", "scripted")


async def submit_next(store: TaskStore, index: int) -> int | None:
    """Submit the next demo task from ``index`` of the rotation; returns the index used,
    or None when enough tasks are running already."""
    running = (await store.list_tasks(ListFilters(status=TaskStatus.RUNNING),
                                      page_size=1)).total
    if running >= MAX_RUNNING:
        return None
    name, trigger, prompt = DEMO_TASKS[index % len(DEMO_TASKS)]
    if "!end question" in prompt:
        # Counted by name: the seeded history has paused tasks of its own.
        paused = await store.list_tasks(ListFilters(status=TaskStatus.PAUSED), page_size=100)
        if sum(t.name == name for t in paused.tasks) >= MAX_PAUSED:
            index += 1
            name, trigger, prompt = DEMO_TASKS[index % len(DEMO_TASKS)]
    task = await store.create_task(TaskDraft(name=name, prompt=prompt, trigger=trigger,
                                             provider=SCRIPTED))
    log.info("demo: submitted task#%d %s", task.id, name)
    return index


async def run_demo(store: TaskStore, stop: asyncio.Event, interval: float = 10.0) -> None:
    """Submit demo tasks every ``interval`` seconds until ``stop`` is set."""
    index = 0
    while not stop.is_set():
        try:
            used = await submit_next(store, index)
            if used is not None:
                index = used + 1
        except StoreError as exc:
            log.error("demo: cannot submit a task: %s", exc)
        except Exception:
            log.exception("demo: submitting failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
