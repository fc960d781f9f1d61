"""The one HTTP client of the process, and the one place that names transport failures.

The client is an ``httpx.AsyncClient`` whose wire is aiohttp's (its C HTTP parser costs a
fraction of h11's CPU per streamed chunk). Errors of the layer below are translated here only.
"""

from __future__ import annotations

import asyncio
import socket
import ssl

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from router.errors import Outcome

# What may escape a request or a stream read: httpx's errors (the transport maps most aiohttp
# errors to them), aiohttp's own, and bare socket errors.
TRANSPORT_ERRORS = (httpx.HTTPError, aiohttp.ClientError, OSError)


def make_client(*, max_connections: int = 200) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=50)
    return httpx.AsyncClient(transport=AiohttpTransport(limits=limits), limits=limits)


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
