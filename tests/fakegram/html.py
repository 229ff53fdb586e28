"""Telegram's HTML parse mode, modelled on TDLib's ``parse_html`` byte for byte.

``parse_html`` turns the HTML a bot sends into plain text plus Bot API entity dicts
(offsets and lengths in UTF-16 code units) or raises ``HtmlError`` with the detail Telegram
puts after "Bad Request: can't parse entities: " (byte offsets are into the UTF-8 source).

Telegram itself tolerates a few things that are almost always bugs in a bot; with
``strict=True`` (the fake's default) these are refused too, with details that say so:
a ``&`` that does not start a known entity, an attribute the tag does not support, and a
blockquote inside a blockquote (Telegram silently drops the inner one).
"""

from __future__ import annotations

from typing import Any

from .entities import check_link, sort_entities

SUPPORTED_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_SIMPLE = {
    "i": "italic",
    "em": "italic",
    "b": "bold",
    "strong": "bold",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "u": "underline",
    "ins": "underline",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
_ALLOWED_ATTRS = {
    "a": {b"href"},
    "code": {b"class"},
    "span": {b"class"},
    "tg-emoji": {b"emoji-id"},
    "blockquote": {b"expandable"},
}
_SPACES = frozenset(b" \t\r\n\v\0")
_ALNUM = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_NAMED = {b"lt": ord("<"), b"gt": ord(">"), b"amp": ord("&"), b"quot": ord('"')}


class HtmlError(ValueError):
    """The HTML was refused; ``str(err)`` is Telegram's detail text."""


def _decode_entity(t: bytes, pos: int) -> tuple[int, int] | None:
    """Decode an HTML entity starting at ``t[pos] == '&'``: (code point, next position)."""
    end = pos + 1
    code = 0
    if t[end] == ord("#"):
        end += 1
        if t[end] == ord("x"):
            end += 1
            while t[end] in _HEX:
                code = code * 16 + int(chr(t[end]), 16)
                end += 1
        else:
            while 0x30 <= t[end] <= 0x39:
                code = code * 10 + t[end] - 0x30
                end += 1
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return None
    else:
        while chr(t[end]).isascii() and chr(t[end]).isalpha():
            end += 1
        named = _NAMED.get(t[pos + 1 : end])
        if named is None:
            return None
        code = named
    if t[end] == ord(";"):
        end += 1
    return code, end


def _byte_lower(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").translate(_ASCII_LOWER)


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


class _Open:
    __slots__ = ("arg", "name", "out_pos", "u16")

    def __init__(self, name: str, arg: str, u16: int, out_pos: int) -> None:
        self.name, self.arg, self.u16, self.out_pos = name, arg, u16, out_pos


def parse_html(
    source: str, *, strict: bool = False, users: dict[int, dict[str, Any]] | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram HTML. Returns (plain text, entities) before Telegram's trimming/fixing."""
    data = source.encode("utf-8", "surrogatepass")
    n = len(data)
    t = data + b"\0"
    out = bytearray()
    entities: list[dict[str, Any]] = []
    stack: list[_Open] = []
    u16 = 0
    i = 0
    while i < n:
        c = t[i]
        if c == 0x26:  # '&'
            dec = _decode_entity(t, i)
            if dec is not None:
                code, i = dec
                u16 += 2 if code > 0xFFFF else 1
                out += chr(code).encode("utf-8", "surrogatepass")
                continue
            if strict:
                raise HtmlError(
                    f'Bare "&" that does not start an HTML entity at byte offset {i} (Telegram '
                    "would show it literally; escape it as &amp; — refused by the fake's strict "
                    "mode)"
                )
        if c != 0x3C:  # not '<'
            if (c & 0xC0) != 0x80:
                u16 += 2 if c >= 0xF0 else 1
            out.append(c)
            i += 1
            continue
        begin = i
        i += 1
        if t[i] != ord("/"):
            i = _start_tag(t, begin, i, stack, u16, len(out), strict)
        else:
            if not stack:
                raise HtmlError(f"Unexpected end tag at byte offset {begin}")
            while t[i] not in _SPACES and t[i] != ord(">"):
                i += 1
            end_name = _byte_lower(t[begin + 2 : i])
            while t[i] in _SPACES and t[i] != 0:
                i += 1
            if t[i] != ord(">"):
                raise HtmlError(f"Unclosed end tag at byte offset {begin}")
            top = stack[-1]
            if end_name and end_name != top.name:
                raise HtmlError(
                    f'Unmatched end tag at byte offset {begin}, expected "</{top.name}>", '
                    f'found "</{end_name}>"'
                )
            if u16 > top.u16:
                _close(top, u16, out, entities, users or {})
            stack.pop()
            i += 1
    if stack:
        raise HtmlError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    for ent in entities:
        if ent["type"] == "code":
            ent.pop("language", None)
    try:
        text = bytes(out).decode("utf-8")
    except UnicodeDecodeError:
        raise HtmlError(
            "Text contains invalid Unicode characters after decoding HTML entities, check for "
            "unmatched surrogate code units"
        ) from None
    return text, sort_entities(entities)


def _start_tag(
    t: bytes, begin: int, i: int, stack: list[_Open], u16: int, out_pos: int, strict: bool
) -> int:
    """Parse ``<name attr=...>`` starting after '<'; push it; return the index after '>'."""
    while t[i] not in _SPACES and t[i] != ord(">"):
        i += 1
    if t[i] == 0:
        raise HtmlError(f"Unclosed start tag at byte offset {begin}")
    name = _byte_lower(t[begin + 1 : i])
    if name not in SUPPORTED_TAGS:
        raise HtmlError(f'Unsupported start tag "{name}" at byte offset {begin}')
    arg = ""
    while t[i] != ord(">"):
        while t[i] != 0 and t[i] in _SPACES:
            i += 1
        if t[i] == ord(">"):
            break
        attr_begin = i
        while t[i] not in _SPACES and t[i] not in b"=>/\"'":
            i += 1
        attr = t[attr_begin:i]
        if not attr:
            raise HtmlError(f'Empty attribute name in the tag "{name}" at byte offset {begin}')
        while t[i] != 0 and t[i] in _SPACES:
            i += 1
        if t[i] != ord("="):
            if t[i] == 0:
                raise HtmlError(f'Unclosed start tag "{name}" at byte offset {begin}')
            if name == "blockquote" and attr == b"expandable":
                arg = "1"
            elif strict and attr not in _ALLOWED_ATTRS.get(name, set()):
                _refuse_attr(name, attr, begin)
            continue
        i += 1
        while t[i] != 0 and t[i] in _SPACES:
            i += 1
        if t[i] == 0:
            raise HtmlError(f'Unclosed start tag "{name}" at byte offset {begin}')
        if t[i] not in (ord('"'), ord("'")):
            token_begin = i
            while t[i] in _ALNUM or t[i] in b".-":
                i += 1
            value = _byte_lower(t[token_begin:i])
            if t[i] not in _SPACES and t[i] != ord(">"):
                raise HtmlError(f"Unexpected end of name token at byte offset {token_begin}")
        else:
            quote = t[i]
            i += 1
            buf = bytearray()
            while t[i] != quote and t[i] != 0:
                if t[i] == 0x26:
                    dec = _decode_entity(t, i)
                    if dec is not None:
                        buf += chr(dec[0]).encode("utf-8", "surrogatepass")
                        i = dec[1]
                        continue
                buf.append(t[i])
                i += 1
            if t[i] == quote:
                i += 1
            value = bytes(buf).decode("utf-8", "replace")
        if t[i] == 0:
            raise HtmlError(f"Unclosed start tag at byte offset {begin}")
        if name == "a" and attr == b"href":
            arg = value
        elif name == "code" and attr == b"class" and value.startswith("language-"):
            arg = value[9:]
        elif name == "span" and attr == b"class" and value.startswith("tg-"):
            arg = value[3:]
        elif name == "tg-emoji" and attr == b"emoji-id":
            arg = value
        elif name == "blockquote" and attr == b"expandable":
            arg = "1"
        elif strict and attr not in _ALLOWED_ATTRS.get(name, set()):
            _refuse_attr(name, attr, begin)
    if name == "span" and arg != "spoiler":
        raise HtmlError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin}')
    if strict and name == "blockquote" and any(o.name == "blockquote" for o in stack):
        raise HtmlError(
            f"Nested blockquote at byte offset {begin} (Telegram drops the inner one; refused by "
            "the fake's strict mode)"
        )
    stack.append(_Open(name, arg, u16, out_pos))
    return i + 1


def _refuse_attr(name: str, attr: bytes, begin: int) -> None:
    allowed = ", ".join(sorted(a.decode() for a in _ALLOWED_ATTRS.get(name, set()))) or "none"
    raise HtmlError(
        f'Attribute "{attr.decode("utf-8", "replace")}" is not supported in the tag "{name}" at '
        f"byte offset {begin} (allowed: {allowed}; Telegram ignores it; refused by the fake's "
        "strict mode)"
    )


def _close(
    top: _Open,
    u16: int,
    out: bytearray,
    entities: list[dict[str, Any]],
    users: dict[int, dict[str, Any]],
) -> None:
    offset, length = top.u16, u16 - top.u16
    name = top.name
    ent: dict[str, Any]
    if name in _SIMPLE:
        entities.append({"offset": offset, "length": length, "type": _SIMPLE[name]})
    elif name == "tg-emoji":
        try:
            emoji_id = int(top.arg)
        except ValueError:
            emoji_id = 0
        if emoji_id == 0 or not -(2**63) <= emoji_id < 2**63:
            raise HtmlError("Invalid custom emoji identifier specified")
        entities.append(
            {
                "offset": offset,
                "length": length,
                "type": "custom_emoji",
                "custom_emoji_id": str(emoji_id),
            }
        )
    elif name == "a":
        url = top.arg or bytes(out[top.out_pos :]).decode("utf-8", "replace")
        user_id = _link_user_id(url)
        if user_id is not None:
            user = users.get(user_id, {"id": user_id, "is_bot": False, "first_name": ""})
            entities.append(
                {"offset": offset, "length": length, "type": "text_mention", "user": user}
            )
        else:
            checked = check_link(url)
            if checked is not None:
                entities.append(
                    {"offset": offset, "length": length, "type": "text_link", "url": checked}
                )
    elif name == "pre":
        last = entities[-1] if entities else None
        if (
            last is not None
            and last["type"] == "code"
            and last["offset"] == offset
            and last["length"] == length
            and last.get("language")
        ):
            last["type"] = "pre"
        else:
            entities.append({"offset": offset, "length": length, "type": "pre"})
    elif name == "code":
        last = entities[-1] if entities else None
        if (
            last is not None
            and last["type"] == "pre"
            and last["offset"] == offset
            and last["length"] == length
            and top.arg
        ):
            last["language"] = top.arg
        else:
            ent = {"offset": offset, "length": length, "type": "code"}
            if top.arg:
                ent["language"] = top.arg
            entities.append(ent)
    elif name == "blockquote":
        kind = "expandable_blockquote" if top.arg else "blockquote"
        entities.append({"offset": offset, "length": length, "type": kind})


def _link_user_id(url: str) -> int | None:
    low = url.lower()
    if not low.startswith("tg://user?"):
        return None
    for part in url[len("tg://user?") :].split("&"):
        key, _, value = part.partition("=")
        if key == "id" and value.isdigit() and int(value) > 0:
            return int(value)
    return None
