"""One attempt at one provider: send, enforce deadlines, parse SSE, normalise chunks.

This is the single seam between the router and the wire. It raises ProviderFailure with
the outcome; it never retries and never decides what to do next.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from router.errors import Outcome, ProviderFailure
from router.keys import Secret
from router.providers.base import Adapter
from router.wire import Wire, WireResponse

_ERROR_BODY_LIMIT = 64 * 1024
_CONTENT_KEYS = ("content", "reasoning", "reasoning_content", "tool_calls", "refusal")


@dataclass(frozen=True, slots=True)
class Deadlines:
    connect_s: float
    first_token_s: float  # from sending until the first content token (headers included)
    idle_s: float  # between data chunks once content flows


def has_content(chunk: Mapping[str, Any]) -> bool:
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if any(delta.get(k) for k in _CONTENT_KEYS):
            return True
    return False


def finish_reason(chunk: Mapping[str, Any]) -> str | None:
    for choice in chunk.get("choices") or ():
        if choice.get("finish_reason"):
            return str(choice["finish_reason"])
    return None


class Attempt:
    """An async iterator of standard chunks from one provider, with its own deadlines.

    ``content_started`` tells the caller whether a failure came after the first token.
    """

    def __init__(self, wire: Wire, adapter: Adapter, url: str,
                 body: dict[str, Any], key: Secret | None, deadlines: Deadlines):
        self._wire = wire
        self._adapter = adapter
        self._url = url
        self._body = body
        self._key = key
        self._deadlines = deadlines
        self.content_started = False
        self._finished = False
        self.first_token_at: float | None = None
        self.response_headers: Mapping[str, str] = {}

    async def batches(self) -> AsyncGenerator[list[dict[str, Any]], None]:
        """Standard chunks, a batch per network read: the chunks that arrived together are
        passed on together (one write downstream), each batch as soon as it is read."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._deadlines.first_token_s
        response = await self._open(deadline)
        self.response_headers = response.headers
        try:
            if response.status != 200:
                raise self._adapter.classify(response.status,
                                             await self._read_error(response, deadline),
                                             response.headers)
            if "text/event-stream" not in response.headers.get("content-type", ""):
                whole = await self._whole_body(response, deadline)
                for chunk in whole:
                    self._mark(chunk)
                yield whole
                return
            # SSE: whole network parts are read (one deadline per read, not per line)
            parts = response.parts()
            pending = b""
            while (part := await self._next_part(parts, deadline)) is not None:
                *lines, pending = (pending + part).split(b"\n")
                chunks, done, failure = self._events(lines)
                if chunks:
                    yield chunks
                if failure is not None:
                    raise failure  # after the chunks that came before it in the same read
                if done:
                    while await self._next_part(parts, deadline) is not None:
                        pass  # read to the body's end, so the connection can be reused
                    return
            if not (self._finished and not self._adapter.done_marker_required):
                raise ProviderFailure(Outcome.STREAM_CUT, "the stream ended without [DONE]"
                                      if self._finished else "the stream ended before it finished")
        finally:
            await response.close()

    def _events(self, lines: list[bytes]) -> tuple[list[dict[str, Any]], bool,
                                                   ProviderFailure | None]:
        """(standard chunks, whether [DONE] came, the failure that followed them) from complete
        SSE lines; comments, blank lines and other fields are skipped."""
        chunks: list[dict[str, Any]] = []
        try:
            for line in lines:
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    return chunks, True, None
                for chunk in _with_text(self._adapter.normalise(data := _json_object(payload)),
                                        data, payload):
                    self._mark(chunk)
                    self._finished = self._finished or finish_reason(chunk) is not None
                    chunks.append(chunk)
        except ProviderFailure as failure:
            return chunks, False, failure
        return chunks, False, None

    async def _open(self, deadline: float) -> WireResponse:
        body = json.dumps(self._body).encode()
        try:
            async with asyncio.timeout_at(deadline):
                return await self._wire.post(self._url, body, self._adapter.headers(self._key),
                                             connect_s=self._deadlines.connect_s,
                                             read_s=self._deadlines.idle_s)
        except TimeoutError:
            raise ProviderFailure(Outcome.TIMEOUT, "no response within the first-token deadline "
                                  f"({self._deadlines.first_token_s:g}s)") from None
        except self._wire.failures as exc:
            raise ProviderFailure(*self._wire.classify(exc)) from None

    async def _read_error(self, response: WireResponse, deadline: float) -> bytes:
        body = b""
        try:
            async with asyncio.timeout_at(max(deadline, asyncio.get_running_loop().time() + 2)):
                async for part in response.parts():
                    body += part
                    if len(body) > _ERROR_BODY_LIMIT:
                        break
        except (*self._wire.failures, *self._wire.timeouts):
            pass
        return body

    async def _whole_body(self, response: WireResponse, deadline: float) -> list[dict[str, Any]]:
        """A provider that ignored ``stream: true`` and sent one JSON completion."""
        try:
            async with asyncio.timeout_at(deadline):
                raw = await response.read()
        except self._wire.timeouts:
            raise ProviderFailure(Outcome.TIMEOUT, "no complete answer within the deadline "
                                  f"({self._deadlines.first_token_s:g}s)") from None
        except self._wire.failures:
            raise ProviderFailure(Outcome.BAD_RESPONSE, "the answer's body was cut short") from None
        try:
            data = json.loads(raw)
        except ValueError:
            raise ProviderFailure(Outcome.BAD_RESPONSE, "HTTP 200 with a body that is not JSON") \
                from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            if isinstance(data, dict) and data.get("error"):
                return self._adapter.normalise(data)  # raises the error
            raise ProviderFailure(Outcome.BAD_RESPONSE, "HTTP 200 but not a chat completion")
        return self._adapter.normalise(data)

    def _mark(self, chunk: Mapping[str, Any]) -> None:
        if not self.content_started and has_content(chunk):
            self.content_started = True
            self.first_token_at = time.perf_counter()

    async def _next_part(self, parts: AsyncIterator[bytes], deadline: float) -> bytes | None:
        """The next bytes of the body, or None at its end.

        Before the first content token our own deadline bounds each wait (never across a yield
        to the caller; keep-alive bytes do not move it). Once content flows, the wire's read
        timeout (set to ``idle_s``) bounds the gap between network reads at no extra cost.
        """
        try:
            if self.content_started:
                return await anext(parts)
            async with asyncio.timeout_at(deadline):
                return await anext(parts)
        except StopAsyncIteration:
            return None
        except self._wire.timeouts:
            if self.content_started:
                raise ProviderFailure(Outcome.STREAM_CUT, "the stream stalled for "
                                      f"{self._deadlines.idle_s:g}s") from None
            raise ProviderFailure(Outcome.TIMEOUT, "no first token within "
                                  f"{self._deadlines.first_token_s:g}s") from None
        except self._wire.failures as exc:
            raise ProviderFailure(Outcome.STREAM_CUT,
                                  f"the connection broke mid-stream ({self._wire.classify(exc)[1]})") \
                from None


class SentChunk(dict[str, Any]):
    """A standard chunk as the provider sent it, with its JSON text: a relay forwards ``sent``
    rather than serialise the dict again. Never changed after it is parsed."""

    __slots__ = ("sent",)

    def __init__(self, data: dict[str, Any], sent: bytes):
        super().__init__(data)
        self.sent = sent


def _with_text(chunks: list[dict[str, Any]], data: dict[str, Any],
               payload: bytes) -> list[dict[str, Any]]:
    """The adapter's chunks; the one it passed through unchanged keeps the provider's text."""
    if len(chunks) == 1 and chunks[0] is data:
        return [SentChunk(data, payload)]
    return chunks


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except ValueError:
        raise ProviderFailure(Outcome.BAD_RESPONSE, "a stream chunk is not JSON") from None
    if not isinstance(data, dict):
        raise ProviderFailure(Outcome.BAD_RESPONSE, "a stream chunk is not an object")
    return data
