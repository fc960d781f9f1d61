"""The one HTTP client of the process, and the one place that names transport failures.

The client is an ``httpx.AsyncClient`` whose wire is aiohttp's (its C HTTP parser costs a
fraction of h11's CPU per streamed chunk). Errors of the layer below are translated here only.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from router.errors import Outcome

# What may escape a request or a stream read: httpx's errors (the transport maps most aiohttp
# errors to them), aiohttp's own, and bare socket errors.
TRANSPORT_ERRORS = (httpx.HTTPError, aiohttp.ClientError, OSError)


def _root(exc: BaseException) -> BaseException:
    """The original error below httpx's translation (the transport's ``raise ... from``)."""
    seen = exc
    while seen.__cause__ is not None and seen.__cause__ is not seen:
        seen = seen.__cause__
    return seen


def classify_transport_error(exc: BaseException) -> tuple[Outcome, str]:
    """(outcome, short secret-free detail) for a failure to reach or read a provider."""
    root = _root(exc)
    if isinstance(root, socket.gaierror) or "dns" in type(root).__name__.lower():
        return Outcome.REFUSED, "DNS lookup failed"
    if isinstance(root, ssl.SSLError | aiohttp.ClientSSLError):
        return Outcome.REFUSED, "TLS error"
    if isinstance(root, aiohttp.ClientConnectorError | ConnectionRefusedError) or (
            isinstance(exc, httpx.ConnectError) and root is exc):
        text = str(root).lower()
        if "name or service" in text or "nodename" in text or "getaddrinfo" in text:
            return Outcome.REFUSED, "DNS lookup failed"
        return Outcome.REFUSED, "connection refused"
    if isinstance(root, TimeoutError | asyncio.TimeoutError | aiohttp.ServerTimeoutError) or (
            isinstance(exc, httpx.TimeoutException) and root is exc):
        return Outcome.TIMEOUT, "connect timeout" if isinstance(exc, httpx.ConnectTimeout) \
            and root is exc else "timeout"
    if isinstance(root, aiohttp.ServerDisconnectedError | ConnectionResetError):
        return Outcome.SERVER_ERROR, "the server closed the connection"
    return Outcome.SERVER_ERROR, f"connection failed ({type(root).__name__})"


def transport_detail(exc: BaseException) -> str:
    return classify_transport_error(exc)[1]


# -- the chat hot path: one POST that streams ---------------------------------------------------
class WireResponse(Protocol):
    status: int
    headers: Mapping[str, str]

    def parts(self) -> AsyncIterator[bytes]: ...

    async def read(self) -> bytes: ...

    async def close(self) -> None: ...


class Wire(Protocol):
    async def post(self, url: str, body: bytes, headers: Mapping[str, str], *,
                   connect_s: float, read_s: float) -> WireResponse: ...


class _AiohttpResponse:
    def __init__(self, response: aiohttp.ClientResponse):
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    def parts(self) -> AsyncIterator[bytes]:
        return self._response.content.iter_any()

    async def read(self) -> bytes:
        return await self._response.read()

    async def close(self) -> None:
        self._response.release()


class AiohttpWire:
    """Straight onto the shared aiohttp session (the httpx client's own pool): no httpx
    request/response objects on the per-request path."""

    def __init__(self, transport: AiohttpTransport):
        self._transport = transport

    def _session(self) -> aiohttp.ClientSession:
        if not isinstance(self._transport.client, aiohttp.ClientSession):
            self._transport.client = self._transport.get_client()
        return self._transport.client

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], *,
                   connect_s: float, read_s: float) -> WireResponse:
        timeout = aiohttp.ClientTimeout(sock_connect=connect_s, sock_read=read_s, connect=connect_s)
        response = await self._session().post(
            url, data=body, headers={**headers, "content-type": "application/json"},
            timeout=timeout, allow_redirects=False)
        return _AiohttpResponse(response)


class _HttpxResponse:
    def __init__(self, response: httpx.Response):
        self._response = response
        self.status = response.status_code
        self.headers: Mapping[str, str] = response.headers

    def parts(self) -> AsyncIterator[bytes]:
        return self._response.aiter_bytes()

    async def read(self) -> bytes:
        return await self._response.aread()

    async def close(self) -> None:
        await self._response.aclose()


class HttpxWire:
    """Through any httpx client (one given by the caller, or httpx.MockTransport in tests)."""

    def __init__(self, client: httpx.AsyncClient):
        self._client = client

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], *,
                   connect_s: float, read_s: float) -> WireResponse:
        timeout = httpx.Timeout(connect=connect_s, read=read_s, write=30.0, pool=connect_s)
        request = self._client.build_request(
            "POST", url, content=body, headers={**headers, "content-type": "application/json"},
            timeout=timeout)
        return _HttpxResponse(await self._client.send(request, stream=True))


def _verified_context() -> ssl.SSLContext:
    """aiohttp builds a verifying context when it is imported; reuse it rather than load the
    CA store a second time (~30 ms of start-up)."""
    made = getattr(aiohttp.connector, "_SSL_CONTEXT_VERIFIED", None)
    return made if isinstance(made, ssl.SSLContext) else ssl.create_default_context()


def make_client_and_wire() -> tuple[httpx.AsyncClient, Wire]:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    transport = AiohttpTransport(verify=_verified_context(), limits=limits)
    return httpx.AsyncClient(transport=transport, limits=limits), AiohttpWire(transport)
