"""Kill -9 the worker process at random moments: runs are taken up again from their
journal, and no side effect happens twice (a few seeds here; bench/resume.py runs
hundreds of kill points)."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskops.storage.db import utcnow
from tests.runtime.conftest import MakeStore
from tests.runtime.crash_harness import crash_run


@pytest.mark.parametrize("seed", [11, 12])
async def test_killed_workers_resume_without_repeating_side_effects(
        make_store: MakeStore, tmp_path: Path, seed: int) -> None:
    # The worker process keeps real time, and so must this store.
    store = await make_store(clock_=utcnow)
    findings = await crash_run(store, tmp_path, tasks=4, steps=10, kills=3, seed=seed,
                               alive=(0.0, 1.0), timeout=60)
    assert findings.problems == []
    assert findings.kills >= 2
    assert findings.kill_points > 0
    assert findings.resumes >= len(findings.cut)
