"""Drive the fake Telegram by hand: ``python -m tests.fakegram --port 8081 --token 1:A --admin 1``.

Point the bot at the printed base URL, then type commands (``help`` lists them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from .flood import FloodLimits
from .models import FakeMessage
from .server import FakeTelegram

HELP = """commands:
  say <user_id> <chat_id> <text>                    the user sends text
  reply <user_id> <chat_id> <message_id> <text>     the user replies to a message
  press <user_id> <chat_id> <message_id> <button>   the user presses a button (text or prefix)
  show <chat_id> [n]                                the last n messages of a chat (default 10)
  group <chat_id> <title> <user_id>...              add a supergroup (first user is admin)
  user <user_id> <name>                             add a user with a private chat
  quit"""


def render(msg: FakeMessage) -> str:
    who = "bot" if msg.from_bot else f"{msg.sender.first_name}({msg.sender.id})"
    flags = " [deleted]" if msg.deleted else (" [edited]" if msg.edits else "")
    body = msg.text if msg.text is not None else f"[file {msg.document and msg.document[0]}]"
    lines = [f"#{msg.message_id} {who}{flags}: {body}"]
    for row in msg.buttons:
        lines.append("    " + " | ".join(f"[{text}]" for text, _ in row))
    return "\n".join(lines)


async def execute(server: FakeTelegram, line: str) -> str:
    parts = line.split()
    if not parts:
        return ""
    cmd = parts[0]
    if cmd == "help":
        return HELP
    if cmd == "say" and len(parts) >= 4:
        msg = await server.send_text(int(parts[1]), int(parts[2]), line.split(None, 3)[3])
        return f"sent #{msg.message_id}" + ("" if msg.delivered else " (hidden by privacy mode)")
    if cmd == "reply" and len(parts) >= 5:
        _, user, chat, mid, text = line.split(None, 4)
        msg = await server.reply_to(int(user), int(chat), int(mid), text)
        return f"sent #{msg.message_id}"
    if cmd == "press" and len(parts) >= 5:
        _, user, chat, mid, button = line.split(None, 4)
        qid = await server.press_button(int(user), int(chat), int(mid), button)
        return f"pressed, query {qid}"
    if cmd == "show" and len(parts) >= 2:
        count = int(parts[2]) if len(parts) > 2 else 10
        return "\n".join(render(m) for m in server.messages(int(parts[1]))[-count:])
    if cmd == "group" and len(parts) >= 4:
        users = [int(u) for u in parts[3:]]
        server.add_group(int(parts[1]), parts[2], users, admins=users[:1])
        return f"group {parts[1]} added"
    if cmd == "user" and len(parts) >= 3:
        server.private_chat(server.add_user(int(parts[1]), parts[2]))
        return f"user {parts[1]} added"
    return "unknown command; type help"


async def watch(server: FakeTelegram) -> None:
    """Print what the bot does as it happens."""
    seen = 0
    while True:
        await asyncio.sleep(0.2)
        calls = server.calls[seen:]
        seen += len(calls)
        for call in calls:
            if call.method in ("getUpdates", "getMe", "answerCallbackQuery") and call.status == 200:
                continue
            chat_id = call.params.get("chat_id")
            note = "" if call.status == 200 else f" -> {call.status} {call.response}"
            print(f"<< {call.method} chat={chat_id}{note}", flush=True)
            if call.status == 200 and isinstance(chat_id, int) and chat_id in server.world.chats:
                mid = call.params.get("message_id")
                msgs = server.messages(chat_id)
                shown = next((m for m in msgs if m.message_id == mid), None) if mid else None
                target = shown or server.last_bot_message(chat_id)
                if target is not None and call.method != "sendChatAction":
                    print(render(target), flush=True)


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakegram", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default="123456:TEST")
    parser.add_argument("--username", default="taskops_bot")
    parser.add_argument(
        "--admin",
        type=int,
        action="append",
        default=[],
        help="a user id to create with a private chat (repeatable)",
    )
    parser.add_argument("--no-flood", action="store_true", help="switch flood limits off")
    args = parser.parse_args(argv)
    server = FakeTelegram(
        args.token,
        args.username,
        host=args.host,
        port=args.port,
        flood=FloodLimits.off() if args.no_flood else None,
    )
    await server.start()
    for uid in args.admin:
        server.private_chat(server.add_user(uid, f"Admin{uid}"))
    print(f"fake Telegram at {server.url}  (bot base_url {server.bot_base_url})", flush=True)
    print("type help for commands", flush=True)
    watcher = asyncio.get_running_loop().create_task(watch(server))
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:  # no terminal: keep serving until interrupted
                await asyncio.Event().wait()
            if line.strip() in ("quit", "exit"):
                break
            try:
                out = await execute(server, line.strip())
            except (LookupError, ValueError) as exc:
                out = f"error: {exc}"
            if out:
                print(out, flush=True)
    finally:
        watcher.cancel()
        await server.stop()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
