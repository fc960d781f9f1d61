"""The endpoint's connections: how many it holds, and how long a client may take to send a
request's head. aiohttp closes a connection idle for ``keepalive_timeout_s``; this adds:

- a header timeout (``header_timeout_s``): from a request's first byte to the end of its head;
- a cap (``max_connections``, held below half of what the process may open, the other half
  being for the connections to the providers): a connection beyond it closes the one that has
  been inactive longest and has no request in progress, or, when every one is busy with a
  request, is answered 503 and closed at once.

So a flood of idle or slow connections (no token needed to open one) cannot take the file
descriptors or the accept loop from a client that holds the token.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

FILES_IN_RESERVE = 192  # the ledger, the journal, logs, an accept burst (the listen backlog)
FLOOR = 16


def connection_cap(configured: int) -> int:
    """``configured``, held below half of the process's open-file limit less a reserve."""
    try:
        import resource
    except ImportError:  # not a Unix: no limit to read
        return configured
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    return min(configured, max(FLOOR, (soft - FILES_IN_RESERVE) // 2))


class ConnectionGuard:
    """The protocol factory of the endpoint's listening socket, around aiohttp's own."""

    def __init__(self, factory: Callable[[], asyncio.Protocol], *, cap: int, header_timeout_s: float):
        self._factory = factory
        self.cap = cap
        self.header_timeout_s = header_timeout_s
        self._open: dict[_Guarded, None] = {}  # least recently active first
        self._by_handler: dict[Any, _Guarded] = {}
        self.evicted = 0
        self.refused = 0

    def __call__(self) -> asyncio.Protocol:
        if len(self._open) >= self.cap and not self._evict():
            self.refused += 1
            return _Refused()
        return _Guarded(self, self._factory())

    def _evict(self) -> bool:
        for conn in self._open:
            if not conn.busy:
                del self._open[conn]  # counted out now: its socket closes on the next turn
                self.evicted += 1
                conn.close()
                return True
        return False

    def opened(self, conn: _Guarded) -> None:
        self._open[conn] = None
        self._by_handler[conn.handler] = conn

    def closed(self, conn: _Guarded) -> None:
        self._open.pop(conn, None)
        self._by_handler.pop(conn.handler, None)

    def request_started(self, handler: object) -> None:
        conn = self._by_handler.get(handler)
        if conn is not None:
            conn.busy += 1
            conn.head_done()

    def request_ended(self, handler: object) -> None:
        conn = self._by_handler.get(handler)
        if conn is not None:
            conn.busy -= 1
            if self._open.pop(conn, False) is None:
                self._open[conn] = None  # now the most recently active


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, with a deadline on each request's head."""

    __slots__ = ("busy", "guard", "handler", "timer", "transport")

    def __init__(self, guard: ConnectionGuard, handler: asyncio.Protocol):
        self.guard = guard
        self.handler = handler
        self.busy = 0
        self.timer: asyncio.TimerHandle | None = None
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.guard.opened(self)
        self.handler.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self.busy and self.timer is None:  # the first bytes of a request's head
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(self.guard.header_timeout_s, self._head_too_slow)
        self.handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self.handler.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.head_done()
        self.guard.closed(self)
        self.handler.connection_lost(exc)

    def pause_writing(self) -> None:
        self.handler.pause_writing()

    def resume_writing(self) -> None:
        self.handler.resume_writing()

    def head_done(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _head_too_slow(self) -> None:
        self.timer = None
        if not self.busy:
            self.close()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


_BUSY = json.dumps({"error": {"message": "too many connections; try again", "type": "server_error",
                              "param": None, "code": "too_many_connections"}}).encode()


class _Refused(asyncio.Protocol):
    """Every connection is busy with a request: say so and hang up."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                        b"Retry-After: 1\r\nConnection: close\r\nContent-Length: "
                        + str(len(_BUSY)).encode() + b"\r\n\r\n" + _BUSY)
        transport.close()
