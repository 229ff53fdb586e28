"""The settings' sections: frozen dataclasses whose fields carry their own check.

Each field of a section is also its TOML key: the check (see ``checks.py``) sits in the
field's metadata next to the default, so loading (``loading.py``) is one generic loop.
"""

# _key() below returns a dataclasses.field(); RUF009 mistakes it for a shared mutable default.
# ruff: noqa: RUF009

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from datetime import time
from enum import Enum, StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from taskops.config import checks
from taskops.config.checks import Check, Secret, mask_password


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


def _key(check: Check, default: Any = MISSING, **meta: Any) -> Any:
    """A dataclass field that is also a TOML key, validated by ``check``."""
    return field(default=default, metadata={"check": check, **meta})


def toml_fields(cls: type) -> dict[str, Field[Any]]:
    """A section's TOML keys, each with its field."""
    return {f.metadata.get("key", f.name): f for f in fields(cls) if "check" in f.metadata}

@dataclass(frozen=True)
class TelegramSettings:
    token: Secret | None = _key(checks.optional(checks.secret), None)
    admin_ids: frozenset[int] = _key(checks.admin_ids, frozenset())
    base_url: str = _key(checks.bot_api_url, "https://api.telegram.org/bot")
    mode: TelegramMode = _key(checks.one_of(TelegramMode), TelegramMode.POLLING)
    webhook_url: str | None = _key(checks.optional(checks.http_url), None)
    webhook_listen: str = _key(checks.text(255), "127.0.0.1")
    webhook_port: int = _key(checks.integer(1, 65535), 8443)
    webhook_secret: Secret | None = _key(checks.optional(checks.webhook_secret), None)


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = _key(checks.database_url, "sqlite+aiosqlite:///taskops.db")
    echo: bool = _key(checks.boolean, False)

    @property
    def safe_url(self) -> str:
        """The URL with its password masked, for logs and messages."""
        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except (ArgumentError, ValueError):
            return mask_password(self.url)

    def __repr__(self) -> str:
        return f"DatabaseSettings(url={self.safe_url!r}, echo={self.echo!r})"


@dataclass(frozen=True)
class UISettings:
    timezone: str = _key(checks.timezone, "UTC")
    page_size: int = _key(checks.integer(1, 20), 8)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class ConsoleSettings:
    #: the most tasks one bulk action (🛑 Kill all / 🔁 Restart all) acts on
    bulk_max: int = _key(checks.integer(1, 500), 50)


@dataclass(frozen=True)
class TasksSettings:
    default_provider: str | None = _key(checks.optional(checks.text(200)), "scripted")
    default_model: str | None = _key(checks.optional(checks.text(200)), "scripted")
    max_duration_minutes: int = _key(checks.integer(1), 60)
    max_duration_cap_minutes: int = _key(checks.integer(1, 1440), 1440)
    telegram_delivery: TelegramDelivery = _key(
        checks.one_of(TelegramDelivery), TelegramDelivery.AUTO)
    thinking_level: ThinkingLevel = _key(checks.one_of(ThinkingLevel), ThinkingLevel.OFF)
    loop_detection: bool = _key(checks.boolean, True)
    loop_method: LoopMethod = _key(checks.one_of(LoopMethod), LoopMethod.SYSTEMATIC)
    loop_threshold: int = _key(checks.integer(1, 20), 3)
    status_updates: bool = _key(checks.boolean, False)
    status_update_minutes: int = _key(checks.integer(1, 120), 10)
    paused_timeout_hours: float = _key(checks.number(), 24.0)


@dataclass(frozen=True)
class RuntimeSettings:
    concurrency: int = _key(checks.integer(1, 256), 4)
    poll_interval_seconds: float = _key(checks.number(), 1.0)
    heartbeat_minutes: int | None = _key(checks.integer(1), None)
    heartbeat_prompt: str = _key(
        checks.text(), "Read HEARTBEAT.md and act on anything that needs attention.")
    consolidation_cron: str | None = _key(checks.optional(checks.cron), None)
    consolidation_prompt: str = _key(checks.text(), "Consolidate memory candidates.")
    #: how long a run waits for an unavailable store before it stops and is taken up
    #: again later from its journal (the task itself never fails for it)
    store_patience_seconds: float = _key(checks.number(), 120.0)
    #: a worker renews its claims every third of this; a worker that stops renewing
    #: (killed, its host gone, cut off from the database) loses its tasks after it, and
    #: another worker takes them up again from their journal
    lease_seconds: float = _key(checks.number(), 30.0)


@dataclass(frozen=True)
class RetentionSettings:
    """What the leader prunes (off by default): running and paused tasks are never
    touched, whatever their age."""

    #: the events (timeline) of tasks created more than this many days ago and ended
    events_days: int | None = _key(checks.integer(1), None)
    #: tasks created more than this many days ago and ended, with their events
    tasks_days: int | None = _key(checks.integer(1), None)
    #: tasks handled per transaction (small: writers never wait long behind a prune)
    batch_size: int = _key(checks.integer(1, 10_000), 200)
    #: how often the leader looks for what to prune
    interval_minutes: float = _key(checks.number(), 10.0)

    @property
    def enabled(self) -> bool:
        return self.events_days is not None or self.tasks_days is not None


@dataclass(frozen=True)
class ProviderSettings:
    """One ``[providers.<name>]`` table; ``kind`` defaults to the name's kind in TOML."""

    name: str
    kind: ProviderKind = _key(checks.one_of(ProviderKind))
    base_url: str | None = _key(checks.http_url, None)
    api_key_env: str | None = _key(checks.env_name, None)
    models: tuple[str, ...] = _key(checks.models, ())
    timeout_seconds: float = _key(checks.number(), 60.0)

    def api_key(self, env: Mapping[str, str] | None = None) -> Secret | None:
        """The API key from the environment variable named by ``api_key_env``."""
        value = (os.environ if env is None else env).get(self.api_key_env or "", "")
        return Secret(value) if value else None


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input_per_million: float = _key(checks.number(strict=False), key="input")
    output_per_million: float = _key(checks.number(strict=False), key="output")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_million
                + completion_tokens * self.output_per_million) / 1e6


@dataclass(frozen=True, kw_only=True)
class CronjobSettings:
    name: str = _key(checks.text(200))
    schedule: str = _key(checks.cron)
    timezone: str = _key(checks.timezone, "UTC")
    prompt: str = _key(checks.text())
    provider: str | None = _key(checks.optional(checks.text(200)), None)
    model: str | None = _key(checks.optional(checks.text(200)), None)
    enabled: bool = _key(checks.boolean, True)
    max_duration_minutes: int | None = _key(checks.integer(1), None)


@dataclass(frozen=True)
class NotificationSettings:
    stuck_after_minutes: int = _key(checks.integer(1), 15)
    digest_threshold: int = _key(checks.integer(1), 3)
    digest_window_seconds: float = _key(checks.number(), 10.0)
    #: an alert in a group nobody acked is re-announced once after this long (0: never;
    #: private chats: never)
    escalate_after_minutes: int = _key(checks.integer(0), 15)
    #: when each subscribed chat gets the shift summary, local time in ``[ui] timezone``
    #: (None: never, the default)
    summary_at: time | None = _key(checks.optional(checks.time_of_day), None)


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

@dataclass(frozen=True)
class MonitoringSettings:
    """``GET /healthz`` and ``GET /metrics`` (taskops.monitoring); off unless a port is set."""

    listen: str = _key(checks.text(255), "127.0.0.1")
    port: int | None = _key(checks.integer(1, 65535), None)


SECTIONS: dict[str, type] = {
    "telegram": TelegramSettings,
    "database": DatabaseSettings,
    "ui": UISettings,
    "console": ConsoleSettings,
    "tasks": TasksSettings,
    "runtime": RuntimeSettings,
    "notifications": NotificationSettings,
    "retention": RetentionSettings,
    "monitoring": MonitoringSettings,
}


@dataclass(frozen=True)
class Settings:
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    ui: UISettings = field(default_factory=UISettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    tasks: TasksSettings = field(default_factory=TasksSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
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

    def secret_values(self, env: Mapping[str, str] | None = None) -> list[str]:
        """Every configured secret, for the redaction helper (taskops.redaction): the bot
        token, the webhook secret, the database password and each provider's API key."""
        return [value for _, value in self.named_secrets(env)]

    def named_secrets(self, env: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
        """(what it is, value) of every configured secret."""
        named = [(what, s.get()) for what, s in (("[telegram] token", self.telegram.token),
                                                 ("[telegram] webhook_secret",
                                                  self.telegram.webhook_secret)) if s]
        try:
            password = make_url(self.database.url).password
        except (ArgumentError, ValueError):
            password = None
        if password:
            named.append(("the [database] url's password", str(password)))
        named += [(f"provider {p.name}'s API key", key.get()) for p in self.providers
                  if (key := p.api_key(env)) is not None]
        return named

    def missing_for_run(self) -> list[str]:
        """What ``taskops run`` needs and these settings lack, one line each; [] when ready."""
        telegram = self.telegram
        missing = []
        if not telegram.token:
            missing.append("no Telegram bot token: set TASKOPS_TELEGRAM_TOKEN "
                           "(or [telegram] token in the config file)")
        if not telegram.admin_ids:
            missing.append("no admins: set TASKOPS_ADMIN_IDS to the Telegram user ids "
                           "allowed to use the console (or [telegram] admin_ids)")
        if telegram.mode is TelegramMode.WEBHOOK and not telegram.webhook_secret:
            # Without it anyone who learns the webhook URL can post updates as an admin.
            missing.append("no webhook secret: set [telegram] webhook_secret, which Telegram "
                           "sends with every update, when mode is \"webhook\"")
        return missing

    def describe(self) -> str:
        """The effective settings as TOML, secrets masked (for ``taskops check-config``)."""
        origin = str(self.source) if self.source else "no file, defaults and environment"
        out = [f"# taskops effective configuration ({origin})"]
        for name in SECTIONS:
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
    for key, f in toml_fields(type(section)).items():
        value = getattr(section, f.name)
        if isinstance(section, DatabaseSettings) and key == "url":
            value = section.safe_url
        lines.append(f"# {key} is not set" if value is None else f"{key} = {_toml_value(value)}")
    return lines
