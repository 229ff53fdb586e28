"""The console's commands: one list feeds /help and the admins' command menu."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    #: shown in the Telegram command menu (1-256 characters)
    description: str
    #: shown in /help, e.g. "123" for /task 123
    usage: str = ""


# Only commands that exist are listed: the original page told users to run /kill_task
# when no such command existed.
COMMANDS: list[Command] = [
    Command("start", "Start the console"),
    Command("help", "What this bot can do"),
]


def register(command: Command) -> None:
    """Feature modules add their commands when they register their handlers."""
    if all(c.name != command.name for c in COMMANDS):
        COMMANDS.append(command)
