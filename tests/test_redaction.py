"""Secrets never leave (issue 18): each configured secret, in several spellings and split
across messages, goes through every output boundary, and none of it comes out.

The boundaries, as the product wires them: the log handler's filter (any logger, with a
traceback), the text the store binds (``rules.clean`` — every text and JSON column), the
flood gate every request to Telegram passes (texts, captions, button labels, documents),
and the command line's ``say``. The end-to-end tests (tests/e2e/test_secrets.py) run the
same through the real console, worker, store and CLI.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import (
    CopyTextButton,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    WebAppInfo,
)

from taskops import redaction
from taskops.bot.flood import redact_request
from taskops.cli import say
from taskops.logs import RedactFilter
from taskops.redaction import FRAGMENT, Redactor, spellings
from taskops.storage import rules

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
#: filler around the secrets: nothing a secret is made of, so a hit is a leak
FILLER = st.text(alphabet=" .,;:!?()[]{}<>«»—ÄÖÜäöüßабвгд\n\t✅", max_size=40)


def _with_letter(text: str) -> bool:
    return any(c.isalpha() for c in text)


TOKENS = st.builds(lambda n, t: f"{n}:{t}", st.integers(10**7, 10**10),
                   st.text(alphabet=ALNUM + "_-", min_size=35, max_size=35)).filter(
    lambda t: _with_letter(t.split(":")[1]))
PASSWORDS = st.text(alphabet=ALNUM + "@:/%#?&+=!$'\"\\ ", min_size=10, max_size=28).filter(
    lambda p: _with_letter(p) and p.strip() == p and "%" not in p)
WEBHOOK_SECRETS = st.text(alphabet=ALNUM + "_-", min_size=12, max_size=64).filter(_with_letter)
API_KEYS = st.builds(lambda body: f"sk-proj-{body}",
                     st.text(alphabet=ALNUM, min_size=24, max_size=48).filter(_with_letter))


def leaked(output: str, secret: str) -> list[str]:
    """Pieces of the secret (any spelling, FRAGMENT characters or more) in ``output``, and
    in whatever its base64-looking runs decode to."""
    return sorted({w[i:i + FRAGMENT] for w in spellings(secret)
                   for i in range(len(w) - FRAGMENT + 1)
                   if not w[i:i + FRAGMENT].isdigit() and w[i:i + FRAGMENT] in output}
                  | base64_leaks(output, secret) | hex_leaks(output, secret))


def hex_leaks(output: str, secret: str) -> set[str]:
    """Pieces of the secret's hex dump in ``output``, also where bytes are kept apart by a
    separator (independent of ``spellings``)."""
    joined = re.sub(r"(?<=[0-9A-Fa-f]{2})[:\- ](?=[0-9A-Fa-f]{2})", "", output)
    found: set[str] = set()
    for dump in (secret.encode().hex(), secret.encode().hex().upper()):
        found |= {dump[i:i + FRAGMENT] for i in range(len(dump) - FRAGMENT + 1)
                  if not dump[i:i + FRAGMENT].isdigit()
                  and (dump[i:i + FRAGMENT] in output or dump[i:i + FRAGMENT] in joined)}
    return found


def base64_leaks(output: str, secret: str) -> set[str]:
    """Pieces of the secret in any base64 run of ``output``, decoded from each of the four
    character offsets (independent of how the product finds them)."""
    pieces = {raw[i:i + FRAGMENT]
              for raw in (secret.encode(), quote(secret, safe="").encode(),
                          quote_plus(secret).encode())
              for i in range(len(raw) - FRAGMENT + 1)}
    found: set[str] = set()
    for run in re.findall(r"[A-Za-z0-9+/_-]{8,}", output):
        run = run.translate(str.maketrans("-_", "+/"))
        for offset in range(4):
            body = run[offset:]
            body = body[:len(body) - len(body) % 4]
            try:
                data = base64.b64decode(body)
            except ValueError:
                continue
            found |= {p.decode(errors="replace") for p in pieces if p in data}
    return found


SPELLINGS: dict[str, Callable[[str], list[str]]] = {
    "as configured": lambda s: [s],
    "%-encoded": lambda s: [quote(s, safe="")],
    "%-encoded, lower-case hex": lambda s: [re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(),
                                                   quote(s, safe=""))],
    "form-encoded": lambda s: [quote_plus(s)],
    "in a URL": lambda s: [f"postgresql://ops:{quote(s, safe='')}@db.internal:5432/taskops"],
    "JSON-escaped": lambda s: [json.dumps({"detail": s})],
    "a partial Bearer echo": lambda s: [f"Invalid API key: Bearer {s[:max(FRAGMENT, 12)]}…"],
    "cut short in an echo": lambda s: [f"Incorrect API key provided: {s[:FRAGMENT + 2]}****"],
    # Halves of FRAGMENT characters at least (overlapping when the secret is short):
    # shorter pieces are not redacted, by design, and escaping lengthens them into what
    # would look like a leak of an escaped spelling (a JSON-escaped '000A"\\').
    "split across two messages": lambda s: [s[:max(len(s) // 2, FRAGMENT)],
                                            s[min(len(s) // 2, len(s) - FRAGMENT):]],
    "a hex dump": lambda s: [f"payload: {s.encode().hex()}",
                             f"KEY={s.encode().hex().upper()}"],
    "a hex dump with separators": lambda s: [f"key bytes {s.encode().hex(':')}",
                                             f"{s.encode().hex(' ').upper()} |ascii|",
                                             s.encode().hex("-")],
    # base64 at each of the three alignments, in both alphabets
    "in a Basic header": lambda s: [
        "Authorization: Basic " + base64.b64encode(f"{user}:{s}".encode()).decode()
        for user in ("ops", "ops1", "ops12")],
    "a URL's %-encoded password in a Basic header": lambda s: [
        "Authorization: Basic " + base64.b64encode(f"{user}:{quote(s, safe='')}".encode()).decode()
        for user in ("ops", "ops1", "ops12")],
    "base64url in a dump": lambda s: [
        base64.urlsafe_b64encode(f"{pad}{{'key': {s!r}}}".encode()).decode()
        for pad in ("", "x", "xy")],
}


@contextlib.contextmanager
def log_capture() -> Iterator[tuple[io.StringIO, list[logging.Logger]]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactFilter())
    loggers = [logging.getLogger(n) for n in ("taskops.test_redaction", "httpx", "telegram.ext")]
    saved = [(lg.handlers[:], lg.propagate, lg.level) for lg in loggers]
    for lg in loggers:
        lg.handlers[:] = [handler]
        lg.propagate = False
        lg.setLevel(logging.DEBUG)
    try:
        yield out, loggers
    finally:
        for lg, (handlers, propagate, level) in zip(loggers, saved, strict=True):
            lg.handlers[:], lg.propagate = handlers, propagate
            lg.setLevel(level)


def through_logs(message: str) -> str:
    with log_capture() as (out, loggers):
        for logger in loggers:
            logger.info("request to %s", message)
            try:
                raise RuntimeError(f"provider said: {message}")
            except RuntimeError:
                logger.exception("run failed")
    return out.getvalue()


def through_store(message: str) -> str:
    payload = {"error": message, "tool": {"result": [message], message[:30]: 1}}
    return json.dumps(rules.clean(payload), ensure_ascii=False) + rules.clean_text(message)


def through_telegram(message: str) -> str:
    data = {"chat_id": 7, "text": message, "caption": message,
            "reply_markup": InlineKeyboardMarkup(
                [[InlineKeyboardButton(message[:64] or "x", callback_data="d")]]),
            "document": InputFile(message.encode(), filename="task.md")}
    redact_request(data)
    document = data["document"]
    assert isinstance(document, InputFile)
    assert isinstance(document.input_file_content, bytes)
    return json.dumps({k: v for k, v in data.items() if k != "document"},
                      ensure_ascii=False, default=str) + document.input_file_content.decode()


def through_cli(message: str) -> str:
    out = io.StringIO()
    say(f"taskops: {message}", out)
    return out.getvalue()


@pytest.fixture(autouse=True)
def own_secrets() -> Iterator[None]:
    """The made-up secrets of these tests do not stay in the process's redactor."""
    kept = redaction.current().secrets
    yield
    redaction.current().reset(kept)


BOUNDARIES = {"log": through_logs, "store": through_store, "telegram": through_telegram,
              "cli": through_cli}


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(token=TOKENS, password=PASSWORDS, webhook=WEBHOOK_SECRETS, key=API_KEYS,
       spelling=st.sampled_from(sorted(SPELLINGS)), boundary=st.sampled_from(sorted(BOUNDARIES)),
       before=FILLER, after=FILLER)
def test_no_secret_in_any_spelling_leaves_through_any_boundary(
        token: str, password: str, webhook: str, key: str, spelling: str, boundary: str,
        before: str, after: str) -> None:
    redaction.install([token, password, webhook, key])
    for secret in (token, password, webhook, key):
        for message in SPELLINGS[spelling](secret):
            output = BOUNDARIES[boundary](before + message + after)
            assert leaked(output, secret) == [], (spelling, boundary, output)


def test_what_is_not_a_secret_comes_through() -> None:
    redactor = Redactor(["123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "S3cr@t-pass"])
    text = "Task #123456789 completed: 42 files, ✅ <b>done</b> & more"
    assert redactor.redact(text) == text
    assert redactor.redact("https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0"
                           "K5PALDsaw/getMe") == "https://api.telegram.org/bot***/getMe"


def test_shapes_are_redacted_even_when_not_configured() -> None:
    redactor = Redactor()
    assert redactor.redact("Authorization: Bearer abc.def-ghi") == "Authorization: Bearer ***"
    assert redactor.redact("bot 987654321:AAF0123456789abcdefghijklmnopqrstuv ok") == "bot *** ok"


def test_documents_keep_their_name_and_binary_files_pass() -> None:
    redaction.install(["sk-proj-DocumentSecret123"])
    data = {"chat_id": 1, "document": InputFile(b"key sk-proj-DocumentSecret123\n",
                                                filename="log.md"),
            "photo": InputFile(b"\x89PNG\x00\xff", filename="p.png")}
    redact_request(data)
    document = data["document"]
    assert isinstance(document, InputFile)
    assert (document.filename, document.input_file_content) == ("log.md", b"key ***\n")
    photo = data["photo"]
    assert isinstance(photo, InputFile)
    assert photo.input_file_content == b"\x89PNG\x00\xff"


def test_set_webhook_still_hands_telegram_its_secret() -> None:
    redaction.install(["hook-Secret_WebhookOnly42"])
    data = {"url": "https://bot.example.com/telegram", "secret_token": "hook-Secret_WebhookOnly42",
            "allowed_updates": ["message"]}
    redact_request(data)
    assert data["secret_token"] == "hook-Secret_WebhookOnly42"


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql+asyncpg://ops:pw1@db.internal:5432/taskops",
     "postgresql+asyncpg://ops:***@db.internal:5432/taskops"),
    ("postgresql://:p@ss@db/taskops", "postgresql://:***@db/taskops"),
    ("redis://default:x%40y@cache:6379/0", "redis://default:***@cache:6379/0"),
])
def test_a_url_password_is_redacted_whatever_its_length(url: str, shown: str) -> None:
    """A password too short to be redacted as a configured secret (or not configured at
    all) is still a URL's password: masked by its place in the URL."""
    assert Redactor().redact(f"could not connect to {url!r}: refused") == (
        f"could not connect to {shown!r}: refused")


def test_text_that_only_looks_like_hex_or_urls_comes_through() -> None:
    redactor = Redactor(["sk-proj-abcdefghijklmnopqrstuvwx"])
    for text in ("MAC 00:1a:2b:3c:4d:5e up", "https://example.com:8443/a@b",
                 "see http://host:80 and mail ops@example.com", "de ad be ef ca fe"):
        assert redactor.redact(text) == text


def test_a_text_remembered_as_clean_is_redacted_once_its_secret_is_configured() -> None:
    redactor = Redactor(["unrelated-secret-1"])
    text = "key=Zq8Rm3Tx7Wp2Lk9V"
    assert redactor.redact(text) == text  # remembered as clean
    redactor.add(["Zq8Rm3Tx7Wp2Lk9V"])
    assert redactor.redact(text) == "key=***"


@pytest.mark.parametrize("button", [
    InlineKeyboardButton("ok", callback_data="v2|Zq8Rm3Tx7Wp2Lk9V"),
    InlineKeyboardButton("ok", url="https://example.com/?k=Zq8Rm3Tx7Wp2Lk9V"),
    InlineKeyboardButton("ok", copy_text=CopyTextButton("Zq8Rm3Tx7Wp2Lk9V")),
    InlineKeyboardButton("Zq8Rm3Tx7Wp2Lk9V", callback_data="x"),
    InlineKeyboardButton("ok", web_app=WebAppInfo("https://example.com/Zq8Rm3Tx7Wp2Lk9V")),
])
def test_every_field_of_a_keyboard_is_redacted(button: InlineKeyboardButton) -> None:
    redaction.install(["Zq8Rm3Tx7Wp2Lk9V"])
    plain = InlineKeyboardButton("plain", callback_data="v2|abc")
    data = {"chat_id": 1, "reply_markup": InlineKeyboardMarkup([[plain], [plain, button]])}
    redact_request(data)
    assert "Zq8Rm3Tx7Wp2Lk9V" not in json.dumps(data, default=str, ensure_ascii=False)
    assert "***" in json.dumps(data, default=str, ensure_ascii=False)


def test_a_clean_keyboard_is_sent_as_it_is() -> None:
    redaction.install(["Zq8Rm3Tx7Wp2Lk9V"])
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("▶", callback_data="v2|abc|p|2")]])
    data = {"chat_id": 1, "reply_markup": markup}
    redact_request(data)
    assert data["reply_markup"] is markup
