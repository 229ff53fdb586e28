"""Value checks for the settings: each takes a raw TOML value and returns the typed one.

A check raises :class:`Invalid` with the problem alone; the loader adds the key, so every
bad value becomes one :class:`ConfigError` line such as
``config: [ui] page_size: must be between 1 and 20, got 50``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import time
from enum import StrEnum
from typing import Any, NoReturn
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from taskops.cron import CronError, check_schedule


class ConfigError(Exception):
    """A bad setting; ``str(error)`` is one line naming the key and the problem."""


class Secret:
    """A secret string that never shows itself in logs, reprs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "********" if self._value else ""

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


Check = Callable[[Any], Any]


class Invalid(Exception):
    """A value problem, before the caller adds which key it belongs to."""


def fail(where: str, problem: str) -> NoReturn:
    raise ConfigError(f"config: {where}: {problem}")


def show(value: object) -> str:
    """A short, one-line rendering of a raw value for an error message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= 60 else text[:56] + "...'"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict | list):
        return "a table" if isinstance(value, dict) else "an array"
    return f"a {type(value).__name__}"


def mask_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def string(value: object) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {show(value)}")
    return value


def text(max_len: int = 100_000) -> Check:
    def check(value: object) -> str:
        given = string(value)
        if not given.strip():
            raise Invalid("must not be empty")
        if len(given) > max_len:
            raise Invalid(f"must be at most {max_len} characters, got {len(given)}")
        return given

    return check


def in_range(value: int, lo: int, hi: int | None) -> int:
    if value < lo or (hi is not None and value > hi):
        bounds = f"at least {lo}" if hi is None else f"between {lo} and {hi}"
        raise Invalid(f"must be {bounds}, got {value}")
    return value


def integer(lo: int, hi: int | None = None) -> Check:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"expected an integer, got {show(value)}")
        return in_range(value, lo, hi)

    return check


def number(minimum: float = 0.0, *, strict: bool = True) -> Check:
    def check(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid(f"expected a number, got {show(value)}")
        if not math.isfinite(value):
            raise Invalid(f"must be a finite number, got {value}")
        if value < minimum or (strict and value == minimum):
            bound = "greater than" if strict else "at least"
            raise Invalid(f"must be {bound} {minimum:g}, got {value}")
        return float(value)

    return check


def boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {show(value)}")
    return value


def one_of(kind: type[StrEnum]) -> Check:
    def check(value: object) -> StrEnum:
        try:
            return kind(string(value).lower())
        except ValueError:
            choices = ", ".join(member.value for member in kind)
            raise Invalid(f"must be one of {choices}, got {show(value)}") from None

    return check


def optional(check: Check) -> Check:
    """An optional string setting: absent or "" means None."""
    return lambda value: None if value == "" else check(value)


def http_url(value: object) -> str:
    url = string(value)
    shown = show(mask_password(url))
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unbalanced [ in the host
        valid = False
    if not valid:
        raise Invalid(f"must be an http(s) URL, got {shown}")
    try:
        port = parts.port
    except ValueError:  # not a number, or over 65535
        port = 0
    if port == 0:
        raise Invalid(f"the port must be a number from 1 to 65535, got {shown}")
    return url


def bot_api_url(value: object) -> str:
    """A Bot API base URL: python-telegram-bot appends the token and the method to it."""
    url = http_url(value)
    parts = urlsplit(url)
    shown = show(mask_password(url))
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise Invalid(f"must have no query or fragment (the bot token is appended), got {shown}")
    if not parts.path.endswith("/bot"):
        raise Invalid("must end in /bot, the path the Bot API serves "
                      f"(e.g. http://127.0.0.1:8081/bot), got {shown}")
    return url


def timezone(value: object) -> str:
    name = string(value)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise Invalid(f"unknown timezone {show(name)}") from None
    return name


def time_of_day(value: object) -> time:
    """A local time "HH:MM" (24-hour)."""
    given = string(value)
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", given.strip())
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise Invalid(f'expected a time "HH:MM" (00:00 to 23:59), got {show(given)}')
    return time(int(match.group(1)), int(match.group(2)))


def cron(value: object) -> str:
    expression = string(value)
    try:
        return check_schedule(expression)
    except CronError as exc:
        raise Invalid(str(exc)) from None


def secret(value: object) -> Secret:
    if not isinstance(value, str):  # never echo the value: it may be a real secret
        raise Invalid("expected a string")
    if re.search(r"\s", value):
        raise Invalid("must not contain spaces or line breaks")
    return Secret(value)


def webhook_secret(value: object) -> Secret:
    checked = secret(value)
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", checked.get()):
        raise Invalid("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
    return checked


def admin_ids(value: object) -> frozenset[int]:
    items = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(items, list):
        raise Invalid(f"expected an array of Telegram user ids, got {show(value)}")
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int) or item <= 0:
            raise Invalid(f"{show(item)} is not a Telegram user id")
    return frozenset(items)


def parse_admin_ids(raw: str) -> frozenset[int]:
    """TASKOPS_ADMIN_IDS: comma-separated ids, blanks around them and empty items ignored."""
    pieces = [piece.strip() for piece in raw.split(",") if piece.strip()]
    for piece in pieces:
        if not re.fullmatch(r"[0-9]+", piece) or int(piece) == 0:
            raise Invalid(f"{show(piece)} is not a Telegram user id")
    return frozenset(int(piece) for piece in pieces)


def env_name(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        # Never echo it: a common mistake is pasting the key itself here.
        raise Invalid("must be the name of an environment variable (like OPENAI_API_KEY), "
                      "not the key itself")
    return value


def models(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise Invalid(f"expected a non-empty array of model names, got {show(value)}")
    for item in value:
        if not isinstance(item, str) or not item or re.search(r"\s", item):
            raise Invalid(f"model names are non-empty strings without spaces, got {show(item)}")
    if len(set(value)) != len(value):
        raise Invalid(f"duplicate model {show(next(m for m in value if value.count(m) > 1))}")
    return tuple(value)


DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def database_url(value: object) -> str:
    # A database URL may hold a password, spelled in ways no mask foresees (%-encoded, an
    # '@' in it, the URL broken around it): its problems are told without echoing it.
    raw = string(value)
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        raise Invalid("not a valid database URL (not shown: it may hold a password); "
                      "expected sqlite+aiosqlite:///FILE or "
                      "postgresql+asyncpg://USER:PASSWORD@HOST/DB with the password "
                      "%-encoded") from None
    driver = DRIVERS.get(url.drivername)
    if driver is None:
        raise Invalid(f"unsupported database {show(url.drivername)}; "
                      "use sqlite+aiosqlite:///FILE or postgresql+asyncpg://USER@HOST/DB")
    if driver.startswith("sqlite") and (url.host or url.username or url.port):
        raise Invalid("a sqlite URL takes no host; use sqlite+aiosqlite:///relative.db "
                      "or sqlite+aiosqlite:////absolute/path.db")
    return url.set(drivername=driver).render_as_string(hide_password=False)
