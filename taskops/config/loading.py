"""Loading: the TOML file and three environment variables → one validated :class:`Settings`.

The file is ``--config``, else ``$TASKOPS_CONFIG``, else ``./config.toml``; each table is
checked key by key against its section (``sections.py``), then the rules that span keys
(a provider with its model, durations under their cap) are checked here.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from taskops.config import checks
from taskops.config.checks import Check, ConfigError, Invalid, fail, show
from taskops.config.sections import (
    DEFAULT_PRICES,
    SCRIPTED_PROVIDER,
    SECTIONS,
    CronjobSettings,
    Price,
    ProviderKind,
    ProviderSettings,
    Settings,
    TelegramMode,
    toml_fields,
)


def _parse(cls: type, table: object, where: str, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """Validate one TOML table against ``cls``'s keys; returns the given values by field name."""
    if not isinstance(table, dict):
        fail(where, f"expected a table, got {show(table)}")
    known = toml_fields(cls)
    values: dict[str, Any] = {}
    for key, raw in table.items():
        if key not in known:
            hint = difflib.get_close_matches(key, known, n=1)
            if key == "api_key":
                hint_text = " (put the key in an environment variable and name it in api_key_env)"
            else:
                hint_text = f" (did you mean {hint[0]!r}?)" if hint else ""
            fail(f"{where} {key}", f"unknown key{hint_text}")
        try:
            values[known[key].name] = known[key].metadata["check"](raw)
        except Invalid as problem:
            fail(f"{where} {key}", str(problem))
    for key, f in known.items():
        if f.default is MISSING and f.name not in values and f.name not in optional:
            fail(f"{where} {key}", "required")
    return values


def _check_pair(where: str, settings: dict[str, Any], keys: tuple[str, str],
                providers: tuple[ProviderSettings, ...]) -> None:
    """``keys`` name a provider and a model: both or neither, and a configured pair."""
    provider, model = (settings.get(k) for k in keys)
    if (provider is None) != (model is None):
        missing = keys[1] if model is None else keys[0]
        fail(f"{where} {missing}", f"required when {keys[0] if model is None else keys[1]} is set")
    if provider is None:
        return
    found = next((p for p in providers if p.name == provider), None)
    if found is None:
        names = ", ".join(p.name for p in providers)
        fail(f"{where} {keys[0]}", f"unknown provider {provider!r} (configured: {names})")
    if model not in found.models:
        fail(f"{where} {keys[1]}", f"{model!r} is not a model of provider {provider!r} "
                                    f"(configured: {', '.join(found.models)})")


def _check_duration(where: str, minutes: int | None, cap: int) -> None:
    if minutes is not None and minutes > cap:
        fail(f"{where} max_duration_minutes",
              f"must be between 1 and max_duration_cap_minutes ({cap}), got {minutes}")


def _load_providers(tables: object) -> tuple[ProviderSettings, ...]:
    if not isinstance(tables, dict):
        fail("[providers]", f"expected tables like [providers.openai], got {show(tables)}")
    providers = []
    for name, table in tables.items():
        where = f"[providers.{name}]"
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}", name):
            fail(where, "provider names are 1-32 letters, digits, '.', '_' or '-'")
        values = _parse(ProviderSettings, table, where, optional=("kind",))
        kind = values.setdefault(
            "kind", ProviderKind.SCRIPTED if name == "scripted" else ProviderKind.OPENAI)
        if kind is ProviderKind.SCRIPTED:
            values.setdefault("models", ("scripted",))
        for key in ("base_url", "models") if kind is ProviderKind.OPENAI else ():
            if not values.get(key):
                fail(f"{where} {key}", "required for an openai provider")
        providers.append(ProviderSettings(name=name, **values))
    if not any(p.name == "scripted" for p in providers):
        providers.append(SCRIPTED_PROVIDER)
    return tuple(providers)


def _load_prices(table: object) -> Mapping[str, Price]:
    if not isinstance(table, dict):
        fail("[prices]", f"expected a table, got {show(table)}")
    prices = dict(DEFAULT_PRICES)
    for model, entry in table.items():
        if not isinstance(entry, dict):
            fail(f"[prices] {model}", f"expected a table like {{input = 2.5, output = 10.0}}, "
                                        f"got {show(entry)}")
        prices[model] = Price(**_parse(Price, entry, f"[prices] {model}"))
    return MappingProxyType(prices)


def _load_cronjobs(tables: object, providers: tuple[ProviderSettings, ...],
                   cap: int) -> tuple[CronjobSettings, ...]:
    if not isinstance(tables, list):
        fail("[cronjobs]", f"expected an array of tables [[cronjobs]], got {show(tables)}")
    jobs: list[CronjobSettings] = []
    for number, table in enumerate(tables, start=1):
        where = f"[[cronjobs]] #{number}"
        values = _parse(CronjobSettings, table, where)
        _check_pair(where, values, ("provider", "model"), providers)
        _check_duration(where, values.get("max_duration_minutes"), cap)
        if any(job.name == values["name"] for job in jobs):
            fail(f"{where} name", f"duplicate cronjob name {values['name']!r}")
        jobs.append(CronjobSettings(**values))
    return tuple(jobs)


#: the Bot API server Telegram runs; any other base_url is a self-hosted one
TELEGRAM_API_HOST = "api.telegram.org"


def _check_webhook_url(telegram: dict[str, Any]) -> None:
    """Telegram's own Bot API posts updates only to https URLs; a self-hosted Bot API server
    (``telegram-bot-api --local``) may post to plain http on a private network."""
    url = telegram.get("webhook_url")
    if not url:
        fail("[telegram] webhook_url", "required when mode is \"webhook\"")
    base = urlsplit(telegram.get("base_url", "https://api.telegram.org/bot")).hostname or ""
    if urlsplit(url).scheme != "https" and base.lower() == TELEGRAM_API_HOST:
        fail("[telegram] webhook_url", "must be an https URL: Telegram's Bot API posts updates "
             "only over https (plain http is allowed only with a self-hosted Bot API server "
             "in [telegram] base_url)")


def _from_document(doc: dict[str, Any], source: Path | None) -> Settings:
    for name, value in doc.items():
        if name not in (*SECTIONS, "providers", "prices", "cronjobs"):
            kind = "unknown section" if isinstance(value, dict | list) else "unknown top-level key"
            fail(f"[{name}]" if isinstance(value, dict | list) else name, kind)
    sections = {name: _parse(cls, doc.get(name, {}), f"[{name}]")
                for name, cls in SECTIONS.items()}
    telegram, tasks = sections["telegram"], sections["tasks"]
    if telegram.get("mode") is TelegramMode.WEBHOOK:
        _check_webhook_url(telegram)
    providers = _load_providers(doc.get("providers", {}))
    pair = ("default_provider", "default_model")
    if any(key in tasks for key in pair):  # naming one of the pair drops the other's default
        tasks.update({key: tasks.get(key) for key in pair})
    _check_pair("[tasks]", {key: "scripted" for key in pair} | tasks, pair, providers)
    cap = tasks.get("max_duration_cap_minutes", 1440)
    _check_duration("[tasks]", tasks.get("max_duration_minutes", 60), cap)
    return Settings(
        **{name: cls(**sections[name]) for name, cls in SECTIONS.items()},
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
    ("TASKOPS_TELEGRAM_TOKEN", checks.secret, "telegram", "token"),
    ("TASKOPS_ADMIN_IDS", checks.parse_admin_ids, "telegram", "admin_ids"),
    ("TASKOPS_DATABASE_URL", checks.database_url, "database", "url"),
)


def _apply_env(settings: Settings, env: Mapping[str, str]) -> Settings:
    for variable, check, section, key in _ENV_OVERRIDES:
        raw = env.get(variable, "").strip()
        if not raw:
            continue
        try:
            value = check(raw)
        except Invalid as problem:
            fail(variable, str(problem))
        changed = replace(getattr(settings, section), **{key: value})
        settings = replace(settings, **{section: changed})
    return settings


def load_settings(cli_path: str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Load and validate the settings; raises :class:`ConfigError` (one line) if anything is bad."""
    env = os.environ if env is None else env
    path = find_config_path(cli_path, env)
    doc = _read(path) if path else {}
    return _apply_env(_from_document(doc, path), env)


#: the password of a database URL however broken the rest is: between the first ':' after
#: the user and the last '@' (a password may hold '@' and ':' when not %-encoded)
_URL_PASSWORD = re.compile(r"^[^:]*:(?://)?[^:@/]*:(?P<password>.*)@[^@]*$", re.DOTALL)


def raw_secret_values(cli_path: str | None = None,
                      env: Mapping[str, str] | None = None) -> list[str]:
    """The secrets a config holds, read without validating it: for redacting the error of
    a config that does not load (``Settings.secret_values`` is for one that does)."""
    env = os.environ if env is None else env
    try:
        path = find_config_path(cli_path, env)
        doc = _read(path) if path else {}
    except ConfigError:
        doc = {}
    def table(name: str) -> dict[str, Any]:
        value = doc.get(name)
        return value if isinstance(value, dict) else {}

    telegram, database, providers = table("telegram"), table("database"), table("providers")
    values = [telegram.get("token"), telegram.get("webhook_secret"),
              env.get("TASKOPS_TELEGRAM_TOKEN", "").strip()]
    for url in (database.get("url"), env.get("TASKOPS_DATABASE_URL", "")):
        if isinstance(url, str) and (match := _URL_PASSWORD.match(url.strip())):
            values.append(match.group("password"))
    for table in providers.values():
        name = table.get("api_key_env") if isinstance(table, dict) else None
        values.append(env.get(name, "") if isinstance(name, str) else None)
        if isinstance(name, str) and len(name) >= 20:  # the key itself pasted as the name
            values.append(name)
    return [v for v in values if isinstance(v, str) and v]
