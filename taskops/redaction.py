"""The one redaction helper: configured secrets never leave the process (issue 18).

Fed from the config (``Settings.secret_values()``: the bot token, the database password,
the webhook secret, each provider's API key) through :func:`install`, and used at every
boundary where text leaves: log records (every logger, tracebacks included), the command
line's output and config errors, text stored on a task (before it is stored), and every
request to Telegram.

What is caught, for each secret of at least :data:`MIN_SECRET` characters:

* the secret in every spelling it travels in: as configured, %-encoded (``quote`` with and
  without ``/`` kept, ``quote_plus``, upper- and lower-case hex) and %-decoded, JSON- and
  Python-escaped, HTML-escaped;
* any piece of it (of any of those spellings) of :data:`FRAGMENT` or more characters that
  is not only digits — a key cut short in an echo (``Bearer sk-abc…``), or split across
  two messages or log lines;
* the secret's bytes as a hex dump (either case, with or without ``:``, ``-`` or a blank
  between the bytes), and any piece of that as above;
* the secret base64-encoded (standard or URL-safe alphabet) inside any base64 text, at
  any of the three alignments it may fall on — a ``Basic`` header's ``user:password``,
  a config or payload dump — found by the characters that only the secret's own bytes
  decide; the same for its %-encoded spellings (a URL's password, base64-encoded);
* whatever follows ``Bearer`` (any bearer token is a credential), the password of any
  URL (``scheme://user:password@host``, whatever its length), and anything shaped like a
  Telegram bot token (``123456:AA…``), configured or not.

What is not: pieces shorter than :data:`FRAGMENT` characters (a secret split into pieces
that small cannot be told from ordinary text), encodings other than those above (say
base32, or a secret reversed), and secrets shorter than :data:`MIN_SECRET` outside a URL
(``check-config`` warns of those).
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote, unquote_plus

#: shorter secrets are not redacted (every common word would be)
MIN_SECRET = 6
#: the shortest piece of a secret that is redacted on its own
FRAGMENT = 8
MASK = "***"
#: texts up to this long are remembered with their redacted form (button labels and
#: callback data repeat in every keyboard: each took ~4 µs, ~70 of them per list edit) ...
MEMO_TEXT = 256
#: ... this many at most (then the memo starts afresh)
MEMO_SIZE = 4096

_HEX = re.compile(r"%[0-9A-Fa-f]{2}")
#: runs of characters that may hold a piece of a secret
_RUN = re.compile(rf"\S{{{FRAGMENT},}}")
#: credentials recognised by their shape, configured or not: what follows "Bearer" ...
_BEARER = re.compile(r"([Bb][Ee][Aa][Rr][Ee][Rr](?: |%20|\+))[^\s\"'<>,;&*]+")
#: ... the password of a URL, up to the last '@' before the host (a password may hold
#: an unencoded '@'; an invalid URL echoed in an error often does) ...
_URL_PASSWORD = re.compile(r"(://[^\s:/@]*:)[^\s/]+@")
#: ... and a Telegram bot token, found by its tail first (a ':' is quick to look for)
_TOKEN_TAIL = re.compile(r":[A-Za-z0-9_-]{30,}")
#: a hex dump with a separator between the bytes (``73:6b:2d`` or ``73 6b 2d``)
_SEPARATED_HEX = re.compile(r"[0-9A-Fa-f]{2}(?:[:\- ][0-9A-Fa-f]{2}){3,}")
_HEX_SEPARATOR = re.compile(r"[:\- ]")


def _mask_shapes(text: str) -> str:
    text = _BEARER.sub(r"\1" + MASK, text)
    if ":" not in text:
        return text
    if "://" in text:
        text = _URL_PASSWORD.sub(r"\1" + MASK + "@", text)
    out: list[str] = []
    done = 0
    for tail in _TOKEN_TAIL.finditer(text):
        start = tail.start()
        while start > 0 and text[start - 1].isdigit() and tail.start() - start < 13:
            start -= 1
        digits = tail.start() - start
        if 6 <= digits <= 12 and not (start and (text[start - 1].isalnum()
                                                 or text[start - 1] in "_-")):
            out += [text[done:start], MASK]
            done = tail.end()
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def spellings(secret: str) -> set[str]:
    """The ways ``secret`` shows up in URLs, JSON, Python reprs and HTML."""
    out = {secret}
    for decoded in (unquote(secret), unquote_plus(secret)):
        out.add(decoded)
    for base in list(out):
        out |= {quote(base, safe=""), quote(base), quote_plus(base), quote(base, safe=" +:@")}
    for base in list(out):
        out.add(_HEX.sub(lambda m: m.group().lower(), base))
        out.add(_HEX.sub(lambda m: m.group().upper(), base))
    for base in list(out):
        out |= {json.dumps(base)[1:-1], json.dumps(base, ensure_ascii=False)[1:-1],
                repr(base)[1:-1], html.escape(base), html.escape(base, quote=False)}
    out |= base64_cores(secret)
    # ... and of its %-encoded spellings: a URL's userinfo in a Basic header or a dump.
    for encoded in {quote(secret, safe=""), quote(secret), quote_plus(secret)} - {secret}:
        out |= base64_cores(encoded)
    # A hex dump of the bytes (a payload or a key printed as hex), either case.
    out |= {secret.encode().hex(), secret.encode().hex().upper()}
    return {s for s in out if len(s) >= MIN_SECRET}


def base64_cores(secret: str) -> set[str]:
    """What any base64 text holding ``secret`` shows of it, whatever precedes it.

    A base64 character stands for 6 bits, so the secret's bytes start on one of three
    alignments; for each, the characters made only of the secret's bits are the same
    wherever it sits (``Basic dXNlcjpwYXNz…``). Both alphabets; the padding never counts.
    """
    data = secret.encode("utf-8", "surrogatepass")
    out: set[str] = set()
    for shift in range(3):
        encoded = base64.b64encode(bytes(shift) + data).decode("ascii").rstrip("=")
        first = -(-8 * shift // 6)  # the first character with none of the filler's bits
        last = 8 * (shift + len(data)) // 6  # past the last with all of its bits from it
        core = encoded[first:last]
        out |= {core, core.translate(_URLSAFE)}
    return out


_URLSAFE = str.maketrans("+/", "-_")


def _grams(word: str) -> list[str]:
    return [word[i:i + FRAGMENT] for i in range(len(word) - FRAGMENT + 1)]


class Redactor:
    """Replaces every configured secret (see the module's doc) with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self.secrets: frozenset[str] = frozenset()
        self._whole: re.Pattern[str] | None = None
        self._spaced: re.Pattern[str] | None = None
        self._pieces: frozenset[str] = frozenset()
        self._memo: dict[str, str] = {}
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        new = {s for s in secrets if s and len(s) >= MIN_SECRET} - self.secrets
        if not new:
            return
        with self._lock:
            everything = self.secrets | new
            every = set().union(*(spellings(s) for s in everything))
            pieces = {p for w in every for p in _grams(w)}
            self._pieces = frozenset(p for p in pieces if not p.isdigit())
            # Pieces with a blank in them (a password may have one) are not within a run
            # of the text: these few are looked for anywhere.
            spaced = sorted({p for p in self._pieces if re.search(r"\s", p)})
            self._spaced = re.compile("|".join(map(re.escape, spaced))) if spaced else None
            # The pieces find every spelling but those too short to have one, those with a
            # blank (pieces are looked for between blanks) and those with a digits-only
            # piece (not looked for): these are looked for whole.
            whole = [w for w in every if len(w) < FRAGMENT or re.search(r"\s", w)
                     or any(p.isdigit() for p in _grams(w))]
            self._whole = re.compile("|".join(
                re.escape(w) for w in sorted(whole, key=len, reverse=True))) if whole else None
            self.secrets = frozenset(everything)
            self._memo = {}

    def reset(self, secrets: Iterable[str] = ()) -> None:
        """Only these secrets from now on (tests that install made-up ones put back what
        was there)."""
        with self._lock:
            self.secrets, self._whole, self._pieces = frozenset(), None, frozenset()
            self._spaced = None
            self._memo = {}
        self.add(secrets)

    def redact(self, text: str) -> str:
        if len(text) < MIN_SECRET:  # shorter than anything redacted (a spelling, a shape)
            return text
        if len(text) > MEMO_TEXT:
            return self._redact(text)
        memo = self._memo
        if (known := memo.get(text)) is not None:
            return known or text  # "" for unchanged: callers rely on getting ``text`` itself
        redacted = self._redact(text)
        if len(memo) >= MEMO_SIZE:
            memo.clear()
        memo[text] = "" if redacted == text else redacted
        return redacted

    def _redact(self, text: str) -> str:
        text = _mask_shapes(text)
        whole, pieces = self._whole, self._pieces
        if whole is not None:
            text = whole.sub(MASK, text)
        if self._spaced is not None:
            text = self._spaced.sub(MASK, text)
        if not pieces:
            return text
        text = self._mask_separated_hex(text, pieces)
        out: list[str] = []
        done = 0
        for run in _RUN.finditer(text):
            start = run.start()
            word = run.group()
            covered_from = covered_to = -1
            for i in range(len(word) - FRAGMENT + 1):
                if word[i:i + FRAGMENT] not in pieces:
                    continue
                if i > covered_to:
                    if covered_to >= 0:
                        out += [text[done:start + covered_from], MASK]
                        done = start + covered_to
                    covered_from = i
                covered_to = i + FRAGMENT
            if covered_to >= 0:
                out += [text[done:start + covered_from], MASK]
                done = start + covered_to
        if not out:
            return text
        out.append(text[done:])
        return "".join(out)

    @staticmethod
    def _mask_separated_hex(text: str, pieces: frozenset[str]) -> str:
        """A hex dump with separators is masked whole when its bytes hold a piece of a
        secret's hex (looked for here, by its shape, rather than as spellings: pieces with
        a blank in them are matched one by one, and there would be hundreds)."""
        if not any(sep in text for sep in ": -"):
            return text

        def mask(match: re.Match[str]) -> str:
            digits = _HEX_SEPARATOR.sub("", match.group())
            return MASK if any(g in pieces for g in _grams(digits)) else match.group()

        return _SEPARATED_HEX.sub(mask, text)

    def redact_bytes(self, data: bytes) -> bytes:
        """Text files (a task's full log): redacted as UTF-8; other bytes as they are."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return data
        redacted = self.redact(text)
        return data if redacted == text else redacted.encode("utf-8")


#: the process's redactor: every boundary uses this one
_CURRENT = Redactor()


def install(secrets: Iterable[str]) -> Redactor:
    """Adds the configured secrets to the process's redactor (never removes any: a
    process that opened stores of several configs keeps every secret it saw)."""
    _CURRENT.add(secrets)
    return _CURRENT


def current() -> Redactor:
    return _CURRENT


def redact(text: str) -> str:
    return _CURRENT.redact(text)
