"""The streaming floor: the least an aiohttp gateway can do per request if it streams from the
provider, as exo-bridge does for its deadlines, failover before the first token and usage.

Like the shared harness's ``floor_proxy.py`` (one client session, no routing, accounting, auth
or checks), except that a non-streamed request is sent upstream with ``"stream": true`` and its
chunks are parsed and joined into one chat.completion, as exo-bridge does. A streamed request
is relayed as it comes. ``bench.floor_ratios`` measures it beside the floor, `serve` and the tray.

    .venv/bin/python -m bench.floor_stream --port 18790 --upstream http://127.0.0.1:18001/v1
"""

from __future__ import annotations

import argparse
from typing import Any

import aiohttp
from aiohttp import web

from router import jsonio

_AUTH = {"Content-Type": "application/json", "Authorization": "Bearer sk-fake-upstream"}


class _Answer:
    """A non-streamed answer joined from its chunks: content, finish reason, usage."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.last: dict[str, Any] = {}
        self.finish: str | None = None
        self.usage: dict[str, Any] | None = None
        self._held = b""

    def feed(self, piece: bytes) -> None:
        *lines, self._held = (self._held + piece).split(b"\n")
        for line in lines:
            if line.startswith(b"data:") and (payload := line[5:].strip()) != b"[DONE]":
                self._chunk(jsonio.loads(payload))

    def _chunk(self, chunk: dict[str, Any]) -> None:
        self.last = chunk
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if content := (choice.get("delta") or {}).get("content"):
                self.parts.append(content)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]

    def body(self) -> bytes:
        return jsonio.dumps({
            "id": self.last.get("id"), "object": "chat.completion",
            "created": self.last.get("created"), "model": self.last.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(self.parts)},
                         "logprobs": None, "finish_reason": self.finish}],
            "usage": self.usage})


def make_app(upstream: str) -> web.Application:
    app = web.Application()

    async def on_startup(app: web.Application) -> None:
        app["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def on_cleanup(app: web.Application) -> None:
        await app["session"].close()

    async def chat(request: web.Request) -> web.StreamResponse:
        asked = jsonio.loads(await request.read())
        streamed = bool(asked.get("stream"))
        upstream_body = {**asked, "stream": True, "stream_options": {"include_usage": True}}
        session: aiohttp.ClientSession = request.app["session"]
        async with session.post(f"{upstream}/chat/completions", data=jsonio.dumps(upstream_body),
                                headers=_AUTH) as up:
            if streamed:
                resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
                await resp.prepare(request)
                async for piece in up.content.iter_any():
                    await resp.write(piece)
                await resp.write_eof()
                return resp
            answer = _Answer()
            async for piece in up.content.iter_any():
                answer.feed(piece)
            return web.Response(body=answer.body(), content_type="application/json")

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "bench-model", "object": "model"}]})

    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=18790)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    web.run_app(make_app(args.upstream.rstrip("/")), host="127.0.0.1", port=args.port, print=None,
                access_log=None)


if __name__ == "__main__":
    main()
