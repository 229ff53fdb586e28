"""The python-telegram-bot Application: built here, run by ``taskops run``."""

from __future__ import annotations

import logging

from telegram import LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.ext import ApplicationBuilder, Defaults, TypeHandler

from taskops import redaction
from taskops.bot import refresh
from taskops.bot.app_types import AnyApp
from taskops.bot.context import Deps, deps_of
from taskops.bot.delivery import Telegram
from taskops.bot.flood import FloodGate
from taskops.bot.gate import admin_gate, set_admin_menus
from taskops.bot.handlers import (
    admin,
    alert_press,
    answer,
    audit_log,
    bulk,
    cronjobs,
    digest,
    kill,
    prompts,
    restart,
    subscriptions,
    task_detail,
    tasks_list,
    usage,
    views_saved,
)
from taskops.bot.outage import on_error
from taskops.bot.press import register_last_resort
from taskops.bot.push import service as push
from taskops.bot.updates import PerChatUpdateProcessor
from taskops.config import Settings, TelegramMode
from taskops.storage.store import TaskStore

log = logging.getLogger(__name__)

def file_base_url(base_url: str) -> str:
    """Telegram serves files under /file/bot<token>, beside /bot<token>."""
    root, sep, _ = base_url.rstrip("/").rpartition("/bot")
    return f"{root}/file/bot" if sep else base_url.rstrip("/") + "/file/bot"


def build_application(settings: Settings, store: TaskStore,
                      gate: FloodGate | None = None) -> AnyApp:
    gate = gate or FloodGate()
    redaction.install(settings.secret_values())  # what the gate redacts from every request
    token = settings.telegram.token
    if not token:
        raise ValueError("no Telegram bot token configured")
    app: AnyApp = (
        ApplicationBuilder()
        .token(token.get())
        .base_url(settings.telegram.base_url)
        .base_file_url(file_base_url(settings.telegram.base_url))
        .defaults(Defaults(parse_mode=ParseMode.HTML,
                           link_preview_options=LinkPreviewOptions(is_disabled=True)))
        # Every request passes the one flood gate; it also does every retry (bot/flood.py).
        .rate_limiter(gate)
        .concurrent_updates(PerChatUpdateProcessor())
        .build()
    )
    app.bot_data["deps"] = Deps(settings=settings, store=store,
                                telegram=Telegram(app.bot, gate))
    # The admin gate must run before every other handler, for every update type.
    app.add_handler(TypeHandler(Update, admin_gate), group=-1)
    admin.register(app)
    tasks_list.register(app)
    task_detail.register(app)
    kill.register(app)
    bulk.register(app)
    audit_log.register(app)
    views_saved.register(app)
    restart.register(app)
    answer.register(app)
    cronjobs.register(app)
    subscriptions.register(app)
    alert_press.register(app)
    digest.register(app)
    usage.register(app)
    prompts.register(app)
    # Last of all: it answers the presses that none of the handlers above matched.
    register_last_resort(app)
    # Answers an update whose handler failed (a store fault: one line) and logs it.
    app.add_error_handler(on_error)
    refresh.schedule(app)
    return app


async def start_console(app: AnyApp, *, leading: bool = True) -> None:
    """Start an initialized Application: handlers, then (``leading``) what only the leader
    of the ``taskops run`` processes does — see :func:`lead_console`.

    ``taskops run`` drives the Application itself (not ``run_polling``) so the worker and
    the push jobs share its event loop and its clean shutdown. In webhook mode every
    process answers the updates it is sent (a standby too); in polling mode only the
    leader fetches them (Telegram allows one getUpdates caller).
    """
    settings = deps_of(app).settings
    await app.start()
    if settings.telegram.mode is TelegramMode.WEBHOOK:
        await _start_receiving(app, settings)
    if leading:
        await lead_console(app)


async def lead_console(app: AnyApp) -> None:
    """Begin what one process of the cluster does: the admins' command menus, the push
    jobs, and (polling mode) fetching updates."""
    settings = deps_of(app).settings
    await set_admin_menus(app.bot, settings.telegram.admin_ids, deps_of(app).menu_chats)
    await push.start(app)
    if settings.telegram.mode is TelegramMode.POLLING:
        await _start_receiving(app, settings)


async def stand_down(app: AnyApp) -> None:
    """Stop what only the leader does, at once (leadership was lost or is given up)."""
    if (deps_of(app).settings.telegram.mode is TelegramMode.POLLING
            and app.updater is not None and app.updater.running):
        await app.updater.stop()
    await push.stop(app)


async def stop_console(app: AnyApp) -> None:
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    await push.stop(app)
    if app.running:
        await app.stop()


async def _start_receiving(app: AnyApp, settings: Settings) -> None:
    """Start fetching updates: long polling, or a webhook server."""
    assert app.updater is not None
    tg = settings.telegram
    if tg.mode is TelegramMode.WEBHOOK:
        await app.updater.start_webhook(
            listen=tg.webhook_listen, port=tg.webhook_port, url_path="telegram",
            webhook_url=tg.webhook_url,
            secret_token=tg.webhook_secret.get() if tg.webhook_secret else None,
            allowed_updates=Update.ALL_TYPES)
    else:
        await app.updater.start_polling(allowed_updates=Update.ALL_TYPES, timeout=10)
