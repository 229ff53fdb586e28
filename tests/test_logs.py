"""Logs under a fault: one line per kind of failure per interval, with a count."""

from __future__ import annotations

import asyncio
import gc
import io
import logging
from collections.abc import Iterator

import pytest

from taskops.logs import LostConnectionAtWarning, RedactFilter, RepeatThrottle

SECRET = "123456:very-secret-token"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def out() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def log(out: io.StringIO, clock: Clock) -> Iterator[logging.Logger]:
    target = logging.StreamHandler(out)
    target.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    target.addFilter(RedactFilter([SECRET]))
    throttle = RepeatThrottle(target, interval=60, clock=clock)
    logger = logging.getLogger("taskops.test_logs")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.handlers[:] = [throttle]
    yield logger
    logger.handlers[:] = []
    logger.propagate = True


def fail(log: logging.Logger, update: int, text: str = "database is locked") -> None:
    try:
        raise OSError(text)
    except OSError:
        log.exception("error while handling update %s", update)


def lines(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


def test_the_first_failure_keeps_its_traceback_the_rest_are_counted(
        log: logging.Logger, out: io.StringIO, clock: Clock) -> None:
    for update in range(372):
        clock.now += 0.1
        fail(log, update)
    text = out.getvalue()
    assert text.count("Traceback") == 1
    assert text.count("error while handling update") == 1
    assert "update 0" in text
    clock.now += 60
    log.info("the store answers again")
    summary = [line for line in lines(out) if "×" in line]
    assert summary == ["ERROR taskops.test_logs: error while handling update 371 "
                       "(OSError: database is locked) [×371 in the last 97 s]"]
    assert lines(out)[-1] == "INFO taskops.test_logs: the store answers again"


def test_each_interval_is_one_line_with_its_count(log: logging.Logger, out: io.StringIO,
                                                   clock: Clock) -> None:
    for minute in range(5):
        for update in range(30):
            fail(log, minute * 100 + update)
            clock.now += 2
    clock.now += 60
    for handler in log.handlers:
        handler.flush()  # as logging.shutdown does: writes what is held back
    errors = [line for line in lines(out) if line.startswith("ERROR")]
    assert len(errors) == 1 + 5  # the first as it came, then one per interval
    assert sum(int(line.rsplit("×", 1)[1].split()[0]) for line in errors[1:]) == 149
    assert out.getvalue().count("Traceback") == 1


def test_kinds_are_kept_apart(log: logging.Logger, out: io.StringIO, clock: Clock) -> None:
    for update in range(10):
        fail(log, update)
        log.warning("notifications for chat %s: the task store is unavailable", update)
        try:
            raise ValueError("bad")
        except ValueError:
            log.exception("error while handling update %s", update)
    firsts = [line for line in lines(out) if line.startswith(("ERROR", "WARNING"))]
    assert len(firsts) == 3
    assert out.getvalue().count("Traceback") == 2


def test_info_and_below_are_never_throttled(log: logging.Logger, out: io.StringIO) -> None:
    for i in range(50):
        log.info("task#%d started", i)
    assert len(lines(out)) == 50


def test_a_kind_quiet_for_long_shows_its_traceback_again(
        log: logging.Logger, out: io.StringIO, clock: Clock) -> None:
    fail(log, 1)
    clock.now += 90
    fail(log, 2)  # the next interval: one line, no traceback
    assert out.getvalue().count("Traceback") == 1
    assert lines(out)[-1].endswith("error while handling update 2 (OSError: database is locked)")
    clock.now += 60 * 11
    log.info("tick")  # forgets kinds quiet for ten intervals
    fail(log, 3)
    assert out.getvalue().count("Traceback") == 2


def test_summaries_are_redacted_too(log: logging.Logger, out: io.StringIO,
                                    clock: Clock) -> None:
    for update in range(3):
        fail(log, update, f"cannot reach https://api.example/bot{SECRET}/getMe")
    clock.now += 61
    log.info("tick")
    assert SECRET not in out.getvalue()
    assert "[×2 in the last 61 s]" in out.getvalue()


def test_a_lost_database_connection_left_in_a_future_is_a_warning(
        out: io.StringIO) -> None:
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.addHandler(handler)
    asyncio_log.addFilter(LostConnectionAtWarning())

    async def abandon(error: Exception) -> None:
        asyncio.get_running_loop().create_future().set_exception(error)
        gc.collect()  # the future is gone unretrieved: asyncio logs it now

    try:
        asyncio.run(abandon(ConnectionError("unexpected connection_lost() call")))
        asyncio.run(abandon(ValueError("a bug")))
    finally:
        asyncio_log.removeHandler(handler)
        asyncio_log.filters[:] = [f for f in asyncio_log.filters
                                  if not isinstance(f, LostConnectionAtWarning)]
    heads = [line for line in lines(out) if line.startswith(("WARNING", "ERROR"))]
    assert heads[0].startswith("WARNING asyncio: Future exception was never retrieved")
    assert heads[1].startswith("ERROR asyncio: Future exception was never retrieved")
