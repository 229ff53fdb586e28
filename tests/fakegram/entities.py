"""Telegram's rules for entity lists (TDLib's fix_entities) and for links.

Entities are sorted, intersecting ones dropped, bold/italic/... merged and split so that they
never cross code/pre/links, and removed inside code/pre; nested blockquotes are dropped.
Entities are Bot API dicts: ``{"offset", "length", "type", ...extras}`` in UTF-16 units.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

Entity = dict[str, Any]

_PRIORITY = {
    "mention": 50,
    "hashtag": 50,
    "bot_command": 50,
    "url": 50,
    "email": 50,
    "bold": 90,
    "italic": 91,
    "code": 20,
    "pre": 11,
    "text_link": 49,
    "text_mention": 49,
    "cashtag": 50,
    "phone_number": 50,
    "underline": 92,
    "strikethrough": 93,
    "blockquote": 0,
    "expandable_blockquote": 0,
    "spoiler": 94,
    "custom_emoji": 99,
    "bank_card_number": 50,
}
SPLITTABLE = ("bold", "italic", "underline", "strikethrough", "spoiler")
BLOCKQUOTES = frozenset({"blockquote", "expandable_blockquote"})
PRE_TYPES = frozenset({"pre", "code"})
USER_TYPES = (
    frozenset(SPLITTABLE) | BLOCKQUOTES | PRE_TYPES | {"text_link", "text_mention", "custom_emoji"}
)
KNOWN_TYPES = frozenset(_PRIORITY)
_CONTINUOUS_AUTO = frozenset(
    {
        "mention",
        "hashtag",
        "bot_command",
        "url",
        "email",
        "cashtag",
        "phone_number",
        "bank_card_number",
        "text_link",
        "text_mention",
        "custom_emoji",
    }
)


def _key(e: Entity) -> tuple[int, int, int]:
    prio = 10 if e["type"] == "pre" and e.get("language") else _PRIORITY.get(e["type"], 50)
    return (e["offset"], -e["length"], prio)


def sort_entities(entities: list[Entity]) -> list[Entity]:
    return sorted(entities, key=_key)


def end_of(e: Entity) -> int:
    return int(e["offset"]) + int(e["length"])


def check_link(url: str) -> str | None:
    """Telegram's link check for text links: normalized URL, or None when it is refused."""
    url = url.strip()
    if not url or any(ch.isspace() for ch in url):
        return None
    low = url.lower()
    for scheme in ("tg:", "ton:", "tonsite:"):
        if low.startswith(scheme):
            return url if len(url) > len(scheme) else None
    if "://" not in url:
        url = "http://" + url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https", "ftp") or not parts.hostname:
        return None
    host = parts.hostname
    labels = host.split(".")
    if len(labels) < 2 or any(
        not lab or lab.startswith("-") or lab.endswith("-") for lab in labels
    ):
        return None
    if not re.fullmatch(r"[\w.-]+", host):
        return None
    netloc = host + (f":{port}" if port is not None else "")
    if parts.username:
        netloc = parts.username + (f":{parts.password}" if parts.password else "") + "@" + netloc
    out = f"{parts.scheme.lower()}://{netloc}{parts.path or '/'}"
    if parts.query:
        out += "?" + parts.query
    if parts.fragment:
        out += "#" + parts.fragment
    return out


# --- fixing -------------------------------------------------------------------------------


def _remove_intersecting(entities: list[Entity]) -> list[Entity]:
    kept: list[Entity] = []
    last_end = 0
    for e in entities:
        if e["offset"] >= last_end:
            last_end = end_of(e)
            kept.append(e)
    return kept


def remove_crossing_blockquote(entities: list[Entity], quotes: list[Entity]) -> list[Entity]:
    kept = []
    qi = 0
    for e in entities:
        while qi < len(quotes) and end_of(quotes[qi]) <= e["offset"]:
            qi += 1
        if qi < len(quotes):
            q = quotes[qi]
            if end_of(q) < end_of(e) or e["offset"] < q["offset"] < end_of(e):
                continue
        kept.append(e)
    return kept


def split_entities(splittable: list[Entity], others: list[Entity]) -> list[Entity]:
    """Merge same-type splittable entities and cut them at the bounds of ``others``."""
    begin = dict.fromkeys(SPLITTABLE, 0)
    end = dict.fromkeys(SPLITTABLE, 0)
    result: list[Entity] = []
    pos = 0

    def flush(offset: int) -> None:
        for kind in SPLITTABLE:
            if end[kind] != 0 and begin[kind] < offset:
                if end[kind] <= offset:
                    result.append(
                        {"offset": begin[kind], "length": end[kind] - begin[kind], "type": kind}
                    )
                    begin[kind] = end[kind] = 0
                else:
                    result.append(
                        {"offset": begin[kind], "length": offset - begin[kind], "type": kind}
                    )
                    begin[kind] = offset

    def add_until(end_offset: int) -> None:
        nonlocal pos
        while pos < len(splittable) and splittable[pos]["offset"] < end_offset:
            e = splittable[pos]
            kind = e["type"]
            if end[kind] != 0 and e["offset"] <= end[kind]:
                end[kind] = max(end[kind], end_of(e))
            else:
                flush(e["offset"])
                begin[kind], end[kind] = e["offset"], end_of(e)
            pos += 1
        flush(end_offset)

    stack: list[Entity] = []

    def add_offset(offset: int) -> None:
        while stack and offset >= end_of(stack[-1]):
            before = len(result)
            add_until(end_of(stack[-1]))
            if stack[-1]["type"] in PRE_TYPES:
                del result[before:]
            stack.pop()
        add_until(offset)

    for other in others:
        add_offset(other["offset"])
        stack.append(other)
    add_offset(2**31 - 1)
    return sort_entities(result)


def _entities_valid(entities: list[Entity]) -> bool:
    last_end = dict.fromkeys(SPLITTABLE, -1)
    stack: list[Entity] = []
    for e in entities:
        while stack and e["offset"] >= end_of(stack[-1]):
            stack.pop()
        if stack:
            kinds = {s["type"] for s in stack}
            if (
                end_of(e) > end_of(stack[-1])
                or e["type"] in kinds
                or stack[-1]["type"] in PRE_TYPES
            ):
                return False
            if e["type"] in PRE_TYPES and kinds - BLOCKQUOTES:
                return False
            if (
                e["type"] in _CONTINUOUS_AUTO or e["type"] in BLOCKQUOTES
            ) and kinds & _CONTINUOUS_AUTO:
                return False
            if e["type"] in BLOCKQUOTES and kinds & BLOCKQUOTES:
                return False
            if kinds & set(SPLITTABLE):
                return False
        if e["type"] in last_end:
            if last_end[e["type"]] >= e["offset"]:
                return False
            last_end[e["type"]] = end_of(e)
        stack.append(e)
    return True


def fix_entities(entities: list[Entity]) -> list[Entity]:
    entities = sort_entities(entities)
    if _entities_valid(entities):
        return entities
    splittable = [e for e in entities if e["type"] in SPLITTABLE]
    quotes = [e for e in entities if e["type"] in BLOCKQUOTES]
    continuous = _remove_intersecting(
        [e for e in entities if e["type"] not in SPLITTABLE and e["type"] not in BLOCKQUOTES]
    )
    if quotes:
        quotes = _remove_intersecting(quotes)
        continuous = sort_entities(remove_crossing_blockquote(continuous, quotes) + quotes)
    if not splittable:
        return continuous
    return sort_entities(split_entities(splittable, continuous) + continuous)
