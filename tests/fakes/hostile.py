"""Hostile answers for the fake providers: bombs, endless streams, malformed chunks, echoed keys.

Every answer is written lazily, a piece at a time, so the fake never holds what it sends and
stops as soon as the router hangs up; ``FakeProvider.sent_bytes`` counts what left (before any
compression, i.e. what the router would have to hold), so a test can tell how much was read.

    gzip_bomb_json      a JSON answer (ignoring stream: true), gzip, ``hostile_bytes`` inflated
    gzip_bomb_sse       an SSE stream, gzip, whose one data line inflates to ``hostile_bytes``
    huge_json           a JSON answer of ``hostile_bytes``, not compressed
    huge_line           an SSE stream with one data line of ``hostile_bytes``
    endless_keepalive   tokens, then ``: keep-alive`` comments for ever
    endless_tokens      valid tokens for ever
    malformed_delta     a chunk whose ``delta`` is a string
    malformed_index     a chunk whose ``index`` is a string
    malformed_content   a chunk whose ``content`` is a number
    malformed_tool_call a chunk whose ``tool_calls`` is an object
    malformed_usage     a usage chunk whose token counts are strings
    deep_chunk          a chunk nested 100,000 deep
    slow_line           a legitimate long data line sent in pieces, ``keep_alive_s`` apart
    echo_key            an error answer (``fault_status``) quoting the request's Authorization
    echo_key_mid_stream tokens, then an error chunk quoting the request's Authorization
    prefill_stuck       exo's ``: prefill_progress`` for ever, always the same count (10%)
    prefill_endless     exo's ``: prefill_progress`` for ever, each a token further (of 10^9)

The SSE faults send ``fault_after_tokens`` content tokens first (0: before the first token).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
import zlib
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.provider import FakeProvider

PIECE = 1 << 20
MALFORMED = {
    "malformed_delta": lambda: {"index": 0, "delta": "oops", "finish_reason": None},
    "malformed_index": lambda: {"index": "zero", "delta": {"content": "x"}, "finish_reason": None},
    "malformed_content": lambda: {"index": 0, "delta": {"content": 42}, "finish_reason": None},
    "malformed_tool_call": lambda: {"index": 0, "delta": {"tool_calls": {"index": 0}},
                                    "finish_reason": None},
}
FAULTS = frozenset({"gzip_bomb_json", "gzip_bomb_sse", "huge_json", "huge_line", "endless_keepalive",
                    "endless_tokens", "malformed_usage", "deep_chunk", "slow_line", "echo_key",
                    "echo_key_mid_stream", "prefill_stuck", "prefill_endless", *MALFORMED})


class _Out:
    """Writes to the response, through gzip when asked, counting the bytes before compression."""

    def __init__(self, fake: FakeProvider, response: web.StreamResponse, gzip: bool):
        self.fake = fake
        self.response = response
        self.zip = zlib.compressobj(6, zlib.DEFLATED, 31) if gzip else None

    async def write(self, data: bytes) -> None:
        self.fake.sent_bytes += len(data)
        if self.zip is not None:
            data = self.zip.compress(data) + self.zip.flush(zlib.Z_SYNC_FLUSH)
        if data:
            await self.response.write(data)

    async def data(self, obj: Any) -> None:
        await self.write(b"data: " + json.dumps(obj).encode() + b"\n\n")

    async def finish(self) -> None:
        if self.zip is not None:
            await self.response.write(self.zip.flush())
        await self.response.write_eof()


async def answer(fake: FakeProvider, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    fault = fake.fault
    if fault == "echo_key":
        quoted = f"upstream rejected Authorization: {request.headers.get('Authorization', '')}"
        return fake._error_response(fake.fault_status, quoted)
    if fault in ("gzip_bomb_json", "huge_json"):
        return await _json_answer(fake, request, gzip=fault == "gzip_bomb_json")
    return await _sse_answer(fake, request, body, gzip=fault == "gzip_bomb_sse")


async def _json_answer(fake: FakeProvider, request: web.Request, *, gzip: bool) -> web.StreamResponse:
    headers = {"Content-Type": "application/json"}
    if gzip:
        headers["Content-Encoding"] = "gzip"
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    out = _Out(fake, response, gzip)
    try:
        await out.write(b'{"id": "chatcmpl-x", "object": "chat.completion", "choices": [{"index": 0, '
                        b'"message": {"role": "assistant", "content": "')
        await _filler(out, fake.hostile_bytes)
        await out.write(b'"}, "finish_reason": "stop"}]}')
        await out.finish()
    except ConnectionError:  # the router hung up: what this fake is for
        fake.cancelled_streams += 1
    return response


async def _filler(out: _Out, size: int) -> None:
    piece = b"a" * PIECE
    for _ in range(size // PIECE):
        await out.write(piece)


async def _sse_answer(fake: FakeProvider, request: web.Request, body: dict[str, Any], *,
                      gzip: bool) -> web.StreamResponse:
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    if gzip:
        headers["Content-Encoding"] = "gzip"
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    out = _Out(fake, response, gzip)
    cid, model = f"chatcmpl-{uuid.uuid4().hex}", str(body.get("model", ""))
    try:
        if not (fake.fault or "").startswith("prefill"):  # exo sends no role-only chunk first
            await out.data(_chunk(cid, model, {"index": 0, "delta": {"role": "assistant",
                                                                     "content": ""},
                                               "finish_reason": None}))
        for _ in range(fake.fault_after_tokens):
            await out.data(_chunk(cid, model, _token("tok ")))
        await _sse_fault(fake, out, request, cid, model)
        await out.finish()
    except ConnectionError:  # the router hung up: what this fake is for
        fake.cancelled_streams += 1
    return response


def _token(text: str) -> dict[str, Any]:
    return {"index": 0, "delta": {"content": text}, "finish_reason": None}


def _chunk(cid: str, model: str, choice: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    return {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [choice] if choice is not None else [], **extra}


async def _sse_fault(fake: FakeProvider, out: _Out, request: web.Request, cid: str, model: str) -> None:
    fault = str(fake.fault)
    if fault in MALFORMED:
        await out.data(_chunk(cid, model, MALFORMED[fault]()))
    else:
        await _SSE_FAULTS[fault](fake, out, request, cid, model)
    await _stream_end(out, cid, model)


async def _huge_line(fake: FakeProvider, out: _Out, request: web.Request, cid: str, model: str) -> None:
    await out.write(b'data: {"id": "' + cid.encode() + b'", "object": "chat.completion.chunk", '
                    b'"choices": [{"index": 0, "delta": {"content": "')
    await _filler(out, fake.hostile_bytes)
    await out.write(b'"}, "finish_reason": null}]}\n\n')


async def _slow_line(fake: FakeProvider, out: _Out, request: web.Request, cid: str, model: str) -> None:
    await out.write(b'data: {"id": "' + cid.encode() + b'", "object": "chat.completion.chunk", '
                    b'"choices": [{"index": 0, "delta": {"content": "')
    for _ in range(8):
        await asyncio.sleep(fake.keep_alive_s)
        await out.write(b"x" * 1000)
    await out.write(b'"}, "finish_reason": null}]}\n\n')


async def _keep_alive(fake: FakeProvider, out: _Out, request: web.Request, cid: str, model: str) -> None:
    while True:
        await out.write(b": keep-alive\n\n")
        await asyncio.sleep(fake.keep_alive_s)


async def _tokens(fake: FakeProvider, out: _Out, request: web.Request, cid: str, model: str) -> None:
    while True:
        await out.data(_chunk(cid, model, _token("more ")))
        await asyncio.sleep(fake.chunk_delay_s)


async def _bad_usage(fake: FakeProvider, out: _Out, request: web.Request, cid: str, model: str) -> None:
    await out.data(_chunk(cid, model, None, usage={"prompt_tokens": "many", "completion_tokens": "few"}))


async def _deep(fake: FakeProvider, out: _Out, request: web.Request, cid: str, model: str) -> None:
    await out.write(b"data: " + b"[" * 100_000 + b"]" * 100_000 + b"\n\n")


def _prefill_report(done: int, total: int) -> bytes:
    return (b': prefill_progress {"PrefillProgressChunk": {"model": "m", "processed_tokens": '
            + str(done).encode() + b', "total_tokens": ' + str(total).encode() + b"}}\n\n")


async def _prefill(fake: FakeProvider, out: _Out, request: web.Request, cid: str, model: str) -> None:
    done = 0
    while True:
        if fake.fault == "prefill_endless":
            done += 1
        await out.write(_prefill_report(done or 100, 1000 if done == 0 else 10**9))
        await asyncio.sleep(fake.keep_alive_s)


async def _echo(fake: FakeProvider, out: _Out, request: web.Request, cid: str, model: str) -> None:
    quoted = f"upstream failed; Authorization: {request.headers.get('Authorization', '')}"
    await out.data({"error": {"message": quoted, "code": 502}})


_SSE_FAULTS = {"gzip_bomb_sse": _huge_line, "huge_line": _huge_line, "slow_line": _slow_line,
               "endless_keepalive": _keep_alive, "endless_tokens": _tokens,
               "malformed_usage": _bad_usage, "deep_chunk": _deep, "echo_key_mid_stream": _echo,
               "prefill_stuck": _prefill, "prefill_endless": _prefill}


async def _stream_end(out: _Out, cid: str, model: str) -> None:
    await out.data(_chunk(cid, model, {"index": 0, "delta": {}, "finish_reason": "stop"},
                          usage={"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}))
    await out.write(b"data: [DONE]\n\n")
