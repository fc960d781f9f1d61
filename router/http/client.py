"""The httpx client for everything off the chat hot path (probes, price lists, key checks),
on the chat wire's own aiohttp session; and the httpx names of transport failures.

Like router.http.transport, imported in a worker thread after start-up, and inside the functions
that probe (httpx costs ~50 ms to import).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_aiohttp import AiohttpTransport

from router import jsonio
from router.errors import Outcome
from router.http.body import ACCEPT_ENCODING, BodyLimits, read_all
from router.http.transport import (
    KEEPALIVE_S,
    WIRE_ERRORS,
    AiohttpWire,
    classify_transport_error,
    refused,
    root_cause,
    verified_context,
)
from router.http.wire import WireResponse
from router.provider_settings import ProviderSettings

# What may escape a request through an httpx client: httpx's errors (the transport maps most
# aiohttp errors to them), aiohttp's own, and bare socket errors.
HTTP_ERRORS: tuple[type[BaseException], ...] = (httpx.HTTPError, *WIRE_ERRORS)
# The same, or an answer that is not the JSON expected (probes and price lists).
HTTP_OR_JSON_ERRORS: tuple[type[BaseException], ...] = (*HTTP_ERRORS, ValueError)


def timeout(total_s: float, connect_s: float) -> httpx.Timeout:
    return httpx.Timeout(total_s, connect=connect_s)


def classify_http_error(exc: BaseException) -> tuple[Outcome, str]:
    """As classify_transport_error, for errors httpx raised itself (no aiohttp error below)."""
    if root_cause(exc) is exc:
        if isinstance(exc, httpx.ConnectError):
            return refused(str(exc))
        if isinstance(exc, httpx.TimeoutException):
            return Outcome.TIMEOUT, "connect timeout" if isinstance(exc, httpx.ConnectTimeout) \
                else "timeout"
    return classify_transport_error(exc)


def http_error_detail(exc: BaseException) -> str:
    return classify_http_error(exc)[1]


def make_http_client(wire: AiohttpWire) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=wire.pool_size, keepalive_expiry=KEEPALIVE_S)
    transport = AiohttpTransport(verify=verified_context(), limits=limits, client=wire.session)
    return httpx.AsyncClient(transport=transport, limits=limits,
                             headers={"accept-encoding": ACCEPT_ENCODING})


@dataclass(frozen=True, slots=True)
class Fetched:
    """A provider's answer to a GET, read whole within the provider's limits."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        """The body as JSON (router.jsonio: a probe of a large cluster parses several MB);
        ValueError when it is not (or is nested too deep)."""
        try:
            return jsonio.loads(self.content)
        except RecursionError:
            raise ValueError("JSON nested too deep") from None


async def fetch(http: httpx.AsyncClient, url: str, provider: ProviderSettings, *, seconds: float,
                headers: Mapping[str, str] | None = None) -> Fetched:
    """GET ``url`` (probes, price lists, key checks): the body decompressed within the
    provider's max_response_bytes / max_decompressed_bytes, the whole exchange within
    ``seconds``. Raises one of HTTP_OR_JSON_ERRORS (router.http.body.BodyError is a ValueError)."""
    async with asyncio.timeout(seconds):
        async with http.stream("GET", url, headers=headers,
                               timeout=timeout(seconds, provider.connect_timeout_s)) as response:
            content = await read_all(response.aiter_raw(), response.headers,
                                     BodyLimits.of(provider))
            return Fetched(response.status_code, response.headers, content)


class _HttpxResponse:
    def __init__(self, response: httpx.Response):
        self._response = response
        self.status = response.status_code
        self.headers: Mapping[str, str] = response.headers
        if response.is_stream_consumed:  # in memory already (httpx.MockTransport): decoded
            self.headers = {k: v for k, v in response.headers.items() if k != "content-encoding"}

    def parts(self) -> AsyncIterator[bytes]:
        if self._response.is_stream_consumed:
            return _once(self._response.content)
        return self._response.aiter_raw()

    async def close(self) -> None:
        await self._response.aclose()


async def _once(content: bytes) -> AsyncIterator[bytes]:
    yield content


class HttpxWire:
    """Through any httpx client (one given by the caller, or httpx.MockTransport in tests)."""

    failures = HTTP_ERRORS
    timeouts: tuple[type[BaseException], ...] = (TimeoutError, httpx.TimeoutException)

    def __init__(self, client: httpx.AsyncClient):
        self._client = client

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], *,
                   connect_s: float, read_s: float, total_s: float) -> WireResponse:
        """``total_s`` is checked by the reader at each read (httpx has no total timeout)."""
        request = self._client.build_request(
            "POST", url, content=body, headers={**headers, "content-type": "application/json",
                                                "accept-encoding": ACCEPT_ENCODING},
            timeout=httpx.Timeout(connect=connect_s, read=read_s, write=30.0, pool=connect_s))
        return _HttpxResponse(await self._client.send(request, stream=True))

    def classify(self, exc: BaseException) -> tuple[Outcome, str]:
        return classify_http_error(exc)

    async def close(self) -> None:
        """The client is the caller's to close."""
