"""Plain data objects of the fake Telegram: users, chats, messages and the records a test reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit of Telegram's entity offsets."""
    return len(text.encode("utf-16-le")) // 2


class ApiError(Exception):
    """A Bot API error answer: ``{"ok": false, "error_code": code, "description": ...}``."""

    def __init__(self, code: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


@dataclass
class FakeUser:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_bot: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.last_name:
            out["last_name"] = self.last_name
        if self.username:
            out["username"] = self.username
        if self.language_code:
            out["language_code"] = self.language_code
        return out


@dataclass(frozen=True)
class FakeFile:
    """A stored upload; ``kind`` is "document" or "photo"."""

    file_id: str
    file_unique_id: str
    kind: str
    filename: str | None
    mime_type: str | None
    data: bytes

    @property
    def file_path(self) -> str:
        return f"{self.kind}s/{self.file_unique_id}_{self.filename or 'file'}"


@dataclass(frozen=True)
class Edit:
    """A previous version of a message, kept when the bot edits it."""

    text: str | None
    html: str | None
    entities: list[dict[str, Any]]
    reply_markup: dict[str, Any] | None
    at: float


@dataclass(eq=False)
class FakeMessage:
    message_id: int
    chat: FakeChat
    sender: FakeUser
    date: int
    text: str | None = None
    html: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    reply_markup: dict[str, Any] | None = None
    keyboard: dict[str, Any] | None = (
        None  # a non-inline reply_markup (reply keyboard, force_reply)
    )
    caption: str | None = None
    caption_entities: list[dict[str, Any]] = field(default_factory=list)
    file: FakeFile | None = None
    reply_to: FakeMessage | None = None
    edits: list[Edit] = field(default_factory=list)
    edit_date: int | None = None
    deleted: bool = False
    delivered: bool = True  # False for a group message the bot does not see (privacy mode)

    @property
    def from_bot(self) -> bool:
        return self.sender.is_bot

    @property
    def document(self) -> tuple[str, bytes] | None:
        if self.file is None or self.file.kind != "document":
            return None
        return (self.file.filename or "", self.file.data)

    @property
    def photo(self) -> bytes | None:
        return self.file.data if self.file is not None and self.file.kind == "photo" else None

    @property
    def buttons(self) -> list[list[tuple[str, str | None]]]:
        """Inline keyboard rows as ``(text, callback_data)``; callback_data None for url buttons."""
        if not self.reply_markup:
            return []
        return [
            [(b["text"], b.get("callback_data")) for b in row]
            for row in self.reply_markup.get("inline_keyboard", [])
        ]

    def to_dict(self, *, with_reply: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "message_id": self.message_id,
            "from": self.sender.to_dict(),
            "chat": self.chat.to_dict(),
            "date": self.date,
        }
        if self.edit_date is not None:
            out["edit_date"] = self.edit_date
        if with_reply and self.reply_to is not None:
            out["reply_to_message"] = self.reply_to.to_dict(with_reply=False)
        if self.text is not None:
            out["text"] = self.text
            if self.entities:
                out["entities"] = self.entities
        if self.file is not None:
            f = self.file
            if f.kind == "photo":
                out["photo"] = [
                    {
                        "file_id": f.file_id,
                        "file_unique_id": f.file_unique_id,
                        "file_size": len(f.data),
                        "width": 320,
                        "height": 320,
                    }
                ]
            else:
                doc: dict[str, Any] = {"file_id": f.file_id, "file_unique_id": f.file_unique_id}
                if f.filename:
                    doc["file_name"] = f.filename
                if f.mime_type:
                    doc["mime_type"] = f.mime_type
                doc["file_size"] = len(f.data)
                out["document"] = doc
        if self.caption:
            out["caption"] = self.caption
            if self.caption_entities:
                out["caption_entities"] = self.caption_entities
        if self.reply_markup is not None:
            out["reply_markup"] = self.reply_markup
        return out

    def __repr__(self) -> str:
        who = "bot" if self.from_bot else f"user {self.sender.id}"
        flags = " deleted" if self.deleted else ""
        body = self.text if self.text is not None else f"<file {self.document or self.photo!r:.40}>"
        return f"<FakeMessage {self.chat.id}/{self.message_id} from {who}{flags}: {body!r:.120}>"


@dataclass(eq=False)
class FakeChat:
    id: int
    type: str  # "private" | "group" | "supergroup"
    title: str | None = None
    username: str | None = None
    user: FakeUser | None = None  # the other side of a private chat
    members: list[FakeUser] = field(default_factory=list)
    admin_ids: set[int] = field(default_factory=set)
    bot_is_admin: bool = False
    blocked: bool = False
    deleted: bool = False
    messages: list[FakeMessage] = field(default_factory=list)
    next_message_id: int = 1

    @property
    def is_group(self) -> bool:
        return self.type in ("group", "supergroup")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.type == "private" and self.user is not None:
            out["first_name"] = self.user.first_name
            if self.user.last_name:
                out["last_name"] = self.user.last_name
            if self.user.username:
                out["username"] = self.user.username
        else:
            out["title"] = self.title or ""
            if self.username:
                out["username"] = self.username
        out["type"] = self.type
        return out

    def find(self, message_id: int) -> FakeMessage | None:
        # message ids grow by one per message, so the list index is a good first guess
        idx = message_id - 1
        if 0 <= idx < len(self.messages) and self.messages[idx].message_id == message_id:
            return self.messages[idx]
        for msg in self.messages:
            if msg.message_id == message_id:
                return msg
        return None

    def __repr__(self) -> str:
        name = self.title or (self.user.first_name if self.user else "")
        return f"<FakeChat {self.id} {self.type} {name!r}>"


@dataclass(frozen=True)
class Call:
    """One Bot API request as the fake saw it and answered it."""

    method: str
    params: dict[str, Any]
    status: int
    response: dict[str, Any] | None  # None when the connection was dropped
    at: float


@dataclass(frozen=True)
class Violation:
    """A non-2xx answer of the fake (``injected`` is True for faults from ``fail()``)."""

    method: str
    error_code: int
    description: str
    params: dict[str, Any]
    injected: bool = False


class CallbackAnswer(NamedTuple):
    """An answerCallbackQuery the bot made: ``(query_id, text, show_alert, at)``."""

    query_id: str
    text: str | None
    show_alert: bool
    at: float


@dataclass
class CallbackQueryRecord:
    id: str
    user: FakeUser
    message: FakeMessage
    data: str | None
    pressed_at: float
    answered: bool = False


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request."""

    filename: str | None
    content_type: str | None
    data: bytes

    def __repr__(self) -> str:
        return f"Upload({self.filename!r}, {self.content_type!r}, {len(self.data)} bytes)"
