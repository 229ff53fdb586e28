"""Tools the agent can call: a small registry, a few safe built-ins, and operator plugins.

A tool is an ``async`` function taking the call's arguments (a JSON object as a dict)
and returning its result: a string, or anything JSON-serialisable. Raising
:class:`ToolError` makes the call fail with that message; any other exception fails it
with the exception's type and text. Tools run on the worker's event loop and are
cancelled when the task is killed, so they must not block (use ``asyncio.to_thread``
for blocking work).

Operators add tools without touching taskops (docs/scripted-provider.md, "Your own
tools"): in Python with ``@register_tool(...)``, or from an installed package through
the ``taskops.tools`` entry-point group, loaded when the worker starts.

Repeating a call: a run that is taken up again (after a restart) never runs a call twice
unless the tool says it may — ``safe_to_repeat=True`` for tools whose effect is the same
however often they run (reads, idempotent writes). A call that was cut off is otherwise
recorded as "interrupted by a restart" and the agent is told.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from taskops.runtime.agent import ToolOutcome, ToolSpec

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "taskops.tools"
#: the built-in ``wait`` tool never sleeps longer than this
MAX_WAIT_SECONDS = 300.0

ToolFunction = Callable[[dict[str, Any]], Awaitable[Any]]


class ToolError(Exception):
    """Raised by a tool: the call fails and the agent sees this message."""


@dataclass(frozen=True)
class Tool:
    spec: ToolSpec
    function: ToolFunction
    #: running the call again after an interruption does no harm (the same effect)
    safe_to_repeat: bool = False


#: the attribute :func:`tool` sets on a function an entry point can name directly
TOOL_ATTRIBUTE = "__taskops_tool__"


def tool(name: str | None = None, *, description: str = "",
         parameters: dict[str, Any] | None = None,
         safe_to_repeat: bool = False) -> Callable[[ToolFunction], ToolFunction]:
    """Declare a function as a tool without registering it anywhere: a ``taskops.tools``
    entry point may then name the function itself (``mytool = "pkg.mod:my_tool"``), and
    the declaration — ``safe_to_repeat`` included — travels with it."""
    def declare(function: ToolFunction) -> ToolFunction:
        spec = ToolSpec(name or function.__name__,
                        description or (function.__doc__ or "").strip(),
                        parameters or {"type": "object", "properties": {}})
        setattr(function, TOOL_ATTRIBUTE, Tool(spec, function, safe_to_repeat))
        return function

    return declare


def _as_result(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


class ToolRegistry:
    def __init__(self, tools: tuple[Tool, ...] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        #: whether :func:`load_plugins` ran for this registry (it runs once)
        self.plugins_loaded = False
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool, *, replace: bool = False) -> None:
        if tool.spec.name in self._tools and not replace:
            raise ValueError(f"a tool named {tool.spec.name!r} is already registered")
        self._tools[tool.spec.name] = tool

    def register(self, name: str | None = None, *, description: str = "",
                 parameters: dict[str, Any] | None = None, safe_to_repeat: bool = False,
                 replace: bool = False) -> Callable[[ToolFunction], ToolFunction]:
        """Decorator: ``@registry.register("name", description=..., parameters=...)``.

        ``parameters`` is the JSON schema of the arguments object offered to models;
        ``safe_to_repeat`` lets a run taken up again run an interrupted call once more.
        """
        def decorate(function: ToolFunction) -> ToolFunction:
            declared = tool(name, description=description, parameters=parameters,
                            safe_to_repeat=safe_to_repeat)(function)
            self.add(getattr(declared, TOOL_ATTRIBUTE), replace=replace)
            return function

        return decorate

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def specs(self) -> tuple[ToolSpec, ...]:
        return tuple(tool.spec for tool in self._tools.values())

    def copy(self) -> ToolRegistry:
        return ToolRegistry(tuple(self._tools.values()))

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        """Run a tool; failures become an error outcome, cancellation passes through."""
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(sorted(self._tools)) or "none"
            return ToolOutcome(f"Unknown tool '{name}' (available: {known})", is_error=True)
        try:
            return ToolOutcome(_as_result(await tool.function(arguments)))
        except ToolError as exc:
            return ToolOutcome(str(exc), is_error=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("tool %s raised", name, exc_info=True)
            return ToolOutcome(f"{type(exc).__name__}: {exc}", is_error=True)


def load_plugins(target: ToolRegistry, group: str = ENTRY_POINT_GROUP) -> list[str]:
    """Load the ``taskops.tools`` entry points; returns the names loaded.

    An entry point may name a function declared with :func:`tool` (added to ``target``
    with its declaration), a function ``register(registry)`` (called with ``target``), or
    a module whose ``@register_tool`` decorators register into the default registry when
    imported. A plugin that fails to load is logged and skipped, never fatal. Loading
    twice into the same registry does nothing the second time.
    """
    if target.plugins_loaded:
        return []
    target.plugins_loaded = True
    loaded = []
    for point in entry_points(group=group):
        try:
            plugin = point.load()
            declared = getattr(plugin, TOOL_ATTRIBUTE, None)
            if isinstance(declared, Tool):
                target.add(declared)
            elif callable(plugin) and not isinstance(plugin, ModuleType):
                plugin(target)
        except Exception:
            log.exception("tool plugin %s (%s) failed to load", point.name, point.value)
            continue
        loaded.append(point.name)
        log.info("tool plugin %s loaded", point.name)
    return loaded


# --- built-ins --------------------------------------------------------------------------

registry = ToolRegistry()
#: register a tool in the default registry (the one every worker uses unless given another)
register_tool = registry.register


def _number_arg(arguments: dict[str, Any], key: str) -> float:
    value = arguments.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToolError(f"'{key}' must be a number")
    return float(value)


@register_tool("current_time", description="The current date and time.", safe_to_repeat=True,
               parameters={
    "type": "object",
    "properties": {"timezone": {"type": "string",
                                "description": "IANA timezone, e.g. Europe/Berlin (default UTC)"}},
})
async def current_time(arguments: dict[str, Any]) -> str:
    name = arguments.get("timezone") or "UTC"
    try:
        zone = ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(f"unknown timezone {name!r}") from None
    return f"{datetime.now(zone).isoformat(timespec='seconds')} ({name})"


@register_tool("wait", description="Wait for some seconds (at most 300), e.g. for a job.",
               safe_to_repeat=True, parameters={"type": "object", "required": ["seconds"],
                           "properties": {"seconds": {"type": "number", "minimum": 0,
                                                      "maximum": MAX_WAIT_SECONDS}}})
async def wait(arguments: dict[str, Any]) -> str:
    seconds = _number_arg(arguments, "seconds")
    if not 0 <= seconds <= MAX_WAIT_SECONDS:
        raise ToolError(f"'seconds' must be between 0 and {MAX_WAIT_SECONDS:g}")
    await asyncio.sleep(seconds)
    return f"waited {seconds:g}s"


@register_tool("echo", description="Return the given text unchanged.", safe_to_repeat=True,
               parameters={"type": "object", "required": ["text"],
                           "properties": {"text": {"type": "string"}}})
async def echo(arguments: dict[str, Any]) -> str:
    text = arguments.get("text")
    if not isinstance(text, str):
        raise ToolError("'text' must be a string")
    return text
