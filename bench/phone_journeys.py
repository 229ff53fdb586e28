"""Taps and typed characters of an on-call admin's journeys, and how tall the list is.

    python bench/phone_journeys.py [--ui before|after] [--tasks 5000] [--seed 0]

Runs the real taskops Application against the fake Telegram server (tests/fakegram), in
this process, on a fresh SQLite file under bench/data/, seeded with ``--tasks`` demo tasks
(``storage.seed.seed_demo``) plus the journeys' own tasks: 30 running tasks of one cronjob
("nightly-sync"), 5 running user tasks, and a failed task with a 202-character prompt.
Every journey starts in a fresh private chat with a typed command and ends when the fake's
state shows its goal reached (checked; a journey that does not reach it fails the run).

How a journey is counted (what a person's thumb does on a phone):

* a typed command or reply: its characters are typed, and one tap sends it;
* a button press: one tap;
* copying a ``<pre>``/``<code>`` block or pressing a copy button: one tap; pasting into the
  input field: two taps (long-press, Paste); these happen on the client and are counted,
  not sent to the fake (the script checks the copied text is what the message shows).

``--ui before`` drives the console as it was before issue 15 (commit 2b82b37: Sort cycles,
paging by Next ▶ or typed ``page:N``, kill one by one, restart by retyping the prompt);
``--ui after`` drives the console this script ships with. A journey definition only runs
on the UI it was written for.

The second part renders ``/tasks`` at page sizes 5, 8 (the default), 10 and 20 with every
task at the longest name (200 characters), provider (100) and model (200) the store
allows, and counts the message's text lines (newlines), its lines on a 6" phone (text
wrapped at ``--columns`` characters, 38 by default: Telegram's default font on a
1080-px-wide 6" screen) and its keyboard rows.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import logging
import re
import shutil
import tempfile
import textwrap
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from taskops.storage.domain import EventKind, ProviderChoice, TaskDraft, TaskStatus, Trigger
from taskops.storage.seed import seed_demo
from tests.e2e.harness import Console, running_console
from tests.fakegram import FakeTelegram
from tests.fakegram.flood import FloodLimits

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
PROMPT = ("Compile the Q3 infrastructure report: pull the cost export from the billing "
          "bucket, compare it with Q2 per service, list the three biggest increases with a "
          "one-line cause each, and retry after 2026-12-03T00:00Z.")
CHANGED_WORD = ("Q2", "Q1")


@dataclass
class Meter:
    """Counts what the admin's thumb does in one journey."""

    console: Console
    chat: Any
    taps: int = 0
    typed: int = 0
    steps: list[str] = field(default_factory=list)

    async def command(self, text: str) -> Any:
        server = self.console.server
        before = len([m for m in server.messages(self.chat) if m.from_bot])
        await server.send_text(self.console.admin, self.chat, text)
        await server.wait_for(lambda: len([m for m in server.messages(self.chat)
                                           if m.from_bot]) > before)
        self.taps += 1
        self.typed += len(text)
        self.steps.append(f"type {text!r}")
        return server.last_bot_message(self.chat)

    async def reply(self, prompt: Any, text: str, typed: int | None = None) -> None:
        """Reply to a ForceReply prompt; ``typed`` is what was typed (default: all of it)."""
        server = self.console.server
        calls = len(server.calls)
        await server.reply_to(self.console.admin, self.chat, prompt.message_id, text)
        await server.wait_for(lambda: len(server.calls) > calls)
        await asyncio.sleep(0.2)
        self.taps += 1
        self.typed += len(text) if typed is None else typed
        self.steps.append(f"reply ({len(text)} chars)")

    async def tap(self, message: Any, label: str, nth: int = 0, *, edit: bool = True) -> Any:
        """Press the ``nth`` button whose label is or starts with ``label``."""
        server = self.console.server
        found = [b for row in message.buttons for b in row if b[0] == label] or [
            b for row in message.buttons for b in row if b[0].startswith(label)]
        if len(found) <= nth:
            labels = [b[0] for r in message.buttons for b in r]
            raise LookupError(f"no button {label!r} #{nth}: {labels}")
        edits = len(message.edits)
        messages = len(server.messages(self.chat))
        query = await server.press(self.console.admin, self.chat, message.message_id,
                                   found[nth][1])
        await server.wait_for(lambda: any(a.query_id == query for a in server.callback_answers))
        if edit:
            await server.wait_for(lambda: len(message.edits) > edits
                                  or len(server.messages(self.chat)) > messages)
        self.taps += 1
        self.steps.append(f"tap {found[nth][0]!r}")
        return server.last_bot_message(self.chat)

    def client(self, what: str, taps: int) -> None:
        """Something done on the phone alone (copy, paste)."""
        self.taps += taps
        self.steps.append(what)


@dataclass(frozen=True)
class Fixture:
    failed_id: int
    cron_ids: list[int]


Journey = Callable[[Meter, Fixture], Awaitable[None]]


def check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


# --- the journeys, on the console before issue 15 -------------------------------------------

async def before_open_error(m: Meter, f: Fixture) -> None:
    msg = await m.command("/tasks")
    await m.tap(msg, "Status:")
    await m.tap(msg, "🔴 Failed")
    await m.tap(msg, f"🔴 #{f.failed_id} ")
    check("cost export missing" in msg.text, "the error is shown")


async def before_kill_one(m: Meter, f: Fixture) -> None:
    msg = await m.command("/tasks")
    await m.tap(msg, "🛑 Kill")
    await m.tap(msg, "🛑 Kill")
    check("Task killed successfully." in [a.text for a in m.console.server.callback_answers],
          "a task was killed")


async def before_kill_cronjob(m: Meter, f: Fixture) -> None:
    msg = await m.command("/tasks")
    await m.tap(msg, "Status:")
    await m.tap(msg, "⚪ Running")
    await m.tap(msg, "Trigger:")
    await m.tap(msg, "Cronjob")
    while any(b[0] == "🛑 Kill" for row in msg.buttons for b in row):
        await m.tap(msg, "🛑 Kill")
        await m.tap(msg, "🛑 Kill")
    tasks = await m.console.store.tasks_by_ids(f.cron_ids)
    check(all(t.status is TaskStatus.FAILED for t in tasks.values()), "all 30 killed")


async def before_restart_one_word(m: Meter, f: Fixture) -> None:
    msg = await m.command(f"/task {f.failed_id}")
    await m.tap(msg, "🔁 Edit & restart")
    prompt = await m.tap(msg, "✏️ Prompt")
    new_prompt = PROMPT.replace(*CHANGED_WORD)
    await m.reply(prompt, new_prompt)
    await m.tap(msg, "Save & restart")
    await _check_restarted(m, new_prompt)


async def before_last_page(m: Meter, f: Fixture) -> None:
    msg = await m.command("/tasks")
    pages = int(re.search(r"Page 1 of (\d+)", msg.text).group(1))  # type: ignore[union-attr]
    msg = await m.command(f"/tasks page:{pages}")
    check(f"Page {pages} of {pages}" in msg.text, "the last page is shown")


async def before_sort_by_cost(m: Meter, f: Fixture) -> None:
    msg = await m.command("/tasks")
    while "sorted by Est. cost" not in msg.text:
        await m.tap(msg, "↕ ")
    check("sorted by Est. cost ▼" in msg.text, "sorted by cost")


BEFORE: dict[str, Journey] = {
    "open a failed task's error": before_open_error,
    "kill one task": before_kill_one,
    "kill all running of one cronjob (30)": before_kill_cronjob,
    "restart with one word of the prompt changed": before_restart_one_word,
    "reach the last page": before_last_page,
    "sort by cost": before_sort_by_cost,
}


async def _check_restarted(m: Meter, new_prompt: str) -> None:
    page = await m.console.store.list_tasks()
    newest = page.tasks[0]
    check(newest.prompt == new_prompt and newest.restarted_from_id is not None,
          "restarted with the edited prompt")


# --- the journeys, on the console after issue 15 --------------------------------------------

def row(msg: Any, task_id: int) -> str:
    found = re.search(rf"^(\d+)\. \S+ #{task_id} ", msg.text, flags=re.MULTILINE)
    check(found is not None, f"#{task_id} on the list")
    assert found is not None
    return found.group(1)


async def after_open_error(m: Meter, f: Fixture) -> None:
    msg = await m.command("/tasks")
    await m.tap(msg, "🔴 Failed 1h")  # the built-in view "Failed · last hour"
    await m.tap(msg, row(msg, f.failed_id))
    check("❌ cost export missing" in msg.text.split("\n\n")[0], "the error is in the header")


async def after_kill_one(m: Meter, f: Fixture) -> None:
    msg = await m.command("/tasks")
    await m.tap(msg, "🛑 ")
    await m.tap(msg, "🛑 Kill")
    check("Task killed successfully." in [a.text for a in m.console.server.callback_answers],
          "a task was killed")


async def after_kill_cronjob(m: Meter, f: Fixture) -> None:
    msg = await m.command("/tasks")
    await m.tap(msg, "Status:")
    await m.tap(msg, "⚪ Running")
    await m.tap(msg, "Trigger:")
    await m.tap(msg, "Cronjob")
    if any(b[0].startswith("🛑 Kill all") for r in msg.buttons for b in r):
        await m.tap(msg, "🛑 Kill all")
        await m.tap(msg, "🛑 Kill")
    else:
        while any(b[0].startswith("🛑 ") for r in msg.buttons for b in r):
            await m.tap(msg, "🛑 ")
            await m.tap(msg, "🛑 Kill")
    tasks = await m.console.store.tasks_by_ids(f.cron_ids)
    check(all(t.status is TaskStatus.FAILED for t in tasks.values()), "all 30 killed")


async def after_restart_one_word(m: Meter, f: Fixture) -> None:
    msg = await m.command(f"/task {f.failed_id}")
    await m.tap(msg, "🔁 Edit & restart")
    ask = await m.tap(msg, "✏️ Prompt")
    check(f"<pre>{PROMPT}</pre>" in (ask.html or "") or PROMPT in ask.text, "copyable prompt")
    m.client("copy the prompt (tap its block)", 1)
    m.client("paste into the reply (long-press, Paste)", 2)
    m.client("put the cursor after the word", 1)
    new_prompt = PROMPT.replace(*CHANGED_WORD)
    # Two backspaces and the new word's two characters.
    await m.reply(ask, new_prompt, typed=len(CHANGED_WORD[0]) + len(CHANGED_WORD[1]))
    await m.tap(msg, "Save & restart")
    await _check_restarted(m, new_prompt)


async def after_last_page(m: Meter, f: Fixture) -> None:
    msg = await m.command("/tasks")
    pages = int(re.search(r"Page 1 of (\d+)", msg.text).group(1))  # type: ignore[union-attr]
    await m.tap(msg, "⏭")
    check(f"Page {pages} of {pages}" in msg.text, "the last page is shown")


async def after_sort_by_cost(m: Meter, f: Fixture) -> None:
    msg = await m.command("/tasks")
    await m.tap(msg, "↕ ")
    await m.tap(msg, "Est. cost ▼")
    check("sorted by Est. cost ▼" in msg.text, "sorted by cost")


AFTER: dict[str, Journey] = {
    "open a failed task's error": after_open_error,
    "kill one task": after_kill_one,
    "kill all running of one cronjob (30)": after_kill_cronjob,
    "restart with one word of the prompt changed": after_restart_one_word,
    "reach the last page": after_last_page,
    "sort by cost": after_sort_by_cost,
}


# --- running them ----------------------------------------------------------------------------

async def seed(console: Console, tasks: int, seed_value: int) -> Fixture:
    store, clock = console.store, console.clock
    await seed_demo(store, tasks, seed_value, now=NOW - timedelta(hours=2), events_per_task=4)
    clock.set(NOW - timedelta(minutes=30))
    for task in await store.running_tasks():
        if task.status is TaskStatus.RUNNING:
            await store.kill_task(task.id, by="bench")
    cron_ids = []
    for _ in range(30):
        task = await store.create_task(TaskDraft(name="nightly-sync", prompt="!wait 3600",
                                                 trigger=Trigger.CRONJOB))
        await store.start_task(task.id)
        cron_ids.append(task.id)
    for i in range(5):
        task = await store.create_task(TaskDraft(name=f"user job {i}", prompt="!wait 3600"))
        await store.start_task(task.id)
    clock.set(NOW - timedelta(minutes=5))
    failed = await store.create_task(TaskDraft(
        name="Q3 infrastructure report", prompt=PROMPT,
        provider=ProviderChoice("openai", "gpt-4o")))
    await store.start_task(failed.id)
    await store.fail_task(failed.id, "cost export missing from the billing bucket")
    clock.set(NOW)
    return Fixture(failed.id, cron_ids)


async def run_journeys(args: argparse.Namespace, data: Path) -> list[tuple[str, Meter]]:
    journeys = BEFORE if args.ui == "before" else AFTER
    results = []
    for i, (name, journey) in enumerate(journeys.items()):
        # A fresh store per journey: a kill or restart must not change the next journey.
        server = FakeTelegram(token="123456:bench", bot_username="taskops_bot",
                              flood=FloodLimits.off())
        await server.start()
        try:
            (data / f"j{i}").mkdir()
            async with running_console(server, data / f"j{i}") as console:
                fixture = await seed(console, args.tasks, args.seed)
                meter = Meter(console, server.private_chat(console.admin))
                await journey(meter, fixture)
                results.append((name, meter))
        finally:
            await server.stop()
    return results


def phone_lines(text: str, columns: int) -> int:
    return sum(max(1, len(textwrap.wrap(line, columns)) if line else 1)
               for line in text.split("\n"))


async def list_heights(args: argparse.Namespace, data: Path, worst: bool = False,
                       running: bool = False) -> list[tuple[int, int, int, int]]:
    """``worst``: besides the longest names, every row's second line at its longest too
    (a year-old task, 999,999 tokens, a cost over $10, a run of 23h 59m). ``running``:
    every task running, listed under the Running filter (a 🛑 per row and the bulk kill)."""
    out = []
    for size in (5, 8, 10, 20):
        server = FakeTelegram(token="123456:bench", bot_username="taskops_bot",
                              flood=FloodLimits.off())
        await server.start()
        try:
            where = data / f"h{size}{'w' if worst else ''}{'r' if running else ''}"
            where.mkdir()
            async with running_console(server, where,
                                       sections={"ui": {"page_size": size}}) as console:
                store, clock = console.store, console.clock
                clock.set(NOW - (timedelta(days=400) if worst else timedelta(hours=1)))
                for i in range(size * 2):
                    task = await store.create_task(TaskDraft(
                        name=(f"{i:03d} " + "W" * 200)[:200], prompt="!wait 1",
                        trigger=Trigger.CONSOLIDATION,
                        provider=ProviderChoice("openai", "gpt-4-turbo") if worst
                        else ProviderChoice("p" * 100, "m" * 200)))
                    await store.start_task(task.id)
                    if worst:
                        await store.append_event(task.id, EventKind.TEXT, {"text": "x"},
                                                 prompt_tokens=599_999,
                                                 completion_tokens=400_000)
                        clock.advance(23 * 3600 + 59 * 60)
                    if (i % 2 or worst) and not running:
                        await store.fail_task(task.id, "x")
                clock.set(NOW)
                meter = Meter(console, server.private_chat(console.admin))
                msg = await meter.command("/tasks status:running" if running else "/tasks")
                if args.verbose:
                    print(msg.text)
                    print("\n".join(" | ".join(text for text, _ in row)
                                    for row in msg.buttons))
                out.append((size, msg.text.count("\n") + 1, phone_lines(msg.text, args.columns),
                            len(msg.buttons)))
        finally:
            await server.stop()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ui", choices=("before", "after"), default="after")
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--columns", type=int, default=38)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--heights-only", action="store_true",
                        help="only the list's height, no journeys")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"phone journeys: ui={args.ui} tasks={args.tasks} seed={args.seed} "
          f"columns={args.columns}")
    data = Path(tempfile.mkdtemp(prefix="phone-", dir=Path(__file__).parent))
    try:
        for name, meter in [] if args.heights_only else await run_journeys(args, data):
            print(f"  {name:48s} taps {meter.taps:4d}  typed {meter.typed:4d}")
            if args.verbose:
                print("      " + " → ".join(meter.steps))
        print(f"  list height (text lines / lines on a 6\" phone at {args.columns} columns "
              "/ keyboard rows / phone total):")
        for size, lines, wrapped, rows in await list_heights(args, data):
            print(f"    page size {size:2d}: {lines:3d} / {wrapped:3d} / {rows:2d} / "
                  f"{wrapped + rows:3d}")
        print("  the same with every row's second line at its longest:")
        for size, lines, wrapped, rows in await list_heights(args, data, worst=True):
            print(f"    page size {size:2d}: {lines:3d} / {wrapped:3d} / {rows:2d} / "
                  f"{wrapped + rows:3d}")
        print("  every task running, under the Running filter (longest names):")
        for size, lines, wrapped, rows in await list_heights(args, data, running=True):
            print(f"    page size {size:2d}: {lines:3d} / {wrapped:3d} / {rows:2d} / "
                  f"{wrapped + rows:3d}")
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
