"""The Bot API methods the fake implements, on top of ``World``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .markup import (
    check_language_code,
    decode_json,
    parse_commands,
    parse_reply_markup,
    scope_key,
)
from .models import (
    ApiError,
    CallbackAnswer,
    Edit,
    FakeChat,
    FakeMessage,
    Upload,
    bad_request,
    utf16_len,
)
from .params import Described, Params
from .updates import Webhook
from .world import World

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
MAX_UPLOAD = {"document": 50 * 1024 * 1024, "photo": 10 * 1024 * 1024}


Handler = Callable[[Params], Awaitable[Any]]


#: what a photo upload starts with: PNG, JPEG, GIF, WebP (RIFF), BMP
IMAGE_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF", b"BM")


class BotApi:
    def __init__(self, world: World) -> None:
        self.w = world
        self.methods: dict[str, tuple[str, Handler]] = {}
        for name in (
            "getMe",
            "getUpdates",
            "setWebhook",
            "deleteWebhook",
            "getWebhookInfo",
            "sendMessage",
            "editMessageText",
            "editMessageReplyMarkup",
            "deleteMessage",
            "answerCallbackQuery",
            "sendChatAction",
            "sendDocument",
            "sendPhoto",
            "setMyCommands",
            "getMyCommands",
            "deleteMyCommands",
            "getFile",
            "close",
            "logOut",
        ):
            attr = "m_" + "".join("_" + c.lower() if c.isupper() else c for c in name)
            self.methods[name.lower()] = (name, getattr(self, attr))

    # --- bot and updates --------------------------------------------------------------------
    async def m_get_me(self, p: Params) -> dict[str, Any]:
        return {
            **self.w.bot_user.to_dict(),
            "can_join_groups": True,
            "can_read_all_group_messages": not self.w.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def m_get_updates(self, p: Params) -> list[dict[str, Any]]:
        if p.has("allowed_updates"):
            allowed = decode_json(p.get("allowed_updates"), "allowed_updates")
            if not isinstance(allowed, list):
                raise bad_request("can't parse allowed_updates JSON object")
            self.w.updates.set_allowed(allowed)
        limit = min(100, max(1, p.integer("limit", 100) or 100))
        timeout = max(0.0, p.number("timeout", 0.0))
        return await self.w.updates.poll(p.integer("offset", 0) or 0, limit, timeout)

    async def m_set_webhook(self, p: Params) -> Described:
        url = p.string("url") or ""
        if not url:
            return await self.m_delete_webhook(p)
        if not url.lower().startswith(("http://", "https://")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = p.string("secret_token")
        if secret is not None and (
            not 1 <= len(secret) <= 256
            or not all(c.isascii() and (c.isalnum() or c in "_-") for c in secret)
        ):
            raise bad_request("secret token contains unallowed characters")
        max_conn = p.integer("max_connections", 40) or 40
        if not 1 <= max_conn <= 100:
            raise bad_request("invalid max_connections specified")
        if p.has("allowed_updates"):
            allowed = decode_json(p.get("allowed_updates"), "allowed_updates")
            self.w.updates.set_allowed(allowed if isinstance(allowed, list) else [])
        if p.flag("drop_pending_updates"):
            self.w.updates.drop_pending()
        self.w.updates.set_webhook(Webhook(url, secret or None, max_conn))
        return Described(True, "Webhook was set")

    async def m_delete_webhook(self, p: Params) -> Described:
        if p.flag("drop_pending_updates"):
            self.w.updates.drop_pending()
        if self.w.updates.webhook is None:
            return Described(True, "Webhook is already deleted")
        self.w.updates.set_webhook(None)
        return Described(True, "Webhook was deleted")

    async def m_get_webhook_info(self, p: Params) -> dict[str, Any]:
        q = self.w.updates
        hook = q.webhook
        info: dict[str, Any] = {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": q.pending_count(),
        }
        if hook is not None:
            info["max_connections"] = hook.max_connections
            info["ip_address"] = "127.0.0.1"
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
        if q.allowed is not None:
            info["allowed_updates"] = sorted(q.allowed)
        return info

    # --- messages ---------------------------------------------------------------------------
    def _message_text(self, p: Params) -> tuple[str, str | None, list[dict[str, Any]]]:
        """A message's text after entity parsing, checked as sendMessage and edits check it."""
        raw = p.string("text")
        if not raw:
            raise bad_request("message text is empty")
        text, html, entities = self.w.format_text(
            raw, p.get("parse_mode"), p.get("entities"), caption=False
        )
        if utf16_len(text) > 4096:
            raise bad_request("message is too long")
        return text, html, entities

    async def m_send_message(self, p: Params) -> dict[str, Any]:
        chat = self.w.find_chat(p.get("chat_id"))
        text, html, entities = self._message_text(p)
        inline, other = parse_reply_markup(
            p.get("reply_markup"), inline_only=False, strict=self.w.strict_html
        )
        reply_to = self._reply_target(chat, p)
        self.w.flood.charge(chat.id, chat.is_group)
        msg = self.w.new_message(
            chat,
            self.w.bot_user,
            text=text,
            html=html,
            entities=entities,
            reply_markup=inline,
            keyboard=other,
            reply_to=reply_to,
        )
        return msg.to_dict()

    def _reply_target(self, chat: FakeChat, p: Params) -> FakeMessage | None:
        target_id = p.integer("reply_to_message_id")
        allow = p.flag("allow_sending_without_reply")
        if p.has("reply_parameters"):
            rp = decode_json(p.get("reply_parameters"), "reply parameters")
            if not isinstance(rp, dict) or not isinstance(rp.get("message_id"), int):
                raise bad_request("can't parse reply parameters JSON object")
            target_id = rp["message_id"]
            allow = bool(rp.get("allow_sending_without_reply"))
        if target_id is None:
            return None
        target = chat.find(target_id)
        if target is None or target.deleted:
            if allow:
                return None
            raise bad_request("message to be replied not found")
        return target

    def _target_message(self, p: Params, missing: str) -> tuple[FakeChat, FakeMessage]:
        if p.has("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        chat = self.w.find_chat(p.get("chat_id"))
        message_id = p.integer("message_id")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        msg = chat.find(message_id)
        if msg is None or msg.deleted:
            raise bad_request(missing)
        return chat, msg

    def _apply_edit(self, msg: FakeMessage, **changes: Any) -> dict[str, Any]:
        msg.edits.append(
            Edit(msg.text, msg.html, list(msg.entities), msg.reply_markup, self.w.clock())
        )
        for key, value in changes.items():
            setattr(msg, key, value)
        msg.edit_date = int(self.w.clock())
        return msg.to_dict()

    async def m_edit_message_text(self, p: Params) -> dict[str, Any]:
        chat, msg = self._target_message(p, "message to edit not found")
        if not msg.from_bot:
            raise bad_request("message can't be edited")
        if msg.text is None:
            raise bad_request("there is no text in the message to edit")
        text, html, entities = self._message_text(p)
        inline, _ = parse_reply_markup(
            p.get("reply_markup"), inline_only=True, strict=self.w.strict_html
        )
        if text == msg.text and entities == msg.entities and inline == msg.reply_markup:
            raise bad_request(NOT_MODIFIED)
        self.w.flood.charge(chat.id, chat.is_group, edit=True)
        return self._apply_edit(msg, text=text, html=html, entities=entities, reply_markup=inline)

    async def m_edit_message_reply_markup(self, p: Params) -> dict[str, Any]:
        chat, msg = self._target_message(p, "message to edit not found")
        if not msg.from_bot:
            raise bad_request("message can't be edited")
        inline, _ = parse_reply_markup(
            p.get("reply_markup"), inline_only=True, strict=self.w.strict_html
        )
        if inline == msg.reply_markup:
            raise bad_request(NOT_MODIFIED)
        self.w.flood.charge(chat.id, chat.is_group, edit=True)
        return self._apply_edit(msg, reply_markup=inline)

    async def m_delete_message(self, p: Params) -> bool:
        chat, msg = self._target_message(p, "message to delete not found")
        if chat.is_group and not msg.from_bot and not chat.bot_is_admin:
            raise bad_request("message can't be deleted")
        msg.deleted = True
        return True

    async def m_answer_callback_query(self, p: Params) -> bool:
        qid = p.string("callback_query_id") or ""
        rec = self.w.queries.get(qid)
        now = self.w.clock()
        if rec is None or rec.answered or now - rec.pressed_at > self.w.callback_answer_timeout:
            raise bad_request(QUERY_TOO_OLD)
        text = p.string("text")
        if text is not None and len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        rec.answered = True
        self.w.callback_answers.append(CallbackAnswer(qid, text or None, p.flag("show_alert"), now))
        return True

    async def m_send_chat_action(self, p: Params) -> bool:
        self.w.find_chat(p.get("chat_id"))
        if p.string("action") not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    async def m_send_document(self, p: Params) -> dict[str, Any]:
        return self._send_file(p, "document")

    async def m_send_photo(self, p: Params) -> dict[str, Any]:
        return self._send_file(p, "photo")

    def _send_file(self, p: Params, kind: str) -> dict[str, Any]:
        chat = self.w.find_chat(p.get("chat_id"))
        source = p.upload(kind)
        if source is None:
            raise bad_request(f"there is no {kind} in the request")
        if isinstance(source, Upload):
            if not source.data:
                raise bad_request("file must be non-empty")
            if len(source.data) > MAX_UPLOAD[kind]:
                raise ApiError(413, "Request Entity Too Large")
            if kind == "photo" and not source.data.startswith(IMAGE_SIGNATURES):
                # Telegram decodes a photo to make its sizes; anything else is refused.
                raise bad_request("IMAGE_PROCESS_FAILED")
        elif source not in self.w.files:
            raise bad_request("wrong file identifier/HTTP URL specified")
        raw_caption = p.string("caption") or ""
        caption, html, cap_entities = self.w.format_text(
            raw_caption, p.get("parse_mode"), p.get("caption_entities"), caption=True
        )
        html = html if raw_caption else None
        if utf16_len(caption) > 1024:
            raise bad_request("message caption is too long")
        inline, other = parse_reply_markup(
            p.get("reply_markup"), inline_only=False, strict=self.w.strict_html
        )
        reply_to = self._reply_target(chat, p)
        self.w.flood.charge(chat.id, chat.is_group)
        if isinstance(source, Upload):
            name = source.filename if kind == "document" else None
            stored = self.w.store_file(kind, name, source.content_type, source.data)
        else:
            stored = self.w.files[source]
        msg = self.w.new_message(
            chat,
            self.w.bot_user,
            file=stored,
            caption=caption or None,
            html=html,
            caption_entities=cap_entities,
            reply_markup=inline,
            keyboard=other,
            reply_to=reply_to,
        )
        return msg.to_dict()

    async def m_get_file(self, p: Params) -> dict[str, Any]:
        stored = self.w.files.get(p.string("file_id") or "")
        if stored is None:
            raise bad_request("invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    # --- commands ---------------------------------------------------------------------------
    def _command_key(self, p: Params) -> tuple[tuple[Any, ...], str]:
        scope = scope_key(p.get("scope"), self.w.resolve_chat_id)
        return scope, check_language_code(p.get("language_code"))

    async def m_set_my_commands(self, p: Params) -> bool:
        commands = parse_commands(p.get("commands") if p.has("commands") else "[]")
        key = self._command_key(p)
        if commands:
            self.w.commands[key] = commands
        else:
            self.w.commands.pop(key, None)
        return True

    async def m_get_my_commands(self, p: Params) -> list[dict[str, str]]:
        return list(self.w.commands.get(self._command_key(p), []))

    async def m_delete_my_commands(self, p: Params) -> bool:
        self.w.commands.pop(self._command_key(p), None)
        return True

    async def m_close(self, p: Params) -> bool:
        return True

    async def m_log_out(self, p: Params) -> bool:
        return True
