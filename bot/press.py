"""A button press: parsed, its view loaded and checked, and always answered.

Press handlers register with ``on_press`` (the pattern carries the callback version, and
the press is answered even when the handler fails) and start with ``load_press``: the
data parses, the view exists, is of the expected kind and belongs to the pressed
message's chat, and the presser is an admin — else the press is answered as expired and
nothing changes. ``register_last_resort`` answers data no handler matched (an old client,
a forged press), so no button ever spins.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Collection, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from telegram import CallbackQuery, MaybeInaccessibleMessage, Update, User
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, CallbackQueryHandler, ContextTypes

from taskops.bot.callbacks import Action, BadCallback, Callback, pattern
from taskops.bot.context import Deps, deps
from taskops.bot.gate import is_admin
from taskops.bot.ui import keyboard_print
from taskops.bot.views import CONSOLE_KINDS, ViewExpired, ViewState, decode
from taskops.storage.console import ViewRecord
from taskops.storage.domain import Task, TaskNotFound

EXPIRED = "This list has expired — send /tasks again."

PressHandler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]
#: ids of the queries answered while the current update is handled (bot/outage.py)
_answered: ContextVar[set[str] | None] = ContextVar("answered_queries", default=None)


@contextlib.contextmanager
def track_answers() -> Iterator[None]:
    """Remember which presses were answered while the block runs (one update)."""
    token = _answered.set(set())
    try:
        yield
    finally:
        _answered.reset(token)


def was_answered(query: CallbackQuery) -> bool:
    answered = _answered.get()
    return answered is not None and query.id in answered


async def answer(query: CallbackQuery, text: str | None = None, alert: bool = False) -> None:
    """Answer a press (stops the client's spinner; ``text`` is a toast, or an alert)."""
    answered = _answered.get()
    if answered is not None:
        answered.add(query.id)
    # A late answer only fails for the user's spinner; it must not fail the press.
    with contextlib.suppress(BadRequest):
        await query.answer(text, show_alert=alert)


def on_press(handler: PressHandler, *actions: Action) -> CallbackQueryHandler[Any, None]:
    """The handler of these actions' presses; whatever it does, the press gets an answer:
    a handler that fails leaves it to the error handler (bot/outage.py), which knows what
    to say about the failure."""

    async def answered_always(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        with contextlib.ExitStack() as scope:
            if _answered.get() is None:  # handled outside bot.outage.update_scope
                scope.enter_context(track_answers())
            await handler(update, context)
            query = update.callback_query
            if query is not None and not was_answered(query):
                with contextlib.suppress(TelegramError):
                    await query.answer()

    return CallbackQueryHandler(answered_always, pattern=pattern(*actions))


async def _answer_unmatched(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.callback_query is not None:
        await answer(update.callback_query, EXPIRED)


def register_last_resort(app: Application) -> None:  # type: ignore[type-arg]
    """Answer presses no handler took. Register it after every press handler: in one
    handler group the first match wins, so this one sees only what nobody else matched."""
    app.add_handler(CallbackQueryHandler(_answer_unmatched))


@dataclass(frozen=True)
class Press:
    """A parsed, checked button press on a message whose state is stored."""

    query: CallbackQuery
    callback: Callback
    view: ViewRecord
    message: MaybeInaccessibleMessage
    #: the message shows the keyboard this process last gave it (so, what it last rendered)
    shows_ours: bool

    @property
    def key(self) -> str:
        return self.callback.view

    @property
    def user(self) -> User:
        return self.query.from_user


@dataclass(frozen=True)
class ConsolePress(Press):
    """A press on a console message (list, task, kill, restart form) with its screen state."""

    #: as the message shows it; no longer marked as an untouched push message
    state: ViewState


async def load_view_press(update: Update, context: ContextTypes.DEFAULT_TYPE,
                          kinds: Collection[str], expired: str) -> Press | None:
    """Parse the press and load its view; answers ``expired`` and returns None unless the
    view exists, is one of ``kinds``, belongs to the pressed message's chat, and the presser
    is an admin."""
    query = update.callback_query
    assert query is not None
    d = deps(context)
    try:
        callback = Callback.parse(query.data)
    except BadCallback:
        await answer(query, expired)
        return None
    message = query.message
    record = d.store.console.cached(callback.view)
    # The cached view is what this process last wrote; if the message still shows the
    # keyboard this process gave it, nobody else (another replica) has changed it since.
    shown = keyboard_print(getattr(message, "reply_markup", None))
    ours = shown is not None and d.keyboards.get(callback.view) == shown
    if record is None or not ours:
        record = await d.store.console.get(callback.view)
    if (record is None or record.kind not in kinds or message is None
            or record.chat_id != message.chat.id
            or not is_admin(update, d.settings.telegram.admin_ids)):
        await answer(query, expired)
        return None
    return Press(query, callback, record, message, ours)


async def load_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> ConsolePress | None:
    """A press on a console message, with the screen state it was rendered from."""
    press = await load_view_press(update, context, CONSOLE_KINDS, EXPIRED)
    if press is None:
        return None
    try:
        state = decode(press.view.body).used()
    except ViewExpired:
        await answer(press.query, EXPIRED)
        return None
    return ConsolePress(press.query, press.callback, press.view, press.message,
                        press.shows_ours, state)


async def press_task(d: Deps, press: Press, task_id: int) -> Task | None:
    """The task a press acts on; answers "Task #N not found." and returns None if gone."""
    task = await d.store.find_task(task_id)
    if task is None:
        await answer(press.query, str(TaskNotFound(task_id)), alert=True)
    return task
