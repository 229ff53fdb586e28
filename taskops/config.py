"""Settings: one TOML file (plus three environment variables) → frozen, validated dataclasses.

Each section is a frozen dataclass whose fields carry their own validator in the field
metadata, so loading is one generic loop and the rules sit next to the defaults.  Every
bad value becomes a one-line :class:`ConfigError` that names the TOML key, e.g.
``config: [ui] page_size: must be between 1 and 20, got 50``.
"""

# _key() below returns a dataclasses.field(); RUF009 mistakes it for a shared mutable default.
# ruff: noqa: RUF009

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from enum import Enum, StrEnum
from pathlib import Path
from types import MappingProxyType
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


class TelegramMode(StrEnum):
    POLLING = "polling"  #: the bot long-polls getUpdates (one replica)
    WEBHOOK = "webhook"  #: Telegram POSTs updates to webhook_url (several replicas possible)


class TelegramDelivery(StrEnum):
    AUTO = "auto"  #: deliver to the parent chat only when its owner isn't active elsewhere
    ALWAYS = "always"  #: always deliver to the parent chat


class ThinkingLevel(StrEnum):
    OFF = "off"
    MINIMAL = "minimal"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class LoopMethod(StrEnum):
    SYSTEMATIC = "systematic"
    SMART = "smart"
    AUTO = "auto"


class ProviderKind(StrEnum):
    SCRIPTED = "scripted"  #: offline, deterministic steps from the prompt
    OPENAI = "openai"  #: any OpenAI-compatible chat-completions endpoint


# --- validators: each takes the raw TOML value and returns the typed one or raises _Invalid --

Check = Callable[[Any], Any]


class _Invalid(Exception):
    """A value problem, before the caller adds which key it belongs to."""


def _fail(where: str, problem: str) -> NoReturn:
    raise ConfigError(f"config: {where}: {problem}")


def _show(value: object) -> str:
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


def _mask_password(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected a string, got {_show(value)}")
    return value


def _text(max_len: int = 100_000) -> Check:
    def check(value: object) -> str:
        text = _str(value)
        if not text.strip():
            raise _Invalid("must not be empty")
        if len(text) > max_len:
            raise _Invalid(f"must be at most {max_len} characters, got {len(text)}")
        return text

    return check


def _in_range(value: int, lo: int, hi: int | None) -> int:
    if value < lo or (hi is not None and value > hi):
        bounds = f"at least {lo}" if hi is None else f"between {lo} and {hi}"
        raise _Invalid(f"must be {bounds}, got {value}")
    return value


def _int(lo: int, hi: int | None = None) -> Check:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(f"expected an integer, got {_show(value)}")
        return _in_range(value, lo, hi)

    return check


def _float(minimum: float = 0.0, *, strict: bool = True) -> Check:
    def check(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Invalid(f"expected a number, got {_show(value)}")
        if not math.isfinite(value):
            raise _Invalid(f"must be a finite number, got {value}")
        if value < minimum or (strict and value == minimum):
            bound = "greater than" if strict else "at least"
            raise _Invalid(f"must be {bound} {minimum:g}, got {value}")
        return float(value)

    return check


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected true or false, got {_show(value)}")
    return value


def _enum(kind: type[StrEnum]) -> Check:
    def check(value: object) -> StrEnum:
        try:
            return kind(_str(value).lower())
        except ValueError:
            choices = ", ".join(member.value for member in kind)
            raise _Invalid(f"must be one of {choices}, got {_show(value)}") from None

    return check


def _optional(check: Check) -> Check:
    """An optional string setting: absent or "" means None."""
    return lambda value: None if value == "" else check(value)


def _http_url(value: object) -> str:
    url = _str(value)
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # e.g. a port that is not a number
        valid = False
    if not valid:
        raise _Invalid(f"must be an http(s) URL, got {_show(_mask_password(url))}")
    return url


def _timezone(value: object) -> str:
    name = _str(value)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise _Invalid(f"unknown timezone {_show(name)}") from None
    return name


def _cron(value: object) -> str:
    expression = _str(value)
    try:
        return check_schedule(expression)
    except CronError as exc:
        raise _Invalid(str(exc)) from None


def _secret(value: object) -> Secret:
    if not isinstance(value, str):  # never echo the value: it may be a real secret
        raise _Invalid("expected a string")
    if re.search(r"\s", value):
        raise _Invalid("must not contain spaces or line breaks")
    return Secret(value)


def _webhook_secret(value: object) -> Secret:
    secret = _secret(value)
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret.get()):
        raise _Invalid("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
    return secret


def _admin_ids(value: object) -> frozenset[int]:
    items = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(items, list):
        raise _Invalid(f"expected an array of Telegram user ids, got {_show(value)}")
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int) or item <= 0:
            raise _Invalid(f"{_show(item)} is not a Telegram user id")
    return frozenset(items)


def _parse_admin_ids(text: str) -> frozenset[int]:
    """TASKOPS_ADMIN_IDS: comma-separated ids, blanks around them and empty items ignored."""
    pieces = [piece.strip() for piece in text.split(",") if piece.strip()]
    for piece in pieces:
        if not re.fullmatch(r"[0-9]+", piece) or int(piece) == 0:
            raise _Invalid(f"{_show(piece)} is not a Telegram user id")
    return frozenset(int(piece) for piece in pieces)


def _env_name(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        # Never echo it: a common mistake is pasting the key itself here.
        raise _Invalid("must be the name of an environment variable (like OPENAI_API_KEY), "
                       "not the key itself")
    return value


def _models(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _Invalid(f"expected a non-empty array of model names, got {_show(value)}")
    for item in value:
        if not isinstance(item, str) or not item or re.search(r"\s", item):
            raise _Invalid(f"model names are non-empty strings without spaces, got {_show(item)}")
    if len(set(value)) != len(value):
        raise _Invalid(f"duplicate model {_show(next(m for m in value if value.count(m) > 1))}")
    return tuple(value)


_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def _database_url(value: object) -> str:
    text = _str(value)
    shown = _show(_mask_password(text))
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        raise _Invalid(f"not a valid database URL: {shown}") from None
    driver = _DRIVERS.get(url.drivername)
    if driver is None:
        raise _Invalid(f"unsupported database {url.drivername!r} in {shown}; "
                       "use sqlite+aiosqlite:///FILE or postgresql+asyncpg://USER@HOST/DB")
    if driver.startswith("sqlite") and (url.host or url.username or url.port):
        raise _Invalid(f"a sqlite URL takes no host: {shown}; use sqlite+aiosqlite:///relative.db "
                       "or sqlite+aiosqlite:////absolute/path.db")
    return url.set(drivername=driver).render_as_string(hide_password=False)


def _key(check: Check, default: Any = MISSING, **meta: Any) -> Any:
    """A dataclass field that is also a TOML key, validated by ``check``."""
    return field(default=default, metadata={"check": check, **meta})


# --- the settings -------------------------------------------------------------------------


@dataclass(frozen=True)
class TelegramSettings:
    token: Secret | None = _key(_optional(_secret), None)
    admin_ids: frozenset[int] = _key(_admin_ids, frozenset())
    base_url: str = _key(_http_url, "https://api.telegram.org/bot")
    mode: TelegramMode = _key(_enum(TelegramMode), TelegramMode.POLLING)
    webhook_url: str | None = _key(_optional(_http_url), None)
    webhook_listen: str = _key(_text(255), "127.0.0.1")
    webhook_port: int = _key(_int(1, 65535), 8443)
    webhook_secret: Secret | None = _key(_optional(_webhook_secret), None)


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = _key(_database_url, "sqlite+aiosqlite:///taskops.db")
    echo: bool = _key(_bool, False)

    @property
    def safe_url(self) -> str:
        """The URL with its password masked, for logs and messages."""
        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except (ArgumentError, ValueError):
            return _mask_password(self.url)

    def __repr__(self) -> str:
        return f"DatabaseSettings(url={self.safe_url!r}, echo={self.echo!r})"


@dataclass(frozen=True)
class UISettings:
    timezone: str = _key(_timezone, "UTC")
    page_size: int = _key(_int(1, 20), 10)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class TasksSettings:
    default_provider: str | None = _key(_optional(_text(200)), "scripted")
    default_model: str | None = _key(_optional(_text(200)), "scripted")
    max_duration_minutes: int = _key(_int(1), 60)
    max_duration_cap_minutes: int = _key(_int(1, 1440), 1440)
    telegram_delivery: TelegramDelivery = _key(_enum(TelegramDelivery), TelegramDelivery.AUTO)
    thinking_level: ThinkingLevel = _key(_enum(ThinkingLevel), ThinkingLevel.OFF)
    loop_detection: bool = _key(_bool, True)
    loop_method: LoopMethod = _key(_enum(LoopMethod), LoopMethod.SYSTEMATIC)
    loop_threshold: int = _key(_int(1, 20), 3)
    status_updates: bool = _key(_bool, False)
    status_update_minutes: int = _key(_int(1, 120), 10)
    paused_timeout_hours: float = _key(_float(), 24.0)


@dataclass(frozen=True)
class RuntimeSettings:
    concurrency: int = _key(_int(1, 256), 4)
    poll_interval_seconds: float = _key(_float(), 1.0)
    heartbeat_minutes: int | None = _key(_int(1), None)
    heartbeat_prompt: str = _key(
        _text(), "Read HEARTBEAT.md and act on anything that needs attention.")
    consolidation_cron: str | None = _key(_optional(_cron), None)
    consolidation_prompt: str = _key(_text(), "Consolidate memory candidates.")


@dataclass(frozen=True)
class ProviderSettings:
    """One ``[providers.<name>]`` table; ``kind`` defaults to the name's kind in TOML."""

    name: str
    kind: ProviderKind = _key(_enum(ProviderKind))
    base_url: str | None = _key(_http_url, None)
    api_key_env: str | None = _key(_env_name, None)
    models: tuple[str, ...] = _key(_models, ())
    timeout_seconds: float = _key(_float(), 60.0)

    def api_key(self, env: Mapping[str, str] | None = None) -> Secret | None:
        """The API key from the environment variable named by ``api_key_env``."""
        value = (os.environ if env is None else env).get(self.api_key_env or "", "")
        return Secret(value) if value else None


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input_per_million: float = _key(_float(strict=False), key="input")
    output_per_million: float = _key(_float(strict=False), key="output")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_million
                + completion_tokens * self.output_per_million) / 1e6


@dataclass(frozen=True, kw_only=True)
class CronjobSettings:
    name: str = _key(_text(200))
    schedule: str = _key(_cron)
    timezone: str = _key(_timezone, "UTC")
    prompt: str = _key(_text())
    provider: str | None = _key(_optional(_text(200)), None)
    model: str | None = _key(_optional(_text(200)), None)
    enabled: bool = _key(_bool, True)
    max_duration_minutes: int | None = _key(_int(1), None)


@dataclass(frozen=True)
class NotificationSettings:
    stuck_after_minutes: int = _key(_int(1), 15)
    digest_threshold: int = _key(_int(1), 3)
    digest_window_seconds: float = _key(_float(), 10.0)


DEFAULT_PRICES: Mapping[str, Price] = MappingProxyType({
    # USD per million tokens (input, output); [prices] overrides them. First the original
    # platform's built-in table, in full (platform-facts.md, "Cost"), under its own names:
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4-turbo": Price(10.00, 30.00),
    "gpt-3.5-turbo": Price(0.50, 1.50),
    "claude-sonnet-4-20250514": Price(3.00, 15.00),
    "claude-3-5-sonnet-20241022": Price(3.00, 15.00),
    "claude-3-opus-20240229": Price(15.00, 75.00),
    "claude-3-haiku-20240307": Price(0.25, 1.25),
    # then public list prices of later models and of the undated names:
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "o1": Price(15.00, 60.00),
    "o3-mini": Price(1.10, 4.40),
    "o4-mini": Price(1.10, 4.40),
    "claude-opus-4": Price(15.00, 75.00),
    "claude-sonnet-4": Price(3.00, 15.00),
    "claude-3-7-sonnet": Price(3.00, 15.00),
    "claude-3-5-sonnet": Price(3.00, 15.00),
    "claude-3-5-haiku": Price(0.80, 4.00),
    "claude-3-opus": Price(15.00, 75.00),
    "claude-3-haiku": Price(0.25, 1.25),
    "gemini-1.5-pro": Price(1.25, 5.00),
    "gemini-1.5-flash": Price(0.075, 0.30),
    "gemini-2.0-flash": Price(0.10, 0.40),
    # The offline provider is priced so that demo tasks show a plausible cost.
    "scripted": Price(0.50, 1.50),
})

SCRIPTED_PROVIDER = ProviderSettings("scripted", ProviderKind.SCRIPTED, models=("scripted",))

_SECTIONS: dict[str, type] = {
    "telegram": TelegramSettings,
    "database": DatabaseSettings,
    "ui": UISettings,
    "tasks": TasksSettings,
    "runtime": RuntimeSettings,
    "notifications": NotificationSettings,
}


@dataclass(frozen=True)
class Settings:
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    ui: UISettings = field(default_factory=UISettings)
    tasks: TasksSettings = field(default_factory=TasksSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    providers: tuple[ProviderSettings, ...] = (SCRIPTED_PROVIDER,)
    prices: Mapping[str, Price] = field(default_factory=lambda: DEFAULT_PRICES)
    cronjobs: tuple[CronjobSettings, ...] = ()
    source: Path | None = None

    def price_for(self, model: str | None) -> Price | None:
        """The price of ``model``; also tries it without a ``vendor/`` prefix or date suffix."""
        if not model:
            return None
        bare = model.rsplit("/", 1)[-1]
        undated = re.sub(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$", "", bare)
        return next((self.prices[m] for m in (model, bare, undated) if m in self.prices), None)

    def provider(self, name: str) -> ProviderSettings | None:
        return next((p for p in self.providers if p.name == name), None)

    def provider_models(self) -> list[tuple[str, str]]:
        return [(p.name, model) for p in self.providers for model in p.models]

    def describe(self) -> str:
        """The effective settings as TOML, secrets masked (for ``taskops check-config``)."""
        origin = str(self.source) if self.source else "no file, defaults and environment"
        out = [f"# taskops effective configuration ({origin})"]
        for name in _SECTIONS:
            out += ["", f"[{name}]", *_describe_fields(getattr(self, name))]
        for provider in self.providers:
            out += ["", f"[providers.{_toml_key(provider.name)}]", *_describe_fields(provider)]
        out += ["", "[prices]"]
        out += [f"{_toml_key(m)} = {{ input = {p.input_per_million!r}, "
                f"output = {p.output_per_million!r} }}" for m, p in sorted(self.prices.items())]
        for job in self.cronjobs:
            out += ["", "[[cronjobs]]", *_describe_fields(job)]
        return "\n".join(out) + "\n"


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: object) -> str:
    if isinstance(value, Secret):
        return json.dumps(str(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return json.dumps(value.value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, frozenset | tuple):
        items = sorted(value) if isinstance(value, frozenset) else value
        return "[" + ", ".join(_toml_value(v) for v in items) + "]"
    return repr(value)


def _describe_fields(section: object) -> list[str]:
    lines = []
    for key, f in _toml_fields(type(section)).items():
        value = getattr(section, f.name)
        if isinstance(section, DatabaseSettings) and key == "url":
            value = section.safe_url
        lines.append(f"# {key} is not set" if value is None else f"{key} = {_toml_value(value)}")
    return lines


# --- loading ------------------------------------------------------------------------------


def _toml_fields(cls: type) -> dict[str, Field[Any]]:
    return {f.metadata.get("key", f.name): f for f in fields(cls) if "check" in f.metadata}


def _parse(cls: type, table: object, where: str, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """Validate one TOML table against ``cls``'s keys; returns the given values by field name."""
    if not isinstance(table, dict):
        _fail(where, f"expected a table, got {_show(table)}")
    known = _toml_fields(cls)
    values: dict[str, Any] = {}
    for key, raw in table.items():
        if key not in known:
            hint = difflib.get_close_matches(key, known, n=1)
            if key == "api_key":
                hint_text = " (put the key in an environment variable and name it in api_key_env)"
            else:
                hint_text = f" (did you mean {hint[0]!r}?)" if hint else ""
            _fail(f"{where} {key}", f"unknown key{hint_text}")
        try:
            values[known[key].name] = known[key].metadata["check"](raw)
        except _Invalid as problem:
            _fail(f"{where} {key}", str(problem))
    for key, f in known.items():
        if f.default is MISSING and f.name not in values and f.name not in optional:
            _fail(f"{where} {key}", "required")
    return values


def _check_pair(where: str, settings: dict[str, Any], keys: tuple[str, str],
                providers: tuple[ProviderSettings, ...]) -> None:
    """``keys`` name a provider and a model: both or neither, and a configured pair."""
    provider, model = (settings.get(k) for k in keys)
    if (provider is None) != (model is None):
        missing = keys[1] if model is None else keys[0]
        _fail(f"{where} {missing}", f"required when {keys[0] if model is None else keys[1]} is set")
    if provider is None:
        return
    found = next((p for p in providers if p.name == provider), None)
    if found is None:
        names = ", ".join(p.name for p in providers)
        _fail(f"{where} {keys[0]}", f"unknown provider {provider!r} (configured: {names})")
    if model not in found.models:
        _fail(f"{where} {keys[1]}", f"{model!r} is not a model of provider {provider!r} "
                                    f"(configured: {', '.join(found.models)})")


def _check_duration(where: str, minutes: int | None, cap: int) -> None:
    if minutes is not None and minutes > cap:
        _fail(f"{where} max_duration_minutes",
              f"must be between 1 and max_duration_cap_minutes ({cap}), got {minutes}")


def _load_providers(tables: object) -> tuple[ProviderSettings, ...]:
    if not isinstance(tables, dict):
        _fail("[providers]", f"expected tables like [providers.openai], got {_show(tables)}")
    providers = []
    for name, table in tables.items():
        where = f"[providers.{name}]"
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}", name):
            _fail(where, "provider names are 1-32 letters, digits, '.', '_' or '-'")
        values = _parse(ProviderSettings, table, where, optional=("kind",))
        kind = values.setdefault(
            "kind", ProviderKind.SCRIPTED if name == "scripted" else ProviderKind.OPENAI)
        if kind is ProviderKind.SCRIPTED:
            values.setdefault("models", ("scripted",))
        for key in ("base_url", "models") if kind is ProviderKind.OPENAI else ():
            if not values.get(key):
                _fail(f"{where} {key}", "required for an openai provider")
        providers.append(ProviderSettings(name=name, **values))
    if not any(p.name == "scripted" for p in providers):
        providers.append(SCRIPTED_PROVIDER)
    return tuple(providers)


def _load_prices(table: object) -> Mapping[str, Price]:
    if not isinstance(table, dict):
        _fail("[prices]", f"expected a table, got {_show(table)}")
    prices = dict(DEFAULT_PRICES)
    for model, entry in table.items():
        if not isinstance(entry, dict):
            _fail(f"[prices] {model}", f"expected a table like {{input = 2.5, output = 10.0}}, "
                                        f"got {_show(entry)}")
        prices[model] = Price(**_parse(Price, entry, f"[prices] {model}"))
    return MappingProxyType(prices)


def _load_cronjobs(tables: object, providers: tuple[ProviderSettings, ...],
                   cap: int) -> tuple[CronjobSettings, ...]:
    if not isinstance(tables, list):
        _fail("[cronjobs]", f"expected an array of tables [[cronjobs]], got {_show(tables)}")
    jobs: list[CronjobSettings] = []
    for number, table in enumerate(tables, start=1):
        where = f"[[cronjobs]] #{number}"
        values = _parse(CronjobSettings, table, where)
        _check_pair(where, values, ("provider", "model"), providers)
        _check_duration(where, values.get("max_duration_minutes"), cap)
        if any(job.name == values["name"] for job in jobs):
            _fail(f"{where} name", f"duplicate cronjob name {values['name']!r}")
        jobs.append(CronjobSettings(**values))
    return tuple(jobs)


def _from_document(doc: dict[str, Any], source: Path | None) -> Settings:
    for name, value in doc.items():
        if name not in (*_SECTIONS, "providers", "prices", "cronjobs"):
            kind = "unknown section" if isinstance(value, dict | list) else "unknown top-level key"
            _fail(f"[{name}]" if isinstance(value, dict | list) else name, kind)
    sections = {name: _parse(cls, doc.get(name, {}), f"[{name}]")
                for name, cls in _SECTIONS.items()}
    telegram, tasks = sections["telegram"], sections["tasks"]
    if telegram.get("mode") is TelegramMode.WEBHOOK and not telegram.get("webhook_url"):
        _fail("[telegram] webhook_url", "required when mode is \"webhook\"")
    providers = _load_providers(doc.get("providers", {}))
    pair = ("default_provider", "default_model")
    if any(key in tasks for key in pair):  # naming one of the pair drops the other's default
        tasks.update({key: tasks.get(key) for key in pair})
    _check_pair("[tasks]", {key: "scripted" for key in pair} | tasks, pair, providers)
    cap = tasks.get("max_duration_cap_minutes", 1440)
    _check_duration("[tasks]", tasks.get("max_duration_minutes", 60), cap)
    return Settings(
        **{name: cls(**sections[name]) for name, cls in _SECTIONS.items()},
        providers=providers,
        prices=_load_prices(doc.get("prices", {})),
        cronjobs=_load_cronjobs(doc.get("cronjobs", []), providers, cap),
        source=source,
    )


def find_config_path(cli_path: str | None, env: Mapping[str, str]) -> Path | None:
    """``--config``, else ``$TASKOPS_CONFIG``, else ``./config.toml`` if it exists."""
    named = cli_path or env.get("TASKOPS_CONFIG", "").strip()
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            reason = "is a directory" if path.is_dir() else "no such file"
            raise ConfigError(f"config: cannot read {path}: {reason}")
        return path
    default = Path("config.toml")
    return default if default.is_file() else None


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as error:
        raise ConfigError(f"config: cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config: cannot read {path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config: {path}: invalid TOML: {error}") from None


_ENV_OVERRIDES: tuple[tuple[str, Check, str, str], ...] = (
    # variable, validator, section, key; a blank variable counts as unset
    ("TASKOPS_TELEGRAM_TOKEN", _secret, "telegram", "token"),
    ("TASKOPS_ADMIN_IDS", _parse_admin_ids, "telegram", "admin_ids"),
    ("TASKOPS_DATABASE_URL", _database_url, "database", "url"),
)


def _apply_env(settings: Settings, env: Mapping[str, str]) -> Settings:
    for variable, check, section, key in _ENV_OVERRIDES:
        raw = env.get(variable, "").strip()
        if not raw:
            continue
        try:
            value = check(raw)
        except _Invalid as problem:
            _fail(variable, str(problem))
        changed = replace(getattr(settings, section), **{key: value})
        settings = replace(settings, **{section: changed})
    return settings


def load_settings(cli_path: str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Load and validate the settings; raises :class:`ConfigError` (one line) if anything is bad."""
    env = os.environ if env is None else env
    path = find_config_path(cli_path, env)
    doc = _read(path) if path else {}
    return _apply_env(_from_document(doc, path), env)
