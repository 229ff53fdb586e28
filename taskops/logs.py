"""Logging set-up: operator-readable lines, and secrets never reach a log."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable


class RedactFilter(logging.Filter):
    """Replaces each secret (bot token, API keys, DB password) with ``***`` in records.

    httpx logs every request URL, and Bot API URLs contain the token.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        redacted = message
        for secret in self.secrets:
            redacted = redacted.replace(secret, "***")
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            for secret in self.secrets:
                text = text.replace(secret, "***")
            record.exc_text = text
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
    for noisy in ("httpx", "httpcore", "apscheduler", "telegram.ext.ExtBot", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
