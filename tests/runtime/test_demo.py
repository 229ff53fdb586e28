"""The --demo loop: its prompts exercise every ending, and it never floods the store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from taskops.runtime.agent import RunContext
from taskops.runtime.demo import DEMO_TASKS, MAX_RUNNING, run_demo, submit_next
from taskops.runtime.providers import ProviderError, Providers
from taskops.runtime.scripted import ScriptedProvider, parse_steps
from taskops.storage.domain import ListFilters, TaskDraft, TaskStatus
from tests.factories import make_settings
from tests.runtime.conftest import MakeStore, eventually
from tests.runtime.test_scripted_steps import RecordingIO, make_task


async def test_the_demo_prompts_cover_every_ending() -> None:
    endings = []
    for _, _, prompt in DEMO_TASKS:
        assert parse_steps(prompt)
        ctx = RunContext(task=make_task(prompt), answers=(), history=(), tools=(),
                         thinking=False)
        final = await ScriptedProvider().run(ctx, RecordingIO())
        endings.append(final.split("\n")[0])
    assert endings == ["STATUS: completed", "STATUS: failed", "STATUS: question",
                       "STATUS: failed", "STATUS: silent", "STATUS: completed"]


async def test_the_demo_submits_until_enough_tasks_run(make_store: MakeStore) -> None:
    store = await make_store()
    stop = asyncio.Event()
    demo = asyncio.create_task(run_demo(store, stop, interval=0.01))
    running = ListFilters(status=TaskStatus.RUNNING)
    # Until it has submitted enough (a loaded machine may take a while), then some 30
    # intervals more: it must not go past the limit.

    async def enough() -> bool:
        return (await store.list_tasks(running)).total >= MAX_RUNNING

    await eventually(enough)
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(demo, 5)
    page = await store.list_tasks(running, page_size=20)
    assert page.total == MAX_RUNNING
    assert sorted(t.name for t in page.tasks) == sorted(n for n, _, _ in DEMO_TASKS[:4])
    assert all((t.provider, t.used_default) == ("scripted", False) for t in page.tasks)


def test_the_demo_runs_tasks_of_unconfigured_providers_on_scripted(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert isinstance(Providers(settings, fallback="scripted").get("anthropic"),
                      ScriptedProvider)
    with pytest.raises(ProviderError):
        Providers(settings).get("anthropic")


async def test_the_question_waits_while_earlier_ones_are_unanswered(
        make_store: MakeStore) -> None:
    store = await make_store()
    question_name = DEMO_TASKS[2][0]
    for _ in range(2):
        task = await store.create_task(TaskDraft(name=question_name, prompt="p"))
        await store.start_task(task.id)
        await store.finish_task(task.id, "STATUS: question\nSUMMARY:\nWhich?")
    assert await submit_next(store, 2) == 3
    page = await store.list_tasks(ListFilters(status=TaskStatus.RUNNING))
    assert [t.name for t in page.tasks] == [DEMO_TASKS[3][0]]
