"""A fake Telegram Bot API server over real HTTP, for tests and for driving the bot by hand.

Modelled (answers shaped like Telegram's, errors with Telegram's descriptions):
- POST/GET ``/bot<token>/<method>`` with query strings, url-encoded and multipart forms or JSON
  bodies; method names case-insensitive; 401 for a wrong token, 404 for an unknown method;
  ``/file/bot<token>/<file_path>`` serves uploaded files (getFile).
- getMe, getUpdates (long polling, offset/negative offset, limit, allowed_updates remembered,
  409 while a webhook is set, an older pending getUpdates is terminated with 409 by a newer
  one), setWebhook/deleteWebhook/getWebhookInfo (delivery by POST with the secret-token header,
  retried until a 2xx, pending_update_count, last_error_*), sendMessage, editMessageText,
  editMessageReplyMarkup, deleteMessage, answerCallbackQuery, sendChatAction, sendDocument,
  sendPhoto, getFile, set/get/deleteMyCommands with every scope and language_code, close, logOut.
- HTML parse mode as TDLib parses it (see html.py), then Telegram's entity fixing, trimming and
  detection of commands/mentions/hashtags/urls (entities.py); text 1..4096 and caption
  0..1024 UTF-16 units; inline keyboards (1..64-byte callback_data, 8 per row, 100 in all, one
  action per button); "message is not modified" (an edit without reply_markup removes the
  keyboard, as in Telegram); edit/delete of unknown or deleted messages; callback queries that
  must be answered once within ``callback_answer_timeout``; flood limits (flood.py) answered
  with 429 + retry_after and nothing performed; blocked users (403), deleted groups (400),
  users who never opened the bot (403 "bot can't initiate conversation"); group privacy mode
  (the bot sees only commands, replies to it and mentions unless it is an admin).
- Injected faults: 429, 500, slow answers, dropped connections (before or after performing).

Stricter than Telegram (``strict_html=True``, the default; pass False for Telegram's own
leniency): a bare ``&`` or unknown entity like ``&nbsp;``, an attribute a tag does not
support, a nested blockquote, and an inline button with more than one action are refused
with a 400 whose detail says so, because Telegram would silently show or drop them.

Not modelled (real API methods not listed above answer 501 "Not Implemented: ..."):
MarkdownV2/Markdown (refused with a 400), media other than documents and photos, fetching
files by URL, inline mode, payments, chat member updates, forum topics and threads, the
48-hour edit/delete window, parallel webhook delivery (updates go one at a time, in order),
HTTPS/port rules for webhooks, method calls in webhook replies, and e-mail, cashtag, phone
and bare-domain entity detection. Text-length limits count UTF-16 code units.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import telegram
from aiohttp import web

from .flood import FloodLimits
from .markup import scope_key
from .methods import BotApi
from .models import ApiError, Call, FakeChat, FakeUser, Upload, Violation
from .params import Described, Params
from .testapi import TestApiMixin
from .world import World

FAULT_KINDS = ("429", "500", "slow", "drop", "drop_after")
# Bot API methods that exist in Telegram (PTB has a camelCase alias for each)
_REAL_METHODS = frozenset(
    name.lower() for name in dir(telegram.Bot) if name[:1].islower() and name != name.lower()
)


class _Fault:
    def __init__(self, kind: str, count: int, retry_after: int, delay: float,
                 chat_id: int | None = None) -> None:
        self.kind, self.count, self.retry_after, self.delay = kind, count, retry_after, delay
        self.chat_id = chat_id

    def matches(self, params: dict[str, Any]) -> bool:
        return self.chat_id is None or str(params.get("chat_id")) == str(self.chat_id)


class FakeTelegram(TestApiMixin):
    def __init__(
        self,
        token: str = "123456:TEST",
        bot_username: str = "taskops_bot",
        *,
        bot_name: str = "TaskOps",
        flood: FloodLimits | None = None,
        callback_answer_timeout: float = 15.0,
        clock: Callable[[], float] | None = None,
        strict_html: bool = True,
        privacy_mode: bool = True,
        webhook_retry_delay: float = 0.2,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        self.host, self.port = host, port
        self.world = World(
            token=token,
            bot_username=bot_username,
            bot_name=bot_name,
            flood=flood or FloodLimits(),
            clock=clock or time.time,
            callback_answer_timeout=callback_answer_timeout,
            strict_html=strict_html,
            privacy_mode=privacy_mode,
            webhook_retry_delay=webhook_retry_delay,
        )
        self.api = BotApi(self.world)
        self._faults: dict[str, list[_Fault]] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> FakeTelegram:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1]
        self.url = f"http://{self.host}:{self.port}"
        return self

    async def stop(self) -> None:
        await self.world.updates.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def bot_base_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def file_base_url(self) -> str:
        return f"{self.url}/file/bot"

    @property
    def bot_user(self) -> FakeUser:
        return self.world.bot_user

    # --- HTTP -------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        raw_method = request.match_info["method"]
        entry = self.api.methods.get(raw_method.lower())
        name = entry[0] if entry else raw_method
        if token != self.token:
            wrong = ApiError(401, "Unauthorized") if ":" in token else ApiError(404, "Not Found")
            return self._answer(name, {}, wrong)
        if entry is None:
            if raw_method.lower() in _REAL_METHODS:
                detail = f"Not Implemented: {raw_method} is not modelled by the fake Telegram"
                return self._answer(name, {}, ApiError(501, detail))
            return self._answer(name, {}, ApiError(404, "Not Found"))
        try:
            params = await _read_params(request)
        except ApiError as exc:
            return self._answer(name, {}, exc)
        decoded = params.decoded()
        fault = self._take_fault(name, decoded)
        if fault is not None:
            if fault.kind == "429":
                retry = fault.retry_after
                err = ApiError(429, f"Too Many Requests: retry after {retry}", retry_after=retry)
                return self._answer(name, decoded, err, injected=True)
            if fault.kind == "500":
                return self._answer(
                    name, decoded, ApiError(500, "Internal Server Error"), injected=True
                )
            if fault.kind == "drop":
                return self._drop(request, name, decoded)
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay)
        try:
            result = await entry[1](params)
        except ApiError as exc:
            if request.transport is None or request.transport.is_closing():
                # the client hung up (e.g. PTB cancelled its long poll when stopping): the
                # answer reaches nobody, so it is no violation
                self.world.calls.append(Call(name, decoded, exc.code, None, self.world.clock()))
                return web.json_response(exc.payload(), status=exc.code)
            return self._answer(name, decoded, exc)
        body: dict[str, Any] = {"ok": True, "result": result}
        if isinstance(result, Described):
            body = {"ok": True, "result": result.result, "description": result.description}
        if fault is not None and fault.kind == "drop_after":
            return self._drop(request, name, decoded)
        self.world.calls.append(Call(name, decoded, 200, body, self.world.clock()))
        return web.json_response(body)

    def _answer(
        self, name: str, params: dict[str, Any], err: ApiError, *, injected: bool = False
    ) -> web.Response:
        body = err.payload()
        self.world.calls.append(Call(name, params, err.code, body, self.world.clock()))
        self.world.violations.append(Violation(name, err.code, err.description, params, injected))
        return web.json_response(body, status=err.code)

    def _drop(self, request: web.Request, name: str, params: dict[str, Any]) -> web.Response:
        self.world.calls.append(Call(name, params, 0, None, self.world.clock()))
        self.world.violations.append(
            Violation(name, 0, "connection dropped without an answer", params, True)
        )
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").payload(), status=401)
        path = request.match_info["path"]
        for stored in self.world.files.values():
            if stored.file_path == path:
                return web.Response(
                    body=stored.data, content_type=stored.mime_type or "application/octet-stream"
                )
        return web.json_response(ApiError(404, "Not Found").payload(), status=404)

    def _take_fault(self, method: str, params: dict[str, Any]) -> _Fault | None:
        queue = self._faults.get(method.lower())
        fault = next((f for f in queue or [] if f.matches(params)), None)
        if queue is None or fault is None:
            return None
        fault.count -= 1
        if fault.count <= 0:
            queue.remove(fault)
        return fault

    def fail(
        self,
        method: str,
        kind: str = "429",
        count: int = 1,
        retry_after: int = 1,
        delay: float = 2.0,
        chat_id: int | None = None,
    ) -> None:
        """Inject a fault into the next ``count`` calls of ``method``.

        kinds: "429" (Too Many Requests with ``retry_after``), "500", "slow" (answer after
        ``delay`` seconds), "drop" (close the connection, nothing performed), "drop_after"
        (perform the method, then close the connection without answering). With ``chat_id``
        only calls to that chat are failed.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}, not {kind!r}")
        key = method.lower()
        if key not in self.api.methods:
            raise ValueError(f"unknown Bot API method {method!r}")
        self._faults.setdefault(key, []).append(
            _Fault(kind, count, retry_after, delay, chat_id))

    def faults_pending(self) -> int:
        """How many injected faults are still to be given."""
        return sum(f.count for queue in self._faults.values() for f in queue)

    def clear_faults(self) -> None:
        """Drop every injected fault not given yet."""
        self._faults.clear()

    # --- commands ---------------------------------------------------------------------------
    def commands(self, scope: Any = "default", language_code: str = "") -> list[dict[str, str]]:
        """The command list stored for exactly this scope and language (as getMyCommands)."""
        key = scope_key(scope, _chat_id_of)
        return list(self.world.commands.get((key, language_code), []))

    def visible_commands(
        self, user: FakeUser | int, chat: FakeChat | int, language_code: str = ""
    ) -> list[dict[str, str]]:
        """The menu a user sees in a chat, resolved through scopes as Telegram documents."""
        uid = user if isinstance(user, int) else user.id
        c = self.chat(chat)
        if c.type == "private":
            keys: list[tuple[Any, ...]] = [("chat", c.id), ("all_private_chats",), ("default",)]
        else:
            admin = uid in c.admin_ids
            keys = [("chat_member", c.id, uid)]
            keys += [("chat_administrators", c.id)] if admin else []
            keys += [("chat", c.id)]
            keys += [("all_chat_administrators",)] if admin else []
            keys += [("all_group_chats",), ("default",)]
        for key in keys:
            for lang in [language_code, ""] if language_code else [""]:
                found = self.world.commands.get((key, lang))
                if found:
                    return list(found)
        return []


def _chat_id_of(raw: Any) -> int:
    return int(raw.id if isinstance(raw, FakeChat) else raw)


async def _read_params(request: web.Request) -> Params:
    raw: dict[str, Any] = dict(request.query)
    files: dict[str, Upload] = {}
    if request.method == "POST" and request.can_read_body:
        ctype = request.content_type
        if ctype == "application/json":
            try:
                body = json.loads(await request.text() or "{}")
            except ValueError:
                raise ApiError(400, "Bad Request: can't parse JSON encoded request") from None
            if not isinstance(body, dict):
                raise ApiError(400, "Bad Request: can't parse JSON encoded request")
            raw.update(body)
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = Upload(value.filename, value.content_type, value.file.read())
                else:
                    raw[key] = value
    return Params(raw, files)


__all__ = ["FAULT_KINDS", "FakeTelegram"]
