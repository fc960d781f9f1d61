"""The local OpenAI-compatible endpoint: an aiohttp app over one Router, safe by default.

No global state and no signal handling here: ``serve`` and the tray app both create an
EndpointServer on their own loop, ``await start()`` (the socket is bound first, so a busy port
is an EndpointError, never an exit) and ``await stop()`` (stops accepting, lets in-flight
requests finish for a few seconds).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import socket
import time
from typing import Any

from aiohttp import web

from router import jsonio
from router.core import Router
from router.endpoint.answers import Handler, error_response, json_response, too_large
from router.endpoint.apis.routes import add_routes, anthropic_errors
from router.endpoint.connections import ConnectionGuard, connection_cap
from router.errors import EndpointError
from router.keys import Secret
from router.retry import no_retry_header

log = logging.getLogger(__name__)
LINGER_S = 1.0  # how long an unread request body is drained before the connection closes
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


def _host_name(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header.split("]", 1)[0] + "]"
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class EndpointServer:
    def __init__(self, router: Router, *, token: Secret, host: str = "127.0.0.1", port: int = 8741,
                 drain_s: float = 5.0):
        self.router = router
        self._drain_s = drain_s  # how long requests in flight may finish once stopping
        self.host = host
        self.port = port
        self._token = token.reveal().encode()
        self._settings = settings = router.config.server
        self._origins = set(settings.allowed_origins)
        self._max_body = settings.max_body_bytes
        self._hosts = LOOPBACK_HOSTS | {host, f"[{host}]"}
        self._created = int(time.time())  # the `created` of the models it lists
        self._runner: web.AppRunner | None = None
        self._listening: asyncio.Server | None = None
        self.connections: ConnectionGuard | None = None  # made by start()

    def use_token(self, token: Secret) -> None:
        """Take a new token at once (Settings → Regenerate): the next request must carry it;
        the old one gets 401 from now on."""
        self._token = token.reveal().encode()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        sock = self._bind()
        app = web.Application(middlewares=[anthropic_errors, self._guard],
                              client_max_size=self._max_body + 1)
        add_routes(app, self)  # /v1/chat/completions, /v1/responses, /v1/messages
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/models/{model:.+}", self._model)
        app.router.add_get("/health", self._health)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None,
                                     handler_cancellation=True, shutdown_timeout=self._drain_s,
                                     keepalive_timeout=self._settings.keepalive_timeout_s,
                                     lingering_time=LINGER_S)
        await self._runner.setup()
        assert self._runner.server is not None
        self.connections = ConnectionGuard(self._runner.server,
                                           cap=connection_cap(self._settings.max_connections),
                                           header_timeout_s=self._settings.header_timeout_s)
        self._listening = await asyncio.get_running_loop().create_server(
            self.connections, sock=sock, backlog=128)

    def _bind(self) -> socket.socket:
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise EndpointError(f"cannot resolve {self.host!r}: {exc.strerror}") from None
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise EndpointError(f"cannot listen on {self.host}:{self.port}: {exc.strerror} "
                                "(another exo-bridge running? choose another --port)") from None
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        return sock

    async def stop(self) -> None:
        """Stop accepting, then aiohttp's own graceful shutdown: idle connections close at once,
        requests in flight may finish (up to ``drain_s``)."""
        if self._listening is not None:
            self._listening.close()  # no new connections
        if self._runner is not None:
            await self._runner.cleanup()
        if self._listening is not None:
            await self._listening.wait_closed()

    # -- security -------------------------------------------------------------------------
    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        connections = self.connections
        assert connections is not None  # requests come only once started
        connections.request_started(request.protocol)  # its head is in: no header timeout
        try:
            response = await self._checked(request, handler)
        except web.HTTPException as exc:
            response = error_response(exc.status, exc.reason, "invalid_request_error", None)
        except Exception:  # a defect of ours: still an answer in OpenAI's shape, and logged
            log.exception("unexpected error answering %s %s", request.method, request.path)
            response = error_response(500, "internal error in exo-bridge (see its log)",
                                      "server_error", "internal_error")
        else:
            return self._said_no_retry(response)
        finally:
            connections.request_ended(request.protocol)
        origin = request.headers.get("Origin")
        if origin is not None and origin in self._origins:
            response.headers.update(self._cors(origin))
        return self._said_no_retry(response)

    @staticmethod
    def _said_no_retry(response: web.StreamResponse) -> web.StreamResponse:
        """An error no retry can fix says so (every API, every route)."""
        if not response.prepared:
            for name, value in no_retry_header(response.status).items():
                response.headers.setdefault(name, value)
        return response

    async def _checked(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if _host_name(request.headers.get("Host", "")) not in self._hosts:
            return error_response(403, "Host not allowed (DNS rebinding protection)",
                                  "permission_error", "host_not_allowed")
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self._origins:
            return error_response(403, f"Origin {origin!r} is not allowed; add it to [server] "
                                  "allowed_origins to permit it", "permission_error",
                                  "origin_not_allowed")
        if request.method == "OPTIONS" and origin is not None:
            return web.Response(status=204, headers=self._cors(origin))
        if request.path.startswith("/v1/") and not self._authorised(request):
            return error_response(401, "missing or wrong bearer token (see `exo-bridge token`)",
                                  "authentication_error", "invalid_api_key")
        response = await handler(request)  # its exceptions: answered in _guard
        if origin is not None and not response.prepared:
            response.headers.update(self._cors(origin))
        return response

    def _authorised(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer":  # the anthropic SDK sends its key as x-api-key
            value = request.headers.get("x-api-key", "")
        try:
            presented = value.strip().encode()
        except UnicodeEncodeError:  # bytes that are no UTF-8 (aiohttp keeps them as surrogates)
            return False  # are no token of ours
        return hmac.compare_digest(presented, self._token)

    @staticmethod
    def _cors(origin: str) -> dict[str, str]:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                "Access-Control-Allow-Headers": "authorization, content-type, x-api-key",
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS"}

    # -- routes ---------------------------------------------------------------------------
    async def _health(self, request: web.Request) -> web.Response:
        providers = [{"id": s.id, "name": s.name, "state": s.state, "detail": s.detail,
                      "download_progress": s.download_progress} for s in self.router.statuses()]
        ledger = self.router.ledger
        return json_response({"status": "ok" if ledger is None or ledger.can_record
                                  else "degraded", "providers": providers,
                                  "ledger": ledger.state() if ledger is not None else None})

    async def _models(self, request: web.Request) -> web.Response:
        data = [{"id": m, "object": "model", "created": self._created, "owned_by": owner}
                for m, owner in self.router.known_models().items()]
        return json_response({"object": "list", "data": data})

    async def _model(self, request: web.Request) -> web.Response:
        model = request.match_info["model"]
        owner = self.router.known_models().get(model)
        if owner is None:
            return error_response(404, f"model {model!r} is not an alias and no enabled provider "
                                  "lists it", "invalid_request_error", "model_not_found")
        return json_response({"id": model, "object": "model", "created": self._created,
                                  "owned_by": owner})

    async def json_body(self, request: web.Request) -> dict[str, Any] | web.Response:
        if (request.content_length or 0) > self._max_body:
            return too_large(self._max_body)
        try:
            async with asyncio.timeout(self._settings.body_timeout_s):
                raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return too_large(self._max_body)
        except TimeoutError:
            slow = error_response(408, "the request body did not arrive within "
                                  f"{self._settings.body_timeout_s:g}s (body_timeout_s)",
                                  "invalid_request_error", "request_timeout")
            slow.force_close()
            return slow
        try:
            body = jsonio.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested too deep to parse
            return error_response(400, "the request body is not valid JSON (or is nested too deep)",
                                  "invalid_request_error", "invalid_json")
        if not isinstance(body, dict):
            return error_response(400, "the request body must be a JSON object",
                                  "invalid_request_error", "invalid_json")
        return body
