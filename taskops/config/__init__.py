"""Settings: one TOML file (plus three environment variables) → frozen, validated dataclasses.

- ``checks.py``: the value checks, :class:`ConfigError` and :class:`Secret`;
- ``sections.py``: one frozen dataclass per TOML section, each field with its check, and
  :class:`Settings`, which holds them all;
- ``loading.py``: reading the file and the environment into :class:`Settings`.

Every bad value becomes a one-line :class:`ConfigError` that names the TOML key, e.g.
``config: [ui] page_size: must be between 1 and 20, got 50``.
"""

from taskops.config.checks import ConfigError, Secret
from taskops.config.loading import find_config_path, load_settings, raw_secret_values
from taskops.config.sections import (
    DEFAULT_PRICES,
    SCRIPTED_PROVIDER,
    CronjobSettings,
    DatabaseSettings,
    LoopMethod,
    MonitoringSettings,
    NotificationSettings,
    Price,
    ProviderKind,
    ProviderSettings,
    RetentionSettings,
    RuntimeSettings,
    Settings,
    TasksSettings,
    TelegramDelivery,
    TelegramMode,
    TelegramSettings,
    ThinkingLevel,
    UISettings,
)

__all__ = [
    "DEFAULT_PRICES",
    "SCRIPTED_PROVIDER",
    "ConfigError",
    "CronjobSettings",
    "DatabaseSettings",
    "LoopMethod",
    "MonitoringSettings",
    "NotificationSettings",
    "Price",
    "ProviderKind",
    "ProviderSettings",
    "RetentionSettings",
    "RuntimeSettings",
    "Secret",
    "Settings",
    "TasksSettings",
    "TelegramDelivery",
    "TelegramMode",
    "TelegramSettings",
    "ThinkingLevel",
    "UISettings",
    "find_config_path",
    "load_settings",
    "raw_secret_values",
]
