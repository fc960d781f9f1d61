"""The chat hot path's wire: one aiohttp session (its C HTTP parser costs a fraction of h11's
CPU per streamed chunk), and the one place that names aiohttp's failures.

Imported in a worker thread after start-up (Router.__aenter__), never by the router's modules
at their top: aiohttp costs ~150 ms to import (it loads the CA store twice at import).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Mapping

import aiohttp

from router.errors import Outcome
from router.http.body import ACCEPT_ENCODING
from router.http.wire import WireResponse

# What may escape a request or a stream read: aiohttp's errors and bare socket errors.
WIRE_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, OSError)
KEEPALIVE_S = 5.0
PROBE_CONNECTIONS = 64  # beside the chat requests' own: probes, price lists, key checks


def root_cause(exc: BaseException) -> BaseException:
    """The original error below any translation (a ``raise ... from`` chain)."""
    seen = exc
    while seen.__cause__ is not None and seen.__cause__ is not seen:
        seen = seen.__cause__
    return seen


def classify_transport_error(exc: BaseException) -> tuple[Outcome, str]:
    """(outcome, short secret-free detail) for a failure to reach or read a provider."""
    root = root_cause(exc)
    if isinstance(root, socket.gaierror) or "dns" in type(root).__name__.lower():
        return Outcome.REFUSED, "DNS lookup failed"
    if isinstance(root, ssl.SSLError | aiohttp.ClientSSLError):
        return Outcome.REFUSED, "TLS error"
    if isinstance(root, aiohttp.ClientConnectorError | ConnectionRefusedError):
        return refused(str(root))
    if isinstance(root, TimeoutError | asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return Outcome.TIMEOUT, "timeout"
    if isinstance(root, aiohttp.ServerDisconnectedError | ConnectionResetError):
        return Outcome.SERVER_ERROR, "the server closed the connection"
    return Outcome.SERVER_ERROR, f"connection failed ({type(root).__name__})"


def refused(text: str) -> tuple[Outcome, str]:
    lowered = text.lower()
    if "name or service" in lowered or "nodename" in lowered or "getaddrinfo" in lowered:
        return Outcome.REFUSED, "DNS lookup failed"
    return Outcome.REFUSED, "connection refused"


def verified_context() -> ssl.SSLContext:
    """aiohttp builds a verifying context when it is imported; reuse it rather than load the
    CA store once more (~25 ms)."""
    made = getattr(aiohttp.connector, "_SSL_CONTEXT_VERIFIED", None)
    return made if isinstance(made, ssl.SSLContext) else ssl.create_default_context()


class _AiohttpResponse:
    def __init__(self, response: aiohttp.ClientResponse):
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    def parts(self) -> AsyncIterator[bytes]:
        return self._response.content.iter_any()

    async def close(self) -> None:
        self._response.release()


class AiohttpWire:
    """The process's one connection pool; the httpx client for probes rides on it too
    (router.http.client).

    Its size follows the config: every provider's ``max_connections`` (the router holds each
    provider to its own, see router.slots) plus room for probes, so the pool itself never makes
    a request wait. Bodies are handed over as sent: router.http.body decompresses within limits.
    """

    failures = WIRE_ERRORS
    timeouts: tuple[type[BaseException], ...] = (TimeoutError,)  # aiohttp's read timeouts too

    def __init__(self, chat_connections: int = 1024) -> None:
        self.pool_size = chat_connections + PROBE_CONNECTIONS
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """Made on first use, inside the running loop."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.pool_size, keepalive_timeout=KEEPALIVE_S,
                                             ssl=verified_context())
            # No cookie jar: one upstream answer's cookies must not ride along on the next request
            # (which may be another client's), and skipping the jar is cheaper per request.
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                                  cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], *,
                   connect_s: float, read_s: float, total_s: float) -> WireResponse:
        timeout = aiohttp.ClientTimeout(total=total_s, sock_connect=connect_s, sock_read=read_s,
                                        connect=connect_s)
        response = await self.session().post(
            url, data=body, headers={**headers, "content-type": "application/json",
                                     "accept-encoding": ACCEPT_ENCODING},
            timeout=timeout, allow_redirects=False)
        return _AiohttpResponse(response)

    def classify(self, exc: BaseException) -> tuple[Outcome, str]:
        return classify_transport_error(exc)

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
