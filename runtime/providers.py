"""Providers by configured name (``[providers.<name>]``), built on first use and shared by
all the runs of a worker (the openai provider keeps one HTTP connection pool).

``fallback`` names a provider for tasks whose provider is not configured here; only
``taskops run --demo`` uses it (with ``scripted``), so the seeded demo history's running
tasks, which name providers the demo has no keys for, play out instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable

from taskops.config import ProviderKind, ProviderSettings, Settings
from taskops.runtime.agent import (
    AgentIO,
    Provider,
    ProviderError,
    RunContext,
    ToolOutcome,
    ToolSpec,
)
from taskops.runtime.openai_chat import OpenAIProvider
from taskops.runtime.scripted import ScriptedProvider

ProviderFactory = Callable[[ProviderSettings], Provider]

FACTORIES: dict[ProviderKind, ProviderFactory] = {
    ProviderKind.SCRIPTED: lambda config: ScriptedProvider(),
    ProviderKind.OPENAI: lambda config: OpenAIProvider(config),
}


class Providers:
    def __init__(self, settings: Settings,
                 factories: dict[ProviderKind, ProviderFactory] | None = None, *,
                 fallback: str | None = None) -> None:
        self.settings = settings
        self.fallback = fallback
        self.factories = {**FACTORIES, **(factories or {})}
        self._built: dict[str, Provider] = {}

    def get(self, name: str | None) -> Provider:
        """The provider a task names; :class:`ProviderError` if it is not configured."""
        if name in self._built:
            return self._built[name]
        config = self.settings.provider(name or "")
        if config is None and self.fallback is not None:
            return self.get(self.fallback)
        if config is None:
            configured = ", ".join(p.name for p in self.settings.providers)
            raise ProviderError(f"Provider '{name}' is not configured on this worker "
                                f"(configured: {configured})")
        provider = self.factories[config.kind](config)
        self._built[config.name] = provider
        return provider

    async def aclose(self) -> None:
        for provider in self._built.values():
            await provider.aclose()
        self._built.clear()


__all__ = ["AgentIO", "Provider", "ProviderError", "Providers", "RunContext", "ToolOutcome",
           "ToolSpec"]
