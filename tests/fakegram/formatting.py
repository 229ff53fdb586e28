"""Telegram's processing of a formatted text after parsing (TDLib's fix_formatted_text).

- control characters become spaces, ``\\r`` and a few invisible characters are removed;
- entities are fixed (entities.py); leading and trailing spaces/newlines are trimmed, with
  entities shifted and clipped;
- bot commands, @mentions (4+ chars), #hashtags and http(s)/ftp URLs are detected and added
  as entities where nothing else covers them (e-mails, cashtags, phone numbers and bare
  domains are not detected by the fake);
- an explicit ``entities`` parameter is validated; detected types in it are dropped.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from .entities import (
    BLOCKQUOTES,
    KNOWN_TYPES,
    SPLITTABLE,
    USER_TYPES,
    Entity,
    check_link,
    end_of,
    fix_entities,
    remove_crossing_blockquote,
    sort_entities,
    split_entities,
)
from .models import bad_request, utf16_len

# --- cleaning and trimming ----------------------------------------------------------------

_REMOVED = frozenset("\r\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u0333\u033f\u030a")


def _clean(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    out: list[str] = []
    new_pos = {0: 0}
    old = new = 0
    for ch in text:
        width = 2 if ord(ch) > 0xFFFF else 1
        if ch in _REMOVED:
            pass
        elif ord(ch) < 32 and ch != "\n":
            out.append(" ")
            new += 1
        else:
            out.append(ch)
            new += width
        old += width
        new_pos[old] = new
    for e in entities:
        start, stop = e["offset"], end_of(e)
        if start > old:
            raise bad_request(
                "can't parse entities: Entity begins after the end of the text at UTF-16 "
                f"offset {start}"
            )
        if stop > old:
            raise bad_request(
                f"can't parse entities: Entity beginning at UTF-16 offset {start} ends after the "
                f"end of the text at UTF-16 offset {stop}"
            )
        if start not in new_pos or stop not in new_pos:
            raise bad_request(
                f"can't parse entities: Entity beginning at UTF-16 offset {start} begins or ends "
                "in a middle of a UTF-16 symbol"
            )
        e["offset"], e["length"] = new_pos[start], new_pos[stop] - new_pos[start]
    return "".join(out), [e for e in entities if e["length"] > 0]


def fix_formatted_text(
    text: str, entities: list[Entity], *, allow_empty: bool, detect: bool = True
) -> tuple[str, list[Entity]]:
    """Clean, fix and trim like Telegram; raises ApiError "Text must be non-empty" style errors."""
    entities = [dict(e) for e in entities if e["length"] > 0]
    entities = [e for e in entities if e["type"] != "text_link" or e.get("url")]
    entities = fix_entities(entities)
    text, entities = _clean(text, entities)
    stripped = text.rstrip(" \n")
    if not stripped:
        if allow_empty:
            return "", []
        raise bad_request("message must be non-empty")
    entities = fix_entities(entities)
    limit = utf16_len(stripped)
    entities = [e for e in entities if e["offset"] < limit]
    for e in entities:
        e["length"] = min(e["length"], limit - e["offset"])
    first = entities[0]["offset"] if entities else len(stripped)
    lead = 0
    while lead < first and stripped[lead] in " \n":
        lead += 1
    text = stripped[lead:]
    for e in entities:
        e["offset"] -= lead
    entities = sort_entities(entities)
    if detect:
        entities = merge_new_entities(entities, find_entities(text))
    return text, entities


# --- detection of commands, mentions, hashtags, urls ---------------------------------------


def _word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


_COMMAND = re.compile(r"/([A-Za-z0-9_]{1,64})(@[A-Za-z0-9_]{3,32})?")
_MENTION = re.compile(r"@([A-Za-z0-9_]{2,32})")
_HASHTAG = re.compile(r"#([\w\u200c\u00b7]{1,256})")
_URL = re.compile(r"(?i)\b(?:https?|ftp)://[^\s<>\"]+")


def find_entities(text: str) -> list[Entity]:
    found: list[tuple[int, int, str]] = []
    for m in _COMMAND.finditer(text):
        before = text[m.start() - 1] if m.start() else ""
        after = text[m.end()] if m.end() < len(text) else ""
        if (before and (_word(before) or before in "/<>")) or (
            after and (_word(after) or after in "/<>")
        ):
            continue
        found.append((m.start(), m.end(), "bot_command"))
    for m in _MENTION.finditer(text):
        before = text[m.start() - 1] if m.start() else ""
        after = text[m.end()] if m.end() < len(text) else ""
        name = m.group(1)
        if (before and _word(before)) or (after and _word(after)):
            continue
        if len(name) < 4 and name.lower() not in ("gif", "vid", "pic"):
            continue
        found.append((m.start(), m.end(), "mention"))
    for m in _HASHTAG.finditer(text):
        before = text[m.start() - 1] if m.start() else ""
        after = text[m.end()] if m.end() < len(text) else ""
        if (before and _word(before)) or after == "#" or not any(c.isalpha() for c in m.group(1)):
            continue
        found.append((m.start(), m.end(), "hashtag"))
    for m in _URL.finditer(text):
        url = m.group(0)
        while url and (
            url[-1] in ".:;,('?!`" or (url[-1] == ")" and url.count("(") < url.count(")"))
        ):
            url = url[:-1]
        if urlsplit(url).hostname:
            found.append((m.start(), m.start() + len(url), "url"))
    found.sort(key=lambda f: (f[0], -(f[1] - f[0])))
    result: list[Entity] = []
    last_end = 0
    for start, stop, kind in found:
        if start >= last_end:
            last_end = stop
            offset = utf16_len(text[:start])
            result.append({"offset": offset, "length": utf16_len(text[start:stop]), "type": kind})
    return result


def merge_new_entities(entities: list[Entity], new: list[Entity]) -> list[Entity]:
    if not new:
        return entities
    splittable = [e for e in entities if e["type"] in SPLITTABLE]
    quotes = [e for e in entities if e["type"] in BLOCKQUOTES]
    continuous = [
        e for e in entities if e["type"] not in SPLITTABLE and e["type"] not in BLOCKQUOTES
    ]
    new = remove_crossing_blockquote(new, quotes)
    merged: list[Entity] = []
    ni = 0
    for old in continuous:
        while ni < len(new) and end_of(new[ni]) <= old["offset"]:
            merged.append(new[ni])
            ni += 1
        merged.append(old)
        while ni < len(new) and new[ni]["offset"] < end_of(old):
            ni += 1
    merged.extend(new[ni:])
    merged = sort_entities(merged + quotes)
    if not splittable:
        return merged
    return sort_entities(split_entities(splittable, merged) + merged)


def parse_entities_param(raw: Any, users: dict[int, dict[str, Any]]) -> list[Entity]:
    """Validate an explicit ``entities``/``caption_entities`` parameter (already JSON-decoded)."""
    if not isinstance(raw, list):
        raise bad_request("can't parse entities JSON object")
    out: list[Entity] = []
    for item in raw:
        if not isinstance(item, dict):
            raise bad_request("can't parse MessageEntity: MessageEntity must be an Object")
        kind, offset, length = item.get("type"), item.get("offset"), item.get("length")
        if not isinstance(kind, str):
            raise bad_request('can\'t parse MessageEntity: Field "type" must be of type String')
        if not isinstance(offset, int) or not isinstance(length, int):
            raise bad_request('can\'t parse MessageEntity: Field "offset" must be a valid Number')
        if kind not in KNOWN_TYPES:
            raise bad_request(f'can\'t parse MessageEntity: Unsupported type specified: "{kind}"')
        if not 0 <= offset <= 1_000_000 or not 0 <= length <= 1_000_000:
            raise bad_request(
                f"can't parse entities: Receive an entity with incorrect offset {offset}"
            )
        if kind not in USER_TYPES:
            continue  # detected entities are recomputed by Telegram
        ent: Entity = {"offset": offset, "length": length, "type": kind}
        if kind == "text_link":
            url = str(item.get("url", ""))
            checked = check_link(url)
            if checked is None:
                raise bad_request(f"entity URL '{url}' is invalid: Wrong HTTP URL")
            ent["url"] = checked
        elif kind == "text_mention":
            user = item.get("user") or {}
            uid = user.get("id") if isinstance(user, dict) else None
            if not isinstance(uid, int):
                raise bad_request('can\'t parse MessageEntity: Field "user" must be an Object')
            ent["user"] = users.get(uid, user)
        elif kind == "custom_emoji":
            ent["custom_emoji_id"] = str(item.get("custom_emoji_id", ""))
        elif kind == "pre" and item.get("language"):
            ent["language"] = str(item["language"])
        out.append(ent)
    return out
