"""Tests for taskops.config: defaults, file + environment precedence, one-line errors."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskops.config import (
    DEFAULT_PRICES,
    ConfigError,
    CronjobSettings,
    LoopMethod,
    Price,
    ProviderKind,
    Secret,
    Settings,
    TelegramMode,
    ThinkingLevel,
    find_config_path,
    load_settings,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config.example.toml"

OPENAI = """
[providers.openai]
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"
models = ["gpt-4o", "gpt-4o-mini"]
"""


@pytest.fixture(autouse=True)
def _empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each test where no ./config.toml exists unless the test writes one."""
    monkeypatch.chdir(tmp_path)


def load_text(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "taskops.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(str(path), env or {})


def config_error(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text, env)
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- defaults and where the file comes from -------------------------------------------


def test_defaults_without_a_file() -> None:
    settings = load_settings(None, {})

    assert settings == Settings()
    assert settings.source is None
    assert settings.telegram.token is None
    assert settings.telegram.admin_ids == frozenset()
    assert settings.telegram.base_url == "https://api.telegram.org/bot"
    assert settings.telegram.mode is TelegramMode.POLLING
    assert settings.database.url == "sqlite+aiosqlite:///taskops.db"
    assert settings.ui.timezone == "UTC"
    assert settings.ui.page_size == 8
    assert settings.tasks.default_provider == "scripted"
    assert settings.tasks.default_model == "scripted"
    assert settings.tasks.max_duration_minutes == 60
    assert settings.tasks.max_duration_cap_minutes == 1440
    assert settings.tasks.thinking_level is ThinkingLevel.OFF
    assert settings.tasks.loop_method is LoopMethod.SYSTEMATIC
    assert settings.tasks.loop_threshold == 3
    assert settings.tasks.paused_timeout_hours == 24
    assert settings.runtime.heartbeat_minutes is None
    assert settings.runtime.consolidation_cron is None
    assert settings.notifications.stuck_after_minutes == 15
    assert settings.notifications.summary_at is None  # no shift summary unless asked
    assert [p.name for p in settings.providers] == ["scripted"]
    assert settings.provider_models() == [("scripted", "scripted")]
    assert settings.cronjobs == ()


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.ui.page_size = 5  # type: ignore[misc]


def test_ui_tz_is_a_zoneinfo(tmp_path: Path) -> None:
    settings = load_text(tmp_path, '[ui]\ntimezone = "Europe/Berlin"\n')
    assert settings.ui.tz == ZoneInfo("Europe/Berlin")


def test_config_toml_in_the_working_directory_is_found(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[ui]\npage_size = 7\n")
    settings = load_settings(None, {})
    assert settings.ui.page_size == 7
    assert settings.source == Path("config.toml")


def test_taskops_config_beats_config_toml_and_cli_beats_both(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[ui]\npage_size = 1\n")
    (tmp_path / "env.toml").write_text("[ui]\npage_size = 2\n")
    (tmp_path / "cli.toml").write_text("[ui]\npage_size = 3\n")
    env = {"TASKOPS_CONFIG": str(tmp_path / "env.toml")}

    assert load_settings(None, env).ui.page_size == 2
    assert load_settings(str(tmp_path / "cli.toml"), env).ui.page_size == 3
    assert find_config_path(None, {"TASKOPS_CONFIG": "  "}) == Path("config.toml")


def test_no_file_anywhere_means_no_path() -> None:
    assert find_config_path(None, {}) is None


@pytest.mark.parametrize("via", ["cli", "env"])
def test_a_named_file_that_does_not_exist_is_an_error(tmp_path: Path, via: str) -> None:
    missing = str(tmp_path / "nope.toml")
    cli, env = (missing, {}) if via == "cli" else (None, {"TASKOPS_CONFIG": missing})
    with pytest.raises(ConfigError, match=r"^config: cannot read .*nope\.toml: no such file$"):
        load_settings(cli, env)


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^config: cannot read .*: is a directory$"):
        load_settings(str(tmp_path), {})


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_an_unreadable_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "secret.toml"
    path.write_text("")
    path.chmod(0)
    expected = r"^config: cannot read .*secret\.toml: Permission denied"
    with pytest.raises(ConfigError, match=expected):
        load_settings(str(path), {})


def test_a_file_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[ui]\ntimezone = "Zürich"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"^config: cannot read .*latin1\.toml: not UTF-8 text$"):
        load_settings(str(path), {})


def test_invalid_toml_reports_line_and_column(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[ui]\npage_size = 10\ntimezone = "UTC\n')
    assert message.startswith("config: ")
    assert "taskops.toml: invalid TOML: " in message
    assert "(at line 3, column 16)" in message


# --- the environment overrides the file ----------------------------------------------


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    text = """
[telegram]
token = "111:from-file"
admin_ids = [1, 2]
[database]
url = "sqlite+aiosqlite:///file.db"
echo = true
"""
    env = {
        "TASKOPS_TELEGRAM_TOKEN": "222:from-env",
        "TASKOPS_ADMIN_IDS": " 10, 20 ,30",
        "TASKOPS_DATABASE_URL": "postgres://ops:pw@db.internal/taskops",
    }
    settings = load_text(tmp_path, text, env)

    assert settings.telegram.token == Secret("222:from-env")
    assert settings.telegram.admin_ids == frozenset({10, 20, 30})
    assert settings.database.url == "postgresql+asyncpg://ops:pw@db.internal/taskops"
    assert settings.database.echo is True  # untouched by the URL override


def test_file_values_stay_when_the_environment_is_blank(tmp_path: Path) -> None:
    text = '[telegram]\ntoken = "111:from-file"\nadmin_ids = [1]\n'
    env = {"TASKOPS_TELEGRAM_TOKEN": "", "TASKOPS_ADMIN_IDS": "  ", "TASKOPS_DATABASE_URL": ""}
    settings = load_text(tmp_path, text, env)
    assert settings.telegram.token == Secret("111:from-file")
    assert settings.telegram.admin_ids == frozenset({1})


def test_environment_applies_without_a_file() -> None:
    settings = load_settings(None, {"TASKOPS_ADMIN_IDS": "42"})
    assert settings.telegram.admin_ids == frozenset({42})


def test_load_settings_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKOPS_ADMIN_IDS", "7,8")
    monkeypatch.delenv("TASKOPS_CONFIG", raising=False)
    assert load_settings().telegram.admin_ids == frozenset({7, 8})


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("TASKOPS_ADMIN_IDS", "12,x", "config: TASKOPS_ADMIN_IDS: 'x' is not a Telegram user id"),
        ("TASKOPS_ADMIN_IDS", "-5", "config: TASKOPS_ADMIN_IDS: '-5' is not a Telegram user id"),
        ("TASKOPS_ADMIN_IDS", "1.5", "config: TASKOPS_ADMIN_IDS: '1.5' is not a Telegram user id"),
        ("TASKOPS_ADMIN_IDS", "0", "config: TASKOPS_ADMIN_IDS: '0' is not a Telegram user id"),
        ("TASKOPS_TELEGRAM_TOKEN", "12 34",
         "config: TASKOPS_TELEGRAM_TOKEN: must not contain spaces or line breaks"),
        ("TASKOPS_DATABASE_URL", "mysql://root:hunter2@db/x",
         "config: TASKOPS_DATABASE_URL: unsupported database 'mysql'; use "
         "sqlite+aiosqlite:///FILE or postgresql+asyncpg://USER@HOST/DB"),
    ],
)
def test_bad_environment_values(variable: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {variable: value})
    assert str(caught.value) == expected


id_lists = st.lists(st.integers(min_value=1, max_value=2**53), max_size=8)
blanks = st.text(alphabet=" \t", max_size=3)


@given(ids=id_lists, pad=blanks)
def test_admin_ids_from_the_environment_round_trip(ids: list[int], pad: str) -> None:
    text = ",".join(f"{pad}{i}{pad}" for i in ids)
    settings = load_settings(None, {"TASKOPS_ADMIN_IDS": text})
    assert settings.telegram.admin_ids == frozenset(ids)


@given(
    ids=id_lists,
    junk=st.text(min_size=1, max_size=10).filter(
        lambda s: "," not in s
        and s.strip() != ""
        and not re.fullmatch(r"[0-9]*[1-9][0-9]*", s.strip())
        # Longer reprs (a few astral characters) are shortened in the message.
        and len(repr(s.strip())) <= 60
    ),
)
def test_admin_ids_reject_anything_but_positive_integers(ids: list[int], junk: str) -> None:
    text = ",".join([*map(str, ids), junk])
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {"TASKOPS_ADMIN_IDS": text})
    expected = f"config: TASKOPS_ADMIN_IDS: {junk.strip()!r} is not a Telegram user id"
    assert str(caught.value) == expected


# --- every bad value is one line naming the key ----------------------------------------


#: a database URL that does not parse is never echoed: it may hold a password
INVALID_URL = ("not a valid database URL (not shown: it may hold a password); expected "
               "sqlite+aiosqlite:///FILE or postgresql+asyncpg://USER:PASSWORD@HOST/DB with "
               "the password %-encoded")
BAD_VALUES: list[tuple[str, str]] = [
    # wrong types
    ("[ui]\npage_size = true", "config: [ui] page_size: expected an integer, got true"),
    ("[ui]\npage_size = 2.5", "config: [ui] page_size: expected an integer, got 2.5"),
    ('[ui]\npage_size = "10"', "config: [ui] page_size: expected an integer, got '10'"),
    ("[ui]\ntimezone = 3", "config: [ui] timezone: expected a string, got 3"),
    ('[database]\necho = "yes"', "config: [database] echo: expected true or false, got 'yes'"),
    ("[runtime]\npoll_interval_seconds = false",
     "config: [runtime] poll_interval_seconds: expected a number, got false"),
    ("[telegram]\nadmin_ids = [1, true]",
     "config: [telegram] admin_ids: true is not a Telegram user id"),
    ('[telegram]\nadmin_ids = ["me"]',
     "config: [telegram] admin_ids: 'me' is not a Telegram user id"),
    ("[telegram]\nadmin_ids = [-100123]",
     "config: [telegram] admin_ids: -100123 is not a Telegram user id"),
    ('[telegram]\nadmin_ids = "1,2"',
     "config: [telegram] admin_ids: expected an array of Telegram user ids, got '1,2'"),
    ("[ui]\npage_size = [1]", "config: [ui] page_size: expected an integer, got an array"),
    ("[ui]\npage_size = 1979-05-27", "config: [ui] page_size: expected an integer, got a date"),
    ("ui = 3", "config: [ui]: expected a table, got 3"),
    ("page_size = 3", "config: page_size: unknown top-level key"),
    ('[tasks]\nthinking_level = "max"',
     "config: [tasks] thinking_level: must be one of off, minimal, low, medium, high, got 'max'"),
    ('[telegram]\nmode = "push"',
     "config: [telegram] mode: must be one of polling, webhook, got 'push'"),
    # out of range
    ("[ui]\npage_size = 50", "config: [ui] page_size: must be between 1 and 20, got 50"),
    ("[ui]\npage_size = 0", "config: [ui] page_size: must be between 1 and 20, got 0"),
    ("[tasks]\nmax_duration_minutes = -5",
     "config: [tasks] max_duration_minutes: must be at least 1, got -5"),
    ("[tasks]\nmax_duration_cap_minutes = 2000",
     "config: [tasks] max_duration_cap_minutes: must be between 1 and 1440, got 2000"),
    ("[tasks]\nmax_duration_cap_minutes = 30",
     "config: [tasks] max_duration_minutes: must be between 1 and max_duration_cap_minutes (30), "
     "got 60"),
    ("[tasks]\nloop_threshold = 21",
     "config: [tasks] loop_threshold: must be between 1 and 20, got 21"),
    ("[tasks]\nstatus_update_minutes = 121",
     "config: [tasks] status_update_minutes: must be between 1 and 120, got 121"),
    ("[tasks]\npaused_timeout_hours = 0",
     "config: [tasks] paused_timeout_hours: must be greater than 0, got 0"),
    ("[tasks]\npaused_timeout_hours = inf",
     "config: [tasks] paused_timeout_hours: must be a finite number, got inf"),
    ("[runtime]\nconcurrency = 300",
     "config: [runtime] concurrency: must be between 1 and 256, got 300"),
    ("[runtime]\npoll_interval_seconds = -0.5",
     "config: [runtime] poll_interval_seconds: must be greater than 0, got -0.5"),
    ("[runtime]\nheartbeat_minutes = 0",
     "config: [runtime] heartbeat_minutes: must be at least 1, got 0"),
    ("[notifications]\ndigest_window_seconds = -1",
     "config: [notifications] digest_window_seconds: must be greater than 0, got -1"),
    ('[notifications]\nsummary_at = "8am"',
     'config: [notifications] summary_at: expected a time "HH:MM" (00:00 to 23:59), '
     "got '8am'"),
    ('[notifications]\nsummary_at = "24:00"',
     'config: [notifications] summary_at: expected a time "HH:MM" (00:00 to 23:59), '
     "got '24:00'"),
    ("[telegram]\nwebhook_port = 70000",
     "config: [telegram] webhook_port: must be between 1 and 65535, got 70000"),
    ('[prices]\n"gpt-4o" = {input = -1, output = 10}',
     "config: [prices] gpt-4o input: must be at least 0, got -1"),
    # bad strings
    ('[ui]\ntimezone = "Mars/Base"', "config: [ui] timezone: unknown timezone 'Mars/Base'"),
    ('[ui]\ntimezone = "America"', "config: [ui] timezone: unknown timezone 'America'"),
    ('[ui]\ntimezone = "../../etc/passwd"',
     "config: [ui] timezone: unknown timezone '../../etc/passwd'"),
    ('[telegram]\nbase_url = "api.telegram.org"',
     "config: [telegram] base_url: must be an http(s) URL, got 'api.telegram.org'"),
    ('[telegram]\nbase_url = "ftp://x/bot"',
     "config: [telegram] base_url: must be an http(s) URL, got 'ftp://x/bot'"),
    ('[telegram]\nmode = "webhook"',
     'config: [telegram] webhook_url: required when mode is "webhook"'),
    ('[telegram]\nwebhook_secret = "no spaces please"',
     "config: [telegram] webhook_secret: must not contain spaces or line breaks"),
    ('[telegram]\nwebhook_secret = "semi;colon"',
     "config: [telegram] webhook_secret: must be 1-256 characters of A-Z, a-z, 0-9, _ and -"),
    ("[telegram]\ntoken = 123", "config: [telegram] token: expected a string"),
    ('[runtime]\nconsolidation_cron = "0 3 * *"',
     "config: [runtime] consolidation_cron: must be a 5-field cron expression "
     "(minute hour day month weekday), got '0 3 * *'"),
    ('[runtime]\nheartbeat_prompt = "  "', "config: [runtime] heartbeat_prompt: must not be empty"),
    # database URLs
    ('[database]\nurl = "nonsense"',
     "config: [database] url: " + INVALID_URL),
    ('[database]\nurl = "postgresql://u:s3cret@h:port/db"',
     "config: [database] url: " + INVALID_URL),
    ('[database]\nurl = "postgresql+psycopg2://u:s3cret@h/db"',
     "config: [database] url: unsupported database 'postgresql+psycopg2'; use "
     "sqlite+aiosqlite:///FILE or postgresql+asyncpg://USER@HOST/DB"),
    ('[database]\nurl = "sqlite://host/x.db"',
     "config: [database] url: a sqlite URL takes no host; use "
     "sqlite+aiosqlite:///relative.db or sqlite+aiosqlite:////absolute/path.db"),
    # unknown sections and keys
    ('[ui]\ncolour = "red"', "config: [ui] colour: unknown key"),
    ("[ui]\npagesize = 5", "config: [ui] pagesize: unknown key (did you mean 'page_size'?)"),
    ("[colours]\nred = 1", "config: [colours]: unknown section"),
    ("[[ui]]\npage_size = 5", "config: [ui]: expected a table, got an array"),
    ('[providers.openai]\napi_key = "sk-abc"\nbase_url = "http://x"\nmodels = ["m"]',
     "config: [providers.openai] api_key: unknown key (put the key in an environment variable "
     "and name it in api_key_env)"),
    # providers
    ('[providers.openai]\nmodels = ["gpt-4o"]',
     "config: [providers.openai] base_url: required for an openai provider"),
    ('[providers.openai]\nbase_url = "https://api.openai.com/v1"',
     "config: [providers.openai] models: required for an openai provider"),
    ('[providers.openai]\nbase_url = "https://x"\nmodels = []',
     "config: [providers.openai] models: expected a non-empty array of model names, got an array"),
    ('[providers.openai]\nbase_url = "https://x"\nmodels = "gpt-4o"',
     "config: [providers.openai] models: expected a non-empty array of model names, got 'gpt-4o'"),
    ('[providers.openai]\nbase_url = "https://x"\nmodels = ["a", "b", "a"]',
     "config: [providers.openai] models: duplicate model 'a'"),
    ('[providers.openai]\nbase_url = "https://x"\nmodels = ["gpt 4"]',
     "config: [providers.openai] models: model names are non-empty strings without spaces, "
     "got 'gpt 4'"),
    ('[providers.openai]\nbase_url = "https://x"\nmodels = ["m"]\napi_key_env = "sk-proj-abc123"',
     "config: [providers.openai] api_key_env: must be the name of an environment variable "
     "(like OPENAI_API_KEY), not the key itself"),
    ('[providers.openai]\nbase_url = "https://x"\nmodels = ["m"]\ntimeout_seconds = 0',
     "config: [providers.openai] timeout_seconds: must be greater than 0, got 0"),
    ('[providers.openai]\nkind = "anthropic"',
     "config: [providers.openai] kind: must be one of scripted, openai, got 'anthropic'"),
    ('[providers."open/ai"]\nkind = "scripted"',
     "config: [providers.open/ai]: provider names are 1-32 letters, digits, '.', '_' or '-'"),
    ("[providers]\nopenai = 1", "config: [providers.openai]: expected a table, got 1"),
    # the task default
    ('[tasks]\ndefault_provider = "openai"\ndefault_model = "gpt-4o"',
     "config: [tasks] default_provider: unknown provider 'openai' (configured: scripted)"),
    ('[tasks]\ndefault_provider = "scripted"',
     "config: [tasks] default_model: required when default_provider is set"),
    ('[tasks]\ndefault_model = "gpt-4o"',
     "config: [tasks] default_provider: required when default_model is set"),
    (OPENAI + '[tasks]\ndefault_provider = "openai"\ndefault_model = "gpt-5"',
     "config: [tasks] default_model: 'gpt-5' is not a model of provider 'openai' "
     "(configured: gpt-4o, gpt-4o-mini)"),
    ('[providers.scripted]\nmodels = ["fast"]',
     "config: [tasks] default_model: 'scripted' is not a model of provider 'scripted' "
     "(configured: fast)"),
    # prices
    ("[prices]\ngpt-4o = 2.5",
     "config: [prices] gpt-4o: expected a table like {input = 2.5, output = 10.0}, got 2.5"),
    ('[prices]\n"gpt-4o" = {input = 2.5}', "config: [prices] gpt-4o output: required"),
    ('[prices]\n"gpt-4o" = {input = 2.5, output = 10, cached = 1}',
     "config: [prices] gpt-4o cached: unknown key"),
    ('[prices]\n"gpt-4o" = {input = "cheap", output = 10}',
     "config: [prices] gpt-4o input: expected a number, got 'cheap'"),
    # cronjobs
    ('[cronjobs]\nname = "x"',
     "config: [cronjobs]: expected an array of tables [[cronjobs]], got a table"),
    ('[[cronjobs]]\nname = "a"\nschedule = "* * * * *"\nprompt = "p"\n'
     '[[cronjobs]]\nname = "b"\nschedule = "61 * * * *"\nprompt = "p"',
     "config: [[cronjobs]] #2 schedule: invalid cron expression '61 * * * *'"),
    ('[[cronjobs]]\nname = "a"\nschedule = "@daily"\nprompt = "p"',
     "config: [[cronjobs]] #1 schedule: must be a 5-field cron expression "
     "(minute hour day month weekday), got '@daily'"),
    ('[[cronjobs]]\nname = "a"\nschedule = "0 0 * * * *"\nprompt = "p"',
     "config: [[cronjobs]] #1 schedule: must be a 5-field cron expression "
     "(minute hour day month weekday), got '0 0 * * * *'"),
    ('[[cronjobs]]\nname = "a"\nschedule = "* * * * *"',
     "config: [[cronjobs]] #1 prompt: required"),
    ('[[cronjobs]]\nname = "a"\nschedule = "* * * * *"\nprompt = ""',
     "config: [[cronjobs]] #1 prompt: must not be empty"),
    ('[[cronjobs]]\nname = ""\nschedule = "* * * * *"\nprompt = "p"',
     "config: [[cronjobs]] #1 name: must not be empty"),
    (f'[[cronjobs]]\nname = "{"n" * 201}"\nschedule = "* * * * *"\nprompt = "p"',
     "config: [[cronjobs]] #1 name: must be at most 200 characters, got 201"),
    ('[[cronjobs]]\nname = "a"\nschedule = "* * * * *"\nprompt = "p"\ntimezone = "Berlin"',
     "config: [[cronjobs]] #1 timezone: unknown timezone 'Berlin'"),
    ('[[cronjobs]]\nname = "a"\nschedule = "* * * * *"\nprompt = "p"\nprovider = "scripted"',
     "config: [[cronjobs]] #1 model: required when provider is set"),
    ('[[cronjobs]]\nname = "a"\nschedule = "* * * * *"\nprompt = "p"\nmax_duration_minutes = 2000',
     "config: [[cronjobs]] #1 max_duration_minutes: must be between 1 and "
     "max_duration_cap_minutes (1440), got 2000"),
    ('[[cronjobs]]\nname = "a"\nschedule = "* * * * *"\nprompt = "p"\nenabled = 1',
     "config: [[cronjobs]] #1 enabled: expected true or false, got 1"),
    ('[[cronjobs]]\nname = "a"\nschedule = "* * * * *"\nprompt = "p"\n'
     '[[cronjobs]]\nname = "a"\nschedule = "0 * * * *"\nprompt = "q"',
     "config: [[cronjobs]] #2 name: duplicate cronjob name 'a'"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_VALUES)
def test_bad_value_is_one_line_naming_the_key(tmp_path: Path, text: str, expected: str) -> None:
    assert config_error(tmp_path, text) == expected


def test_long_values_are_cut_in_messages(tmp_path: Path) -> None:
    message = config_error(tmp_path, f'[ui]\ntimezone = "{"x" * 500}"\n')
    assert len(message) < 120


@pytest.mark.parametrize(
    "text",
    [
        '[telegram]\ntoken = "bad token with spaces"',
        '[telegram]\nwebhook_secret = "bad;secret"',
        '[database]\nurl = "mysql://root:hunter2@db/x"',
        '[database]\nurl = "postgresql://root:hunter2@db:port/x"',
        '[providers.x]\nbase_url = "https://x"\nmodels = ["m"]\napi_key_env = "sk-hunter2"',
        '[telegram]\nbase_url = "https://root:hunter2@x:notaport/bot"',
    ],
)
def test_error_messages_never_echo_secrets(tmp_path: Path, text: str) -> None:
    message = config_error(tmp_path, text)
    for secret in ("hunter2", "bad token", "bad;secret"):
        assert secret not in message


# --- database URLs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "effective"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
        ("sqlite:////var/lib/taskops.db", "sqlite+aiosqlite:////var/lib/taskops.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://ops@db/taskops", "postgresql+asyncpg://ops@db/taskops"),
        ("postgres://ops:p%40ss@db:5433/taskops", "postgresql+asyncpg://ops:p%40ss@db:5433/taskops"),
        ("postgresql+asyncpg://localhost/taskops", "postgresql+asyncpg://localhost/taskops"),
    ],
)
def test_database_urls_get_the_async_driver(tmp_path: Path, given: str, effective: str) -> None:
    settings = load_text(tmp_path, f'[database]\nurl = "{given}"\n')
    assert settings.database.url == effective


# --- secrets --------------------------------------------------------------------------


def test_secret_hides_its_value() -> None:
    secret = Secret("123:abc")
    assert repr(secret) == str(secret) == f"{secret}" == "********"
    assert secret.get() == "123:abc"
    assert secret == Secret("123:abc")
    assert secret != Secret("123:abd")
    assert secret != "123:abc"
    assert bool(secret)
    assert not Secret("")
    assert str(Secret("")) == ""
    assert len({Secret("a"), Secret("a")}) == 1


SECRETIVE = """
[telegram]
token = "123456:TOKEN-VALUE"
mode = "webhook"
webhook_url = "https://bot.example.com/hook"
webhook_secret = "WEBHOOK-SECRET"
[database]
url = "postgresql://ops:DB-PASSWORD@db.internal/taskops"
"""


def test_secrets_are_masked_in_describe_and_repr(tmp_path: Path) -> None:
    settings = load_text(tmp_path, SECRETIVE)

    for text in (settings.describe(), repr(settings), str(settings)):
        assert "TOKEN-VALUE" not in text
        assert "WEBHOOK-SECRET" not in text
        assert "DB-PASSWORD" not in text
    assert settings.telegram.token is not None
    assert settings.telegram.token.get() == "123456:TOKEN-VALUE"
    assert settings.database.url == "postgresql+asyncpg://ops:DB-PASSWORD@db.internal/taskops"
    assert settings.database.safe_url == "postgresql+asyncpg://ops:***@db.internal/taskops"
    described = settings.describe()
    assert 'token = "********"' in described
    assert 'webhook_secret = "********"' in described
    assert 'url = "postgresql+asyncpg://ops:***@db.internal/taskops"' in described


def test_describe_is_toml_that_loads_back_to_the_same_settings(tmp_path: Path) -> None:
    text = OPENAI + """
[telegram]
admin_ids = [3, 1, 2]
[ui]
timezone = "Asia/Kolkata"
[tasks]
default_provider = "openai"
default_model = "gpt-4o-mini"
[prices]
"my.model" = { input = 1, output = 2 }
[[cronjobs]]
name = "Nightly \\"audit\\" — ünïcode"
schedule = "30 2 * * 1-5"
prompt = "line one\\nline two"
provider = "openai"
model = "gpt-4o"
"""
    settings = load_text(tmp_path, text)
    described = settings.describe()
    assert str(tmp_path / "taskops.toml") in described.splitlines()[0]
    tomllib.loads(described)

    again = load_text(tmp_path, described)
    assert dataclasses.replace(again, source=None) == dataclasses.replace(settings, source=None)


def test_describe_marks_unset_optional_values() -> None:
    described = Settings().describe()
    assert "# token is not set" in described
    assert "# heartbeat_minutes is not set" in described
    assert "no file" in described.splitlines()[0]


# --- providers, task default, cronjobs -----------------------------------------------


def test_providers_keep_config_order_and_scripted_is_always_there(tmp_path: Path) -> None:
    text = OPENAI + """
[providers.local]
base_url = "http://127.0.0.1:11434/v1"
models = ["llama3.1:8b"]
timeout_seconds = 300
"""
    settings = load_text(tmp_path, text)

    assert [p.name for p in settings.providers] == ["openai", "local", "scripted"]
    assert settings.provider_models() == [
        ("openai", "gpt-4o"), ("openai", "gpt-4o-mini"),
        ("local", "llama3.1:8b"), ("scripted", "scripted"),
    ]
    openai = settings.provider("openai")
    assert openai is not None
    assert openai.kind is ProviderKind.OPENAI
    assert openai.api_key_env == "OPENAI_API_KEY"
    assert openai.timeout_seconds == 60
    assert openai.api_key({"OPENAI_API_KEY": "sk-live"}) == Secret("sk-live")
    assert openai.api_key({}) is None
    local = settings.provider("local")
    assert local is not None
    assert local.api_key_env is None
    assert local.timeout_seconds == 300.0
    assert settings.provider("nope") is None


def test_a_configured_scripted_provider_is_not_duplicated(tmp_path: Path) -> None:
    text = '[providers.scripted]\nmodels = ["scripted", "scripted-fast"]\n'
    settings = load_text(tmp_path, text)
    assert settings.provider_models() == [("scripted", "scripted"), ("scripted", "scripted-fast")]


def test_any_name_can_be_a_scripted_provider(tmp_path: Path) -> None:
    settings = load_text(tmp_path, '[providers.demo]\nkind = "scripted"\n')
    demo = settings.provider("demo")
    assert demo is not None
    assert demo.kind is ProviderKind.SCRIPTED
    assert demo.models == ("scripted",)


def test_task_default_can_be_a_configured_pair_or_none(tmp_path: Path) -> None:
    chosen = load_text(tmp_path, OPENAI + '[tasks]\ndefault_provider = "openai"\n'
                                          'default_model = "gpt-4o-mini"\n')
    assert (chosen.tasks.default_provider, chosen.tasks.default_model) == ("openai", "gpt-4o-mini")

    none = load_text(tmp_path, '[tasks]\ndefault_provider = ""\ndefault_model = ""\n')
    assert (none.tasks.default_provider, none.tasks.default_model) == (None, None)


def test_cronjobs_load_with_defaults(tmp_path: Path) -> None:
    text = OPENAI + """
[[cronjobs]]
name = "Morning report"
schedule = "0 9 * * 1-5"
timezone = "Europe/Berlin"
prompt = "Summarise yesterday."
provider = "openai"
model = "gpt-4o-mini"
max_duration_minutes = 15

[[cronjobs]]
name = "Cleanup"
schedule = "*/30 * * * *"
prompt = "Tidy up."
enabled = false
"""
    settings = load_text(tmp_path, text)
    assert settings.cronjobs == (
        CronjobSettings(name="Morning report", schedule="0 9 * * 1-5", timezone="Europe/Berlin",
                        prompt="Summarise yesterday.", provider="openai", model="gpt-4o-mini",
                        max_duration_minutes=15),
        CronjobSettings(name="Cleanup", schedule="*/30 * * * *", prompt="Tidy up.", enabled=False),
    )
    assert settings.cronjobs[1].timezone == "UTC"
    assert settings.cronjobs[1].provider is None


def test_enum_values_are_case_insensitive(tmp_path: Path) -> None:
    settings = load_text(tmp_path, '[tasks]\nthinking_level = "HIGH"\nloop_method = "Smart"\n')
    assert settings.tasks.thinking_level is ThinkingLevel.HIGH
    assert settings.tasks.loop_method is LoopMethod.SMART


def test_webhook_mode(tmp_path: Path) -> None:
    settings = load_text(tmp_path, SECRETIVE)
    assert settings.telegram.mode is TelegramMode.WEBHOOK
    assert settings.telegram.webhook_url == "https://bot.example.com/hook"
    assert settings.telegram.webhook_secret == Secret("WEBHOOK-SECRET")
    assert settings.telegram.webhook_port == 8443


def test_webhook_url_must_be_https_unless_the_bot_api_is_self_hosted(tmp_path: Path) -> None:
    plain = ('[telegram]\nmode = "webhook"\nwebhook_secret = "s"\n'
             'webhook_url = "http://bot.example.com/hook"\n')
    assert config_error(tmp_path, plain).startswith(
        "config: [telegram] webhook_url: must be an https URL")
    explicit = plain + 'base_url = "https://API.telegram.org:443/bot"\n'
    assert "must be an https URL" in config_error(tmp_path, explicit)
    hosted = load_text(tmp_path, plain + 'base_url = "http://10.0.0.5:8081/bot"\n')
    assert hosted.telegram.webhook_url == "http://bot.example.com/hook"
    assert load_text(tmp_path, SECRETIVE).telegram.webhook_url.startswith("https://")


@pytest.mark.parametrize("secret", ["has space", "semi;colon", "x" * 257, "ünïcode", "a/b"])
def test_webhook_secret_takes_telegrams_characters_only(tmp_path: Path, secret: str) -> None:
    problem = config_error(tmp_path, f'[telegram]\nwebhook_secret = "{secret}"\n')
    assert problem.startswith("config: [telegram] webhook_secret: must ")
    assert secret not in problem


def test_self_hosted_bot_api_base_url(tmp_path: Path) -> None:
    settings = load_text(tmp_path, '[telegram]\nbase_url = "http://127.0.0.1:8081/bot"\n')
    assert settings.telegram.base_url == "http://127.0.0.1:8081/bot"


# --- prices ---------------------------------------------------------------------------


def test_default_prices_from_the_platform_facts() -> None:
    settings = Settings()
    assert settings.price_for("gpt-4o") == Price(2.50, 10.00)
    assert settings.price_for("gpt-4o-mini") == Price(0.15, 0.60)
    assert settings.price_for("claude-sonnet-4") == Price(3, 15)
    assert settings.price_for("claude-3-opus") == Price(15, 75)
    assert settings.price_for("claude-3-haiku") == Price(0.25, 1.25)
    assert settings.price_for("scripted") == Price(0.50, 1.50)
    assert all(p.input_per_million >= 0 and p.output_per_million >= 0
               for p in DEFAULT_PRICES.values())


#: platform-facts.md, "Cost": the original's built-in table, in full (input / output)
PLATFORM_PRICES = {
    "gpt-4o": (2.50, 10.00), "gpt-4o-mini": (0.15, 0.60), "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50), "claude-sonnet-4-20250514": (3.00, 15.00),
    "claude-3-5-sonnet-20241022": (3.00, 15.00), "claude-3-opus-20240229": (15.00, 75.00),
    "claude-3-haiku-20240307": (0.25, 1.25),
}


@pytest.mark.parametrize(("model", "price"), PLATFORM_PRICES.items())
def test_every_model_of_the_platform_table_is_built_in_under_its_own_name(
        model: str, price: tuple[float, float]) -> None:
    assert DEFAULT_PRICES[model] == Price(*price)
    assert Settings().price_for(model) == Price(*price)
    assert Settings().price_for(f"vendor/{model}") == Price(*price)


def test_price_lookup_tolerates_vendor_prefix_and_date_suffix() -> None:
    settings = Settings()
    assert settings.price_for("openai/gpt-4o") == Price(2.50, 10.00)
    assert settings.price_for("gpt-4o-mini-2024-07-18") == Price(0.15, 0.60)
    assert settings.price_for("claude-3-haiku-20240307") == Price(0.25, 1.25)
    assert settings.price_for("anthropic/claude-3-opus-latest") == Price(15, 75)
    assert settings.price_for("gpt-4o-audio-preview") is None
    assert settings.price_for("llama3.1:8b") is None
    assert settings.price_for(None) is None
    assert settings.price_for("") is None


def test_prices_section_overrides_and_extends_the_defaults(tmp_path: Path) -> None:
    text = '[prices]\n"gpt-4o" = {input = 2.0, output = 8}\n"llama3.1:8b" = {input = 0, output = 0}'
    settings = load_text(tmp_path, text)
    assert settings.price_for("gpt-4o") == Price(2.0, 8.0)
    assert settings.price_for("llama3.1:8b") == Price(0.0, 0.0)
    assert settings.price_for("gpt-4o-mini") == Price(0.15, 0.60)
    assert DEFAULT_PRICES["gpt-4o"] == Price(2.50, 10.00)
    with pytest.raises(TypeError):
        settings.prices["x"] = Price(1, 1)  # type: ignore[index]


def test_price_cost() -> None:
    assert Price(2.50, 10.00).cost(1_000_000, 500_000) == pytest.approx(7.5)
    assert Price(0.15, 0.60).cost(0, 0) == 0


# --- the example file ----------------------------------------------------------------


def test_the_example_file_loads_cleanly() -> None:
    settings = load_settings(str(EXAMPLE), {})
    assert dataclasses.replace(settings, source=None) == Settings()


def test_the_example_file_loads_with_every_optional_line_enabled(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    enabled = re.sub(r'(?m)^# (?=\[|[A-Za-z_]+ = |"[^"]+" = )', "", text)
    assert enabled.count("\n") == text.count("\n")
    settings = load_text(tmp_path, enabled)

    assert settings.telegram.token is not None
    assert settings.telegram.webhook_secret is not None
    assert settings.runtime.heartbeat_minutes == 30
    assert settings.runtime.consolidation_cron == "0 3 * * *"
    openai = settings.provider("openai")
    assert openai is not None
    assert openai.api_key_env == "OPENAI_API_KEY"
    assert [job.name for job in settings.cronjobs] == ["Nightly dependency audit"]
    assert settings.price_for("my-local-llama") == Price(0, 0)


def test_the_example_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    described = Settings().describe().split("[prices]")[0]
    keys = set(re.findall(r"(?m)^#? ?([a-z_]+) (?:=|is not set)", described))
    for key in keys:
        assert re.search(rf"(?m)^(# )?{key} = ", text), key
    for key in ("kind", "base_url", "api_key_env", "models", "timeout_seconds", "name",
                "schedule", "timezone", "prompt", "provider", "model", "enabled",
                "max_duration_minutes"):
        assert re.search(rf"(?m)^(# )?{key} = ", text), key


#: the original platform's built-in price table, in full (platform-facts.md, "Cost")
ORIGINAL_PRICES = {
    "gpt-4o": (2.50, 10.00), "gpt-4o-mini": (0.15, 0.60), "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50), "claude-sonnet-4-20250514": (3.00, 15.00),
    "claude-3-5-sonnet-20241022": (3.00, 15.00), "claude-3-opus-20240229": (15.00, 75.00),
    "claude-3-haiku-20240307": (0.25, 1.25),
}


@pytest.mark.parametrize(("model", "price"), sorted(ORIGINAL_PRICES.items()))
def test_the_original_price_table_is_built_in(model: str, price: tuple[float, float]) -> None:
    settings = Settings()
    assert model in settings.prices
    found = settings.price_for(model)
    assert found is not None
    assert (found.input_per_million, found.output_per_million) == price
    assert settings.price_for(f"openrouter/{model}") == found
