"""The HTTP stack of one Router: the chat wire (aiohttp) and the probe client (httpx).

Both libraries cost ~200 ms to import, so they load in a worker thread once the router has
started (the tray shows its icon meanwhile); a request waits for the wire only if it comes
first, a probe for the client. A caller's own httpx client is used as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from router.http.wire import Wire

if TYPE_CHECKING:
    import httpx

Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]


class HttpStack:
    def __init__(self, http: httpx.AsyncClient | None = None, *, chat_connections: int = 1024):
        self._http = http
        self._chat_connections = chat_connections
        self._wire: Wire | None = None
        self._owned = http is None
        self._wire_loaded: asyncio.Task[Wire] | None = None
        self._http_loaded: asyncio.Task[httpx.AsyncClient] | None = None

    def start(self, spawn: Spawn) -> None:
        """Begin loading (in tasks the router owns), or wrap the caller's client."""
        if self._http is not None:
            from router.http.client import HttpxWire  # the caller's httpx is loaded already

            self._wire = HttpxWire(self._http)
            return
        self._wire_loaded = spawn(asyncio.to_thread(_load_wire, self._chat_connections))
        self._http_loaded = spawn(self._load_http(self._wire_loaded))

    async def _load_http(self, wire_loaded: asyncio.Task[Wire]) -> httpx.AsyncClient:
        return await asyncio.to_thread(_load_http_client, await wire_loaded)

    @property
    def loaded_wire(self) -> Wire | None:
        return self._wire

    async def wire(self) -> Wire:
        if self._wire is None:
            if self._wire_loaded is None:
                raise RuntimeError("use the Router as `async with Router(config) as router`")
            self._wire = await asyncio.shield(self._wire_loaded)
        return self._wire

    async def http(self) -> httpx.AsyncClient:
        if self._http is None:
            if self._http_loaded is None:
                raise RuntimeError("use the Router as `async with Router(config) as router`")
            self._http = await asyncio.shield(self._http_loaded)
        return self._http

    async def aclose(self) -> None:
        """Close what this stack opened (a caller's client stays the caller's)."""
        if self._owned:
            if self._http is not None:
                await self._http.aclose()
            if self._wire is not None:
                await self._wire.close()


def _load_wire(chat_connections: int) -> Wire:
    from router.http.transport import AiohttpWire

    return AiohttpWire(chat_connections)


def _load_http_client(wire: Wire) -> httpx.AsyncClient:
    from router.http.client import make_http_client
    from router.http.transport import AiohttpWire

    assert isinstance(wire, AiohttpWire)
    return make_http_client(wire)
