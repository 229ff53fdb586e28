"""Request parameters of a Bot API call, as a query string, form, multipart body or JSON."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from .markup import decode_json
from .models import ApiError, Upload, bad_request

_INT_FIELDS = frozenset(
    {
        "message_id",
        "offset",
        "limit",
        "max_connections",
        "cache_time",
        "reply_to_message_id",
        "message_thread_id",
        "user_id",
    }
)
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "allowed_updates",
        "commands",
        "scope",
        "reply_parameters",
        "link_preview_options",
    }
)


@dataclass(frozen=True)
class Described:
    """A result that Telegram answers with a ``description`` next to it."""

    result: Any
    description: str


class Params:
    """Request parameters from a query string, form, multipart body or JSON body."""

    def __init__(self, raw: dict[str, Any], files: dict[str, Upload]) -> None:
        self.raw = raw
        self.files = files

    def get(self, name: str) -> Any:
        return self.raw.get(name)

    def has(self, name: str) -> bool:
        return self.raw.get(name) not in (None, "")

    def string(self, name: str) -> str | None:
        value = self.raw.get(name)
        return None if value is None else str(value)

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.raw.get(name)
        if value in (None, ""):
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def number(self, name: str, default: float) -> float:
        value = self.raw.get(name)
        if value in (None, ""):
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def flag(self, name: str) -> bool:
        value = self.raw.get(name)
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1", "yes")
        return bool(value)

    def upload(self, name: str) -> Upload | str | None:
        if name in self.files:
            return self.files[name]
        value = self.raw.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            return self.files.get(value[len("attach://") :])
        return None if value in (None, "") else str(value)

    def decoded(self) -> dict[str, Any]:
        """Parameters as a test wants to read them: JSON decoded, ids as ints, files as Upload."""
        out: dict[str, Any] = {}
        for key, value in self.raw.items():
            if key in _JSON_FIELDS and isinstance(value, str):
                with contextlib.suppress(ApiError):
                    value = decode_json(value, key)
            elif (key in _INT_FIELDS or key == "chat_id") and isinstance(value, str):
                with contextlib.suppress(ValueError):
                    value = int(value)
            elif key == "timeout" and isinstance(value, str):
                with contextlib.suppress(ValueError):
                    value = float(value) if "." in value else int(value)
            out[key] = value
        out.update(self.files)
        return out
