"""A faithful fake Telegram Bot API server for tests (see server.py for what it models)."""

from .flood import FloodLimits, ManualClock
from .html import HtmlError, parse_html
from .models import (
    ApiError,
    Call,
    CallbackAnswer,
    Edit,
    FakeChat,
    FakeFile,
    FakeMessage,
    FakeUser,
    Upload,
    Violation,
)
from .server import FAULT_KINDS, FakeTelegram

__all__ = [
    "FAULT_KINDS",
    "ApiError",
    "Call",
    "CallbackAnswer",
    "Edit",
    "FakeChat",
    "FakeFile",
    "FakeMessage",
    "FakeTelegram",
    "FakeUser",
    "FloodLimits",
    "HtmlError",
    "ManualClock",
    "Upload",
    "Violation",
    "parse_html",
]
