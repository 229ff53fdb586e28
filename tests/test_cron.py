"""Schedule validation: cron's grammar, with ranges that must run forwards."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskops.config import ConfigError, load_settings
from taskops.cron import FIELDS, CronError, check_schedule

BOUNDS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


def _spelled(index: int, value: int, named: bool) -> str:
    if named and index == 3:
        return MONTHS[value - 1].upper() if value % 2 else MONTHS[value - 1]
    if named and index == 4 and value < 7:
        return DAYS[value]
    return str(value)


@st.composite
def reversed_range(draw: st.DrawFn) -> tuple[int, str]:
    """A whole expression whose field ``index`` holds a range from high to low."""
    index = draw(st.integers(0, 4))
    lo, hi = BOUNDS[index]
    low = draw(st.integers(lo, hi - 1))
    high = draw(st.integers(low + 1, hi))
    named = draw(st.booleans())
    span = f"{_spelled(index, high, named)}-{_spelled(index, low, named)}"
    part = span + draw(st.sampled_from(["", "/2", "/15"]))
    if draw(st.booleans()):
        part = f"{lo},{part}"
    fields = ["*"] * 5
    fields[index] = part
    return index, " ".join(fields)


@st.composite
def forward_range(draw: st.DrawFn) -> str:
    fields = []
    for lo, hi in BOUNDS:
        low = draw(st.integers(lo, hi))
        high = draw(st.integers(low, hi))
        fields.append(draw(st.sampled_from(["*", f"{low}", f"{low}-{high}",
                                            f"{low}-{high}/{draw(st.integers(1, 5))}"])))
    return " ".join(fields)


@given(reversed_range())
def test_every_reversed_range_is_refused_naming_its_field(case: tuple[int, str]) -> None:
    index, expression = case
    with pytest.raises(CronError, match=f"the {FIELDS[index]} field has a reversed range"):
        check_schedule(expression)


@given(forward_range())
def test_forward_ranges_are_accepted(expression: str) -> None:
    assert check_schedule(expression) == expression


def test_the_message_says_how_to_wrap() -> None:
    with pytest.raises(CronError) as refused:
        check_schedule("30-10 * * * *")
    assert str(refused.value) == (
        "'30-10 * * * *': the minute field has a reversed range '30-10' (ranges must run "
        "from low to high; for one that wraps around the hour, write 30-59,0-10)")


@pytest.mark.parametrize("key", ["[runtime]\nconsolidation_cron", "[[cronjobs]]\nname = \"a\"\n"
                                 "prompt = \"p\"\nschedule"])
def test_the_config_refuses_a_reversed_range(tmp_path: Path, key: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f'{key} = "0 22-6 * * *"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="the hour field has a reversed range '22-6'"):
        load_settings(str(path), env={})
