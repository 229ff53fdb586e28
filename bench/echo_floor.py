"""The floor of a console press: a bare python-telegram-bot echo and press → edit round trip.

    python bench/echo_floor.py [--round-trips 500] [--warmup 20] [--gap-ms 50]
                               [--separate-process]

A minimal PTB Application, built with the builder settings of ``bot/app.py`` (``base_url``
to the fake Telegram server, ``Defaults(parse_mode=HTML)`` with link previews off, long
polling with a 10 s timeout) and python-telegram-bot's own ``AIORateLimiter(max_retries=3)``
(bot/app.py installs its own flood gate, bot/flood.py, whose per-chat pacing would make 500
presses in one chat wait for it; when it does not wait it costs microseconds), with

* a MessageHandler that replies with the text it got (``reply_text``), and
* a CallbackQueryHandler that answers the query and edits the pressed message's text
  (keeping its one-button keyboard), concurrently, as ``bot.screens.finish_press`` does;

run against the fake Telegram server over real HTTP on 127.0.0.1. A round trip is timed
from the moment the fake is handed the user's update (``send_text`` / ``press``) to the
moment it has recorded the bot's ``sendMessage`` / ``editMessageText`` (see
bench/latency_common.py). The fake runs with ``FloodLimits.off()`` — a benchmark making
hundreds of edits to one message would otherwise be answered 429 by the per-chat limit —
and round trips are spaced ``--gap-ms`` apart so that the bot's own AIORateLimiter (30
sends/s) never delays one. By default the fake and the bot share one process and one
event loop; ``--separate-process`` runs the bot in a child process.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import gc
import shlex
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.ext import (
    AIORateLimiter,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    filters,
)

from bench.common import markdown_table, print_facts
from bench.latency_common import (
    DEFAULT_GAP_MS,
    ROUND_TRIP_TIMEOUT,
    CallWatch,
    CpuWatch,
    PressTiming,
    Stats,
    is_send_of,
    latency_facts,
    timed_press,
    watch_calls,
)
from taskops.bot.app import file_base_url
from taskops.bot.app_types import AnyApp
from tests.fakegram import FakeMessage, FakeTelegram, FloodLimits

TOKEN = "123456:ECHO-floor_token"
USER_ID = 1001
PROMPT = "Press the button."
PRESS_DATA = "press"
SCRIPT = str(Path(__file__).resolve())
KEYBOARD = InlineKeyboardMarkup([[InlineKeyboardButton("Press me", callback_data=PRESS_DATA)]])


# --- the bare bot ---------------------------------------------------------------------------


async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(PROMPT, reply_markup=KEYBOARD)


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None
    assert message.text is not None
    await message.reply_text(message.text)


async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    count = int(context.bot_data.get("presses", 0)) + 1
    context.bot_data["presses"] = count
    await asyncio.gather(query.answer(),
                         query.edit_message_text(f"Pressed {count} times.", reply_markup=KEYBOARD))


def build_floor_app(base_url: str, token: str) -> AnyApp:
    """The bare Application, built like ``bot.app.build_application``."""
    app: AnyApp = (
        ApplicationBuilder()
        .token(token)
        .base_url(base_url)
        .base_file_url(file_base_url(base_url))
        .defaults(Defaults(parse_mode=ParseMode.HTML,
                           link_preview_options=LinkPreviewOptions(is_disabled=True)))
        .rate_limiter(AIORateLimiter(max_retries=3))
        .build()
    )
    app.add_handler(CommandHandler("start", on_start))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, on_text))
    app.add_handler(CallbackQueryHandler(on_press))
    return app


@asynccontextmanager
async def polling(app: AnyApp) -> AsyncIterator[AnyApp]:
    """Initialize, start and long-poll like ``bot.app.start_console``; stop on exit."""
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(allowed_updates=Update.ALL_TYPES, timeout=10)
        try:
            yield app
        finally:
            if app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()


async def serve_bot(base_url: str, token: str) -> None:
    """``--serve-bot``: run the bare bot until SIGTERM/SIGINT (the child process)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with polling(build_floor_app(base_url, token)):
        await stop.wait()


@asynccontextmanager
async def running_bot(server: FakeTelegram, watch: CallWatch,
                      separate_process: bool) -> AsyncIterator[None]:
    if not separate_process:
        async with polling(build_floor_app(server.bot_base_url, server.token)):
            yield
        return
    # start_polling deletes any webhook just before its first getUpdates (a getUpdates is
    # logged only when it returns)
    polled = watch.expect(lambda call: call.method == "deleteWebhook")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, SCRIPT, "--serve-bot",
        "--base-url", server.bot_base_url, "--token", server.token)
    try:
        await asyncio.wait_for(polled, 60)
        yield
    finally:
        # end the child's pending long poll now, not at its 10 s timeout
        await server.world.updates.close()
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


# --- measurement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FloorResult:
    echo: Stats  # message → sendMessage
    press: Stats  # press → editMessageText (the floor of a console press)
    press_answer: Stats  # press → answerCallbackQuery
    mode: str
    violations: int
    #: mean cores busy outside this process meanwhile (the bot's child process included)
    other_cores: float


class FloorBench:
    """A started fake server with the bare bot polling it; one round trip per call."""

    def __init__(self, separate_process: bool = False) -> None:
        self.server = FakeTelegram(token=TOKEN, flood=FloodLimits.off())
        self.separate_process = separate_process
        self.watch = CallWatch()
        self._stack = contextlib.AsyncExitStack()
        self._echoes = 0
        self.message: FakeMessage | None = None

    async def __aenter__(self) -> FloorBench:
        await self.server.start()
        self._stack.push_async_callback(self.server.stop)
        self.watch = watch_calls(self.server)
        self.user = self.server.add_user(USER_ID, "Ann", username="ann")
        self.chat = self.server.private_chat(self.user)
        await self._stack.enter_async_context(
            running_bot(self.server, self.watch, self.separate_process))
        shown = self.watch.expect(is_send_of(self.chat.id, PROMPT))
        await self.server.send_text(self.user, self.chat, "/start")
        await asyncio.wait_for(shown, ROUND_TRIP_TIMEOUT)
        self.message = self.server.last_bot_message(self.chat)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def echo(self) -> float:
        """Milliseconds from a user's text to the bot's echo recorded."""
        self._echoes += 1
        text = f"echo {self._echoes}"
        sent = self.watch.expect(is_send_of(self.chat.id, text))
        start = time.perf_counter()
        await self.server.send_text(self.user, self.chat, text)
        try:
            at, _ = await asyncio.wait_for(sent, ROUND_TRIP_TIMEOUT)
        except TimeoutError:
            raise RuntimeError(f"no echo of {text!r}\n{self.server.dump()}") from None
        return (at - start) * 1000

    async def press(self) -> PressTiming:
        """A press of the button, until the edit and the answer are recorded."""
        assert self.message is not None
        timing = await timed_press(self.server, self.watch, self.user.id, self.message,
                                   PRESS_DATA)
        if timing.edit_status != 200:
            raise RuntimeError(f"edit answered {timing.edit_status}\n{self.server.dump()}")
        return timing

    @property
    def violations(self) -> int:
        return len(self.server.violations)


async def measure_floor(round_trips: int = 500, *, warmup: int = 20,
                        gap_ms: float = DEFAULT_GAP_MS,
                        separate_process: bool = False) -> FloorResult:
    """Run the bare bot against a fresh fake server: echoes first, then presses."""
    gap = gap_ms / 1000
    echoes: list[float] = []
    presses: list[PressTiming] = []
    async with FloorBench(separate_process) as bench:
        cpu = CpuWatch()
        gc.collect()
        for i in range(warmup + round_trips):
            ms = await bench.echo()
            if i >= warmup:
                echoes.append(ms)
            await asyncio.sleep(gap)
        for i in range(warmup + round_trips):
            timing = await bench.press()
            if i >= warmup:
                presses.append(timing)
            await asyncio.sleep(gap)
        other = cpu.other_cores()
    return FloorResult(Stats.of(echoes), Stats.of([t.edit_ms for t in presses]),
                       Stats.of([t.answer_ms for t in presses]),
                       "bot in a child process" if separate_process else "one process",
                       bench.violations, other)


def floor_table(result: FloorResult) -> str:
    rows = []
    for name, stats in (("echo: message → sendMessage", result.echo),
                        ("button press → editMessageText", result.press),
                        ("button press → answerCallbackQuery", result.press_answer)):
        rows.append([name, str(stats.n), f"{stats.p50:.2f}", f"{stats.p95:.2f}",
                     f"{stats.mean:.2f}", f"{stats.minimum:.2f}", f"{stats.maximum:.2f}"])
    return markdown_table(["round trip", "n", "p50 ms", "p95 ms", "mean ms", "min ms",
                           "max ms"], rows, right=(1, 2, 3, 4, 5, 6))


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--round-trips", type=int, default=500,
                        help="timed round trips of each kind (default 500)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed round trips first")
    parser.add_argument("--gap-ms", type=float, default=DEFAULT_GAP_MS,
                        help="pause between round trips (default 50 ms)")
    parser.add_argument("--separate-process", action="store_true",
                        help="run the bot in a child process (the fake stays in this one)")
    parser.add_argument("--serve-bot", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bot:
        await serve_bot(args.base_url, args.token)
        return 0
    if args.round_trips < 1 or args.warmup < 0 or args.gap_ms < 0:
        parser.error("--round-trips must be at least 1; --warmup and --gap-ms not negative")
    print("command: python bench/echo_floor.py " + shlex.join(sys.argv[1:] if argv is None
                                                              else argv))
    print_facts(latency_facts())
    result = await measure_floor(args.round_trips, warmup=args.warmup, gap_ms=args.gap_ms,
                                 separate_process=args.separate_process)
    print(f"\nmode: {result.mode}; fake Telegram with FloodLimits.off(); "
          f"{args.warmup} warm-up round trips; {args.gap_ms:g} ms between round trips; "
          f"violations (non-2xx answers): {result.violations}; cores busy outside this "
          f"process meanwhile: {result.other_cores:.2f}\n")
    print(floor_table(result))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(asyncio.run(main()))
