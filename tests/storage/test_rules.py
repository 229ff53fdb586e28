"""The platform's rules over their whole input class: durations, deadlines, the injection."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from taskops.storage.domain import FinalMessage, ResultStatus, Trigger
from taskops.storage.rules import (
    deadline,
    injection_payload,
    past_deadline,
    whole_minutes,
)

START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
seconds = st.floats(min_value=0, max_value=10 * 24 * 3600, allow_nan=False)


@given(seconds)
def test_whole_minutes_round_to_the_nearest_minute(value: float) -> None:
    minutes = whole_minutes(value)
    assert isinstance(minutes, int)
    assert abs(minutes * 60 - value) <= 30
    assert minutes == int(value // 60) + (1 if value % 60 >= 30 else 0)


@given(seconds, st.sampled_from(list(ResultStatus)), st.integers(0, 10**9))
def test_the_injection_carries_whole_minutes(run: float, result: ResultStatus,
                                             tokens: int) -> None:
    payload = injection_payload(
        task_id=7, task_name="n", trigger=Trigger.CRONJOB, parent_session="telegram:1",
        final=FinalMessage(result, "s", formatted=True), started_at=START,
        at=START + timedelta(seconds=run), tokens_used=tokens)
    if result is ResultStatus.SILENT:
        assert payload is None
        return
    assert payload is not None
    found = re.search(r' duration_minutes="([^"]*)"', payload["text"])
    assert found is not None
    assert found.group(1) == str(whole_minutes(run))


@given(st.integers(1, 1440), seconds)
def test_the_deadline_is_wall_clock_from_the_start(max_minutes: int, after: float) -> None:
    now = START + timedelta(seconds=after)
    assert deadline(START, max_minutes) == START + timedelta(minutes=max_minutes)
    assert past_deadline(START, max_minutes, now) == (after >= max_minutes * 60)
    assert not past_deadline(None, max_minutes, now)
