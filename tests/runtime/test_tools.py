"""The tool registry, the built-ins and operator plugins."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from taskops.runtime import tools as tools_module
from taskops.runtime.agent import ToolOutcome
from taskops.runtime.tools import ToolError, ToolRegistry, load_plugins, registry


async def test_the_built_ins_are_registered() -> None:
    assert {"current_time", "wait", "echo"} <= {s.name for s in registry.specs()}
    assert await registry.call("echo", {"text": "hi"}) == ToolOutcome("hi")
    assert await registry.call("wait", {"seconds": 0}) == ToolOutcome("waited 0s")
    now = await registry.call("current_time", {"timezone": "Europe/Berlin"})
    assert not now.is_error
    assert now.result.endswith("(Europe/Berlin)")


@pytest.mark.parametrize(("name", "arguments", "error"), [
    ("wait", {"seconds": "soon"}, "'seconds' must be a number"),
    ("wait", {"seconds": 301}, "'seconds' must be between 0 and 300"),
    ("echo", {}, "'text' must be a string"),
    ("current_time", {"timezone": "Mars/Base"}, "unknown timezone 'Mars/Base'"),
    ("nope", {}, "Unknown tool 'nope' (available: "),
])
async def test_bad_calls_become_error_outcomes(name: str, arguments: dict[str, Any],
                                               error: str) -> None:
    outcome = await registry.call(name, arguments)
    assert outcome.is_error
    assert outcome.result.startswith(error)


async def test_register_a_tool_and_its_results() -> None:
    mine = ToolRegistry()

    @mine.register("lookup", description="Find a user.",
                   parameters={"type": "object", "properties": {"id": {"type": "integer"}}})
    async def lookup(arguments: dict[str, Any]) -> dict[str, Any]:
        if arguments.get("id") == 0:
            raise ToolError("no user 0")
        if arguments.get("id") == -1:
            raise RuntimeError("database down")
        return {"id": arguments["id"], "name": "Ann"}

    assert mine.specs()[0].description == "Find a user."
    assert await mine.call("lookup", {"id": 1}) == ToolOutcome('{"id": 1, "name": "Ann"}')
    assert await mine.call("lookup", {"id": 0}) == ToolOutcome("no user 0", is_error=True)
    assert await mine.call("lookup", {"id": -1}) == ToolOutcome(
        "RuntimeError: database down", is_error=True)
    with pytest.raises(ValueError, match="already registered"):
        mine.register("lookup")(lookup)


async def test_a_killed_tool_is_cancelled_not_reported() -> None:
    call = asyncio.create_task(registry.call("wait", {"seconds": 60}))
    await asyncio.sleep(0.01)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call


def test_plugins_load_from_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    class Point:
        def __init__(self, name: str, plugin: Any) -> None:
            self.name, self.value, self._plugin = name, f"pkg:{name}", plugin

        def load(self) -> Any:
            if isinstance(self._plugin, Exception):
                raise self._plugin
            return self._plugin

    def register(target: ToolRegistry) -> None:
        @target.register("ticket")
        async def ticket(arguments: dict[str, Any]) -> str:
            """Open a ticket."""
            return "T-1"

    points = [Point("good", register), Point("broken", ImportError("no module"))]
    monkeypatch.setattr(tools_module, "entry_points", lambda group: points)
    target = ToolRegistry()
    assert load_plugins(target) == ["good"]
    assert target.specs()[0].description == "Open a ticket."
