"""A recording reverse proxy in front of the endpoint: every request a coding agent sends (method,
path, headers, JSON body) and the status it got, with the answer relayed unchanged, streams
included. The real-agent tests read it to say what the agents sent and what they were answered."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

_HOP = {"host", "content-length", "transfer-encoding", "connection", "accept-encoding",
        "content-encoding"}


@dataclass
class Exchange:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)


class Recorder:
    def __init__(self, target_origin: str):
        self.target = target_origin
        self.exchanges: list[Exchange] = []
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._session = ClientSession(timeout=ClientTimeout(total=120), auto_decompress=False)
        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/{tail:.*}", self._relay)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _relay(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        exchange = Exchange(request.method, request.path_qs, dict(request.headers), body)
        self.exchanges.append(exchange)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with self._session.request(request.method, self.target + request.path_qs,
                                         data=raw or None, headers=headers) as upstream:
            exchange.status = upstream.status
            exchange.response_headers = dict(upstream.headers)
            response = web.StreamResponse(status=upstream.status, headers={
                k: v for k, v in upstream.headers.items() if k.lower() not in _HOP})
            await response.prepare(request)
            async for piece in upstream.content.iter_any():
                await response.write(piece)
            await response.write_eof()
            return response
