"""Logging set-up: operator-readable lines, secrets never reach a log, and a fault that
repeats is one line per interval, not one per update.

Two separate concerns, two classes: :class:`RedactFilter` (what a line may contain) sits
on the output handler; :class:`RepeatThrottle` (how often a kind of line is written)
wraps it, so every line it lets through or sums up is still redacted.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from taskops import redaction


class RedactFilter(logging.Filter):
    """Redacts every configured secret (taskops.redaction) from a record: its message,
    its traceback and its stack, whichever logger wrote it (httpx logs every request URL,
    and Bot API URLs contain the token).

    ``secrets`` are added to the process's redactor, which the filter uses; so a secret
    installed later (a store opened with another config) is redacted too.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.redactor = redaction.install(secrets)

    def redact(self, text: str) -> str:
        return self.redactor.redact(text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        return True


@dataclass
class _Repeats:
    #: when the current interval of this kind began (the clock of the throttle)
    window_start: float
    #: records of this kind left out in the current interval, and the last of them
    count: int = 0
    last: logging.LogRecord | None = None


class RepeatThrottle(logging.Handler):
    """Passes records on to ``target``, each kind of warning or error at most once per
    ``interval`` seconds; the ones left out are counted.

    The first record of a kind goes out as it is, traceback and all. Later ones within the
    interval are held back; once the interval is over, one line says how many there were
    ("… [×372 in the last 60 s]", the last one's message, no traceback). A kind that has
    been quiet for ``forget_after`` intervals starts afresh (its traceback is shown again).

    A kind is the logger, the level, the message's format string (not its arguments: one
    per update would otherwise make every line a kind of its own) and the exception's type.
    Held-back counts are written when the next record of any kind passes, or when logging
    shuts down — an idle process has nothing to write them for.
    """

    def __init__(self, target: logging.Handler, interval: float = 60.0, *,
                 level: int = logging.WARNING, forget_after: int = 10,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.target = target
        self.interval = interval
        self.threshold = level
        self.forget_after = forget_after
        self.clock = clock
        self._kinds: dict[tuple[object, ...], _Repeats] = {}
        self._kinds_lock = threading.Lock()

    @staticmethod
    def kind(record: logging.LogRecord) -> tuple[object, ...]:
        error = record.exc_info[1] if record.exc_info else None
        return (record.name, record.levelno, str(record.msg),
                type(error).__qualname__ if error is not None else None)

    def emit(self, record: logging.LogRecord) -> None:
        now = self.clock()
        for summary in self._due(now):
            self.target.handle(summary)
        if record.levelno < self.threshold:
            self.target.handle(record)
            return
        key = self.kind(record)
        with self._kinds_lock:
            repeats = self._kinds.get(key)
            if repeats is None:
                self._kinds[key] = _Repeats(now)
            elif now - repeats.window_start < self.interval:
                repeats.count += 1
                repeats.last = record
                return
            else:  # an interval that saw nothing else: this one opens the next, briefly
                repeats.window_start = now
                record = _brief(record)
        self.target.handle(record)

    def _due(self, now: float, *, all_of_them: bool = False) -> list[logging.LogRecord]:
        """Summaries of the intervals that have ended; kinds quiet for long are forgotten."""
        summaries = []
        with self._kinds_lock:
            for key, repeats in list(self._kinds.items()):
                elapsed = now - repeats.window_start
                if elapsed < self.interval and not all_of_them:
                    continue
                if repeats.last is not None:
                    summary = _brief(repeats.last)
                    span = max(1, round(elapsed))
                    summary.msg = f"{summary.msg} [×{repeats.count} in the last {span} s]"
                    summaries.append(summary)
                    repeats.window_start, repeats.count, repeats.last = now, 0, None
                elif elapsed >= self.interval * self.forget_after:
                    del self._kinds[key]
        return summaries

    def flush(self) -> None:
        for summary in self._due(self.clock(), all_of_them=True):
            self.target.handle(summary)
        self.target.flush()

    def close(self) -> None:
        self.flush()
        super().close()


def _brief(record: logging.LogRecord) -> logging.LogRecord:
    """The record as one line: its message, and its exception's type and first line
    instead of the traceback."""
    brief = logging.makeLogRecord(record.__dict__)
    message = brief.getMessage()
    error = brief.exc_info[1] if brief.exc_info else None
    if error is not None:
        first = str(error).split("\n", 1)[0]
        message += f" ({type(error).__name__}{': ' + first if first else ''})"
    brief.msg, brief.args = message, None
    brief.exc_info, brief.exc_text, brief.stack_info = None, None, None
    return brief


def setup_logging(secrets: Iterable[str] = (), level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [RepeatThrottle(handler)]
    root.setLevel(level)
    # Warnings (a library's, with whatever they quote) go through the same redaction.
    logging.captureWarnings(True)
    # One line per HTTP request is noise at INFO (and polling makes one every few seconds).
    for noisy in ("httpx", "httpcore", "apscheduler", "telegram.ext.ExtBot", "alembic",
                  "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    asyncio_log = logging.getLogger("asyncio")
    if not any(isinstance(f, LostConnectionAtWarning) for f in asyncio_log.filters):
        asyncio_log.addFilter(LostConnectionAtWarning())


class LostConnectionAtWarning(logging.Filter):
    """A database connection cut under a driver's feet (the server restarted, the session
    was terminated) can leave a future nobody awaits (asyncpg: "unexpected connection_lost()
    call"); asyncio logs it as an ERROR. The store already saw the fault and retries, so
    it is a warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ConnectionError) and record.levelno >= logging.ERROR \
                and str(record.msg).startswith("Future exception was never retrieved"):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class _TelegramAtDebug(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("telegram"):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


@contextmanager
def telegram_logs_at_debug() -> Iterator[None]:
    """Within the block python-telegram-bot's records (some with a traceback) go out at DEBUG.

    For the start-up, whose failure the caller reports in one line of its own.
    """
    handlers = list(logging.getLogger().handlers)
    at_debug = _TelegramAtDebug()
    for handler in handlers:
        handler.addFilter(at_debug)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(at_debug)
