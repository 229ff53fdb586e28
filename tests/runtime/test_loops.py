"""Loop detection over the whole input class: errors that differ only in volatile parts are
one loop; genuinely different errors are not."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskops.config import LoopMethod, TasksSettings
from taskops.runtime.loops import LoopDetected, LoopDetector, normalize

#: errors a tool really gives; each {} is a slot for a volatile value
TEMPLATES = [
    "HTTP 503 Service Unavailable (request id: {id}) at {time}",
    "HTTP 500 Internal Server Error; trace_id={hex} after {duration}",
    "HTTP 404 Not Found: /api/v2/items ({uuid})",
    "permission denied for table orders [{time}]",
    "timeout after {duration} waiting for lock {hex}",
    "connection refused (attempt at {time}, {req})",
    "invalid argument 'limit': must be at most 100 (job {uuid})",
    "file not found: config.yaml, checked at {time} in {duration}",
    "rate limited: retry in {duration} (x-request-id {id})",
    "disk full on /var/lib/data ({number} bytes free) at {time}",
]

ALNUM = string.ascii_letters + string.digits
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),  # noqa: DTZ001
                     timezones=st.just(UTC))


def _iso(at: datetime, style: int) -> str:
    return [at.isoformat(), at.strftime("%Y-%m-%d %H:%M:%S"), at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            at.strftime("%a, %d %b %Y %H:%M:%S GMT"), at.strftime("%H:%M:%S"),
            at.isoformat(timespec="milliseconds")][style]


volatile: dict[str, st.SearchStrategy[str]] = {
    "time": st.builds(_iso, times, st.integers(0, 5)),
    "uuid": st.uuids().map(str),
    "hex": st.binary(min_size=4, max_size=20).map(bytes.hex),
    "id": st.text(ALNUM, min_size=6, max_size=24),
    "req": st.text(ALNUM, min_size=6, max_size=20).map(lambda s: f"req_{s}"),
    "duration": st.one_of(
        st.integers(0, 10**6).map(lambda n: f"{n}ms"),
        st.floats(0, 10**4, allow_nan=False).map(lambda x: f"{x:.2f}s"),
        st.integers(1, 600).map(lambda n: f"{n} seconds"),
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=5)).map(
            lambda d: f"{d.total_seconds() / 60:.1f} min")),
    "number": st.integers(1000, 10**12).map(str),
}


@st.composite
def filled(draw: st.DrawFn, template: str) -> str:
    return template.format(**{slot: draw(strategy) for slot, strategy in volatile.items()})


def detector(method: LoopMethod, threshold: int) -> LoopDetector:
    return LoopDetector(TasksSettings(loop_method=method, loop_threshold=threshold))


def calls_until_detected(method: LoopMethod, threshold: int,
                         calls: list[tuple[dict[str, Any], str]]) -> int | None:
    watch = detector(method, threshold)
    for number, (arguments, error) in enumerate(calls, start=1):
        try:
            watch.observe("fetch", arguments, True, error)
        except LoopDetected:
            return number
    return None


@given(st.sampled_from(TEMPLATES), st.integers(2, 6), st.data())
def test_errors_that_differ_only_in_volatile_parts_are_one_loop(template: str, threshold: int,
                                                               data: st.DataObject) -> None:
    errors = [data.draw(filled(template)) for _ in range(threshold)]
    assert len({normalize(e) for e in errors}) == 1, errors
    for method in LoopMethod:
        assert calls_until_detected(method, threshold, [({"q": 1}, e) for e in errors]) \
            == threshold


@given(st.lists(st.sampled_from(range(len(TEMPLATES))), min_size=2, max_size=12),
       st.integers(2, 6), st.data())
def test_genuinely_different_errors_are_not_a_loop(picks: list[int], threshold: int,
                                                  data: st.DataObject) -> None:
    # Consecutive calls fail with different errors: never the same error twice in a row.
    errors = [data.draw(filled(TEMPLATES[p])) for i, p in enumerate(picks)
              if i == 0 or p != picks[i - 1]]
    for method in LoopMethod:
        assert calls_until_detected(method, threshold, [({"q": 1}, e) for e in errors]) is None


@given(st.sampled_from(TEMPLATES), st.data())
def test_the_templates_stay_apart_after_normalising(template: str,
                                                    data: st.DataObject) -> None:
    mine = normalize(data.draw(filled(template)))
    for other in TEMPLATES:
        if other != template:
            assert normalize(data.draw(filled(other))) != mine


@given(st.sampled_from(TEMPLATES), st.data())
def test_normalising_is_idempotent(template: str, data: st.DataObject) -> None:
    once = normalize(data.draw(filled(template)))
    assert normalize(once) == once


@pytest.mark.parametrize(("first", "second"), [
    ("HTTP 404 Not Found", "HTTP 500 Not Found"),
    ("no such table: users", "no such table: orders"),
    ("line 12: syntax error", "line 13: syntax error"),
    ("quota exceeded for project alpha", "quota exceeded for project beta"),
])
def test_short_numbers_and_words_are_kept(first: str, second: str) -> None:
    assert normalize(first) != normalize(second)


def test_systematic_needs_the_same_arguments_and_smart_does_not() -> None:
    calls = [({"q": n}, "HTTP 503 at 12:00:0" + str(n)) for n in range(3)]
    assert calls_until_detected(LoopMethod.SYSTEMATIC, 3, calls) is None
    assert calls_until_detected(LoopMethod.SMART, 3, calls) == 3
    assert calls_until_detected(LoopMethod.AUTO, 3, calls) == 3


@given(st.integers(2, 6), times, times)
def test_arguments_that_differ_only_in_a_timestamp_repeat(threshold: int, a: datetime,
                                                          b: datetime) -> None:
    calls = [({"since": (a if n % 2 else b).isoformat()}, "HTTP 503") for n in range(threshold)]
    assert calls_until_detected(LoopMethod.SYSTEMATIC, threshold, calls) == threshold


def test_a_success_starts_the_count_again() -> None:
    watch = detector(LoopMethod.SYSTEMATIC, 2)
    watch.observe("fetch", {}, True, "HTTP 503")
    watch.observe("fetch", {}, False)
    watch.observe("fetch", {}, True, "HTTP 503")
    with pytest.raises(LoopDetected, match=r"Loop detected \(systematic\)"):
        watch.observe("fetch", {}, True, "HTTP 503")


@pytest.mark.parametrize(("first", "second"), [
    ("error at Mon Dec  2 13:05:01 2026", "error at Tue Dec  3 00:00:04 2026"),
    ("Dec  2 23:59:59 db1 refused", "Dec  3 00:00:02 db1 refused"),
    ("HTTP 503 at 02/12/2026 13:05", "HTTP 503 at 03/12/2026 09:11"),
    ("Error code: 429. Request ID: 8f3a2c1e-1111-2222-3333-444455556666",
     "Error code: 429. Request ID: 0b9e77aa-9999-4444-8888-121212121212"),
    ("x-amzn-RequestId: Ab12Cd9", "x-amzn-RequestId: Zz98Qq1"),
    ("Cloudflare Ray ID: 7d3f2a1b9c0e4f5a", "Cloudflare Ray ID: 81c0aa03e5d2b7f9"),
    ("ts=1733140000123 failed", "ts=1733140004567 failed"),
])
def test_common_log_shapes_differing_only_in_volatile_parts_are_equal(first: str,
                                                                      second: str) -> None:
    assert normalize(first) == normalize(second)
