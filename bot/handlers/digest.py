"""◀ / ▶ on a digest message: another page of the tasks it took in."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, ContextTypes

from taskops.bot.callbacks import Action
from taskops.bot.press import EXPIRED, answer, load_press, on_press
from taskops.bot.screens import finish_press
from taskops.bot.views import PUSH_MARK, Screen, ViewKind


async def on_digest_page(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    press = await load_press(update, context)
    if press is None:
        return
    # Only while the message shows the digest (as sent, or paged): once someone opened a
    # task or the list from it, it is that screen, and a stale ◀ / ▶ changes nothing.
    showing = press.state.screen is Screen.DIGEST or press.view.body.get(PUSH_MARK) is not None
    if press.view.kind != ViewKind.DIGEST or not showing:
        await answer(press.query, EXPIRED)
        return
    # Paging makes the digest someone's: later changes start a new digest message rather
    # than pulling this one back to page 1 under their thumb.
    await finish_press(context, press, press.state.digest_paged(press.callback.int_arg))


def register(app: Application) -> None:  # type: ignore[type-arg]
    app.add_handler(on_press(on_digest_page, Action.DIGEST_PAGE))
