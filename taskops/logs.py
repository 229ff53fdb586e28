"""Logging set-up: operator-readable lines, and secrets never reach a log."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


class RedactFilter(logging.Filter):
    """Replaces each secret (bot token, API keys, DB password) with ``***`` in records.

    httpx logs every request URL, and Bot API URLs contain the token.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        redacted = self.redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def setup_logging(secrets: Iterable[str] = (), level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # One line per HTTP request is noise at INFO (and polling makes one every few seconds).
    for noisy in ("httpx", "httpcore", "apscheduler", "telegram.ext.ExtBot", "alembic",
                  "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


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
