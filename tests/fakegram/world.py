"""The fake's state: the bot, users, chats, messages, files, callback queries, commands."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from .flood import FloodControl, FloodLimits
from .formatting import fix_formatted_text, parse_entities_param
from .html import HtmlError, parse_html
from .markup import ScopeKey, decode_json
from .models import (
    ApiError,
    Call,
    CallbackAnswer,
    CallbackQueryRecord,
    FakeChat,
    FakeFile,
    FakeMessage,
    FakeUser,
    Violation,
    bad_request,
)
from .updates import UpdateQueue

BLOCKED = "Forbidden: bot was blocked by the user"
CANT_INITIATE = "Forbidden: bot can't initiate conversation with a user"


class World:
    def __init__(
        self,
        *,
        token: str,
        bot_username: str,
        bot_name: str,
        flood: FloodLimits,
        clock: Callable[[], float],
        callback_answer_timeout: float,
        strict_html: bool,
        privacy_mode: bool,
        webhook_retry_delay: float,
    ) -> None:
        self.token = token
        bot_id = int(token.split(":", 1)[0])
        self.bot_user = FakeUser(bot_id, bot_name, username=bot_username, is_bot=True)
        self.clock = clock
        self.strict_html = strict_html
        self.privacy_mode = privacy_mode
        self.callback_answer_timeout = callback_answer_timeout
        self.flood = FloodControl(flood, clock)
        self.updates = UpdateQueue(clock, webhook_retry_delay)
        self.users: dict[int, FakeUser] = {}
        self.chats: dict[int, FakeChat] = {}
        self.files: dict[str, FakeFile] = {}
        self.queries: dict[str, CallbackQueryRecord] = {}
        self.commands: dict[tuple[ScopeKey, str], list[dict[str, str]]] = {}
        self.calls: list[Call] = []
        self.violations: list[Violation] = []
        self.callback_answers: list[CallbackAnswer] = []
        self._query_seq = 0
        self._file_seq = 0

    # --- lookups ----------------------------------------------------------------------------
    def users_json(self) -> dict[int, dict[str, Any]]:
        return {uid: u.to_dict() for uid, u in self.users.items()}

    def find_chat(self, raw: Any) -> FakeChat:
        """The chat named by a chat_id parameter, or 400 "chat not found"."""
        if raw is None or raw == "":
            raise bad_request("chat_id is empty")
        chat: FakeChat | None = None
        if isinstance(raw, str) and raw.startswith("@"):
            name = raw[1:].lower()
            chat = next(
                (
                    c
                    for c in self.chats.values()
                    if c.username and c.username.lower() == name and c.is_group
                ),
                None,
            )
        else:
            try:
                chat_id = int(raw)
            except (TypeError, ValueError):
                raise bad_request("chat not found") from None
            chat = self.chats.get(chat_id)
            if chat is None and chat_id in self.users:
                raise ApiError(403, CANT_INITIATE)
        if chat is None or chat.deleted:
            raise bad_request("chat not found")
        if chat.blocked:
            raise ApiError(403, BLOCKED)
        return chat

    def resolve_chat_id(self, raw: Any) -> int:
        return self.find_chat(raw).id

    # --- creation ---------------------------------------------------------------------------
    def new_message(self, chat: FakeChat, sender: FakeUser, **fields: Any) -> FakeMessage:
        msg = FakeMessage(
            message_id=chat.next_message_id,
            chat=chat,
            sender=sender,
            date=int(self.clock()),
            **fields,
        )
        chat.next_message_id += 1
        chat.messages.append(msg)
        return msg

    def store_file(
        self, kind: str, filename: str | None, mime: str | None, data: bytes
    ) -> FakeFile:
        self._file_seq += 1
        digest = hashlib.sha1(data).hexdigest()[:10]
        unique = f"AgAD{self._file_seq:04d}{digest}"
        prefix = "BQACAgIAAxkBAAI" if kind == "document" else "AgACAgIAAxkBAAI"
        fake = FakeFile(
            file_id=f"{prefix}{self._file_seq:06d}{digest}",
            file_unique_id=unique,
            kind=kind,
            filename=filename,
            mime_type=mime,
            data=data,
        )
        self.files[fake.file_id] = fake
        return fake

    def new_query(
        self, user: FakeUser, message: FakeMessage, data: str | None
    ) -> CallbackQueryRecord:
        self._query_seq += 1
        qid = f"{abs(user.id)}{self._query_seq:07d}"
        rec = CallbackQueryRecord(qid, user, message, data, self.clock())
        self.queries[qid] = rec
        return rec

    def chat_instance(self, chat: FakeChat) -> str:
        return str(int(hashlib.sha1(f"{self.bot_user.id}:{chat.id}".encode()).hexdigest()[:15], 16))

    # --- formatted text ---------------------------------------------------------------------
    def format_text(
        self, text: str, parse_mode: Any, entities_raw: Any, *, caption: bool
    ) -> tuple[str, str | None, list[dict[str, Any]]]:
        """Parse like Telegram: returns (plain text, html as sent or None, entities)."""
        mode = str(parse_mode or "").lower()
        html: str | None = None
        if mode and mode != "none":
            if mode == "html":
                html = text
                try:
                    plain, entities = parse_html(
                        text, strict=self.strict_html, users=self.users_json()
                    )
                except HtmlError as exc:
                    raise bad_request(f"can't parse entities: {exc}") from None
            elif mode in ("markdown", "markdownv2"):
                raise bad_request(
                    "can't parse entities: the fake Telegram models only the HTML parse mode"
                )
            else:
                raise bad_request("unsupported parse_mode")
        else:
            plain = text
            entities = []
            if entities_raw not in (None, ""):
                decoded = decode_json(entities_raw, "entities")
                entities = parse_entities_param(decoded, self.users_json())
        plain, entities = fix_formatted_text(plain, entities, allow_empty=caption)
        return plain, html, entities

    # --- privacy mode -----------------------------------------------------------------------
    def bot_sees(self, chat: FakeChat, text: str, reply_to: FakeMessage | None) -> bool:
        """Whether a user's message reaches the bot (privacy mode applies in groups)."""
        if not chat.is_group or not self.privacy_mode or chat.bot_is_admin:
            return True
        if reply_to is not None and reply_to.from_bot:
            return True
        me = (self.bot_user.username or "").lower()
        if text.startswith("/"):
            head = text.split(None, 1)[0] if text.strip() else text
            _, at, target = head.partition("@")
            return not at or target.lower() == me
        return f"@{me}" in text.lower()
