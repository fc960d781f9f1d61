"""What the Router's collaborators (the catalog, the exo companion) may ask of it: its config
and health book, read afresh each time (Settings may replace them), a task it keeps, a probe and
its HTTP client. Each collaborator names the few things more it needs in a Protocol of its own;
none imports the Router."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import httpx

    from router.config import Config, ProviderConfig
    from router.health import HealthBook
    from router.providers import Snapshot


class RouterHost(Protocol):
    config: Config
    health: HealthBook

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...
    async def probe(self, provider: ProviderConfig) -> Snapshot: ...
    async def http(self) -> httpx.AsyncClient: ...
