"""The way out, closed and watched: an HTTP(S) proxy the agents are given (HTTPS_PROXY and
friends) that answers every request 403 and records where it wanted to go. The tests then know
what an agent tries to reach besides the endpoint, and that it works without it."""

from __future__ import annotations

import asyncio


class ClosedProxy:
    def __init__(self) -> None:
        self.targets: list[str] = []  # "host:port" of a CONNECT, else the absolute URL
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._refuse, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            parts = line.decode(errors="replace").split()
            if len(parts) >= 2:
                self.targets.append(parts[1])
            writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
