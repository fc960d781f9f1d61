"""The endpoint's answers in OpenAI's shape: JSON bodies, errors (a RoutingError's status, its
attempts and when a retry can help), and the start of an SSE answer. Every route uses these;
none reaches into another's helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from router import jsonio
from router.errors import (
    Attempt,
    NoProviderAvailable,
    Outcome,
    RequestRejected,
    RoutingError,
    UnknownModel,
)
from router.retry import retry_headers

if TYPE_CHECKING:
    from router.journey import ChatStream

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Batches = AsyncIterator[list[dict[str, Any]]]


def error_body(message: str, kind: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def json_response(data: Any, status: int = 200,
                  headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON answer, serialised by orjson (aiohttp's own uses the standard library)."""
    return web.Response(body=jsonio.dumps(data), status=status, headers=headers,
                        content_type="application/json")


def error_response(status: int, message: str, kind: str, code: str | None,
                   headers: Mapping[str, str] | None = None) -> web.Response:
    return json_response(error_body(message, kind, code), status=status, headers=headers)


def attempts_header(attempts: tuple[Attempt, ...] | list[Attempt]) -> str:
    return ",".join(f"{a.provider}:{a.outcome}" for a in attempts)


def answered_headers(provider: str, attempts: tuple[Attempt, ...] | list[Attempt]) -> dict[str, str]:
    """Who answered, after which attempts (every answer, streamed or whole)."""
    return {"x-exo-bridge-provider": provider, "x-exo-bridge-attempts": attempts_header(attempts)}


def too_large(limit: int) -> web.Response:
    return error_response(413, f"the request body is larger than {limit} bytes",
                          "invalid_request_error", "request_too_large")


def routing_error(exc: RoutingError) -> web.Response:
    """A request nobody could answer: 404 an unknown model, 400 the request's own fault, 429
    when only limits stood in the way, else 503; with the attempts and when a retry can help."""
    headers = {"x-exo-bridge-attempts": attempts_header(exc.attempts)}
    if isinstance(exc, UnknownModel):
        return error_response(404, str(exc), "invalid_request_error", "model_not_found", headers)
    if isinstance(exc, RequestRejected):
        return error_response(400, str(exc), "invalid_request_error", "bad_request", headers)
    headers.update(retry_headers(exc.retry_after_s))  # when a retry can help; else say so
    if isinstance(exc, NoProviderAvailable) and exc.only_limits:
        return error_response(429, str(exc), "rate_limit_error", "rate_limited", headers)
    return error_response(503, str(exc), "server_error", "no_provider_available", headers)


async def start_stream(request: web.Request, stream: ChatStream,
                       headers: Mapping[str, str] | None = None) \
        -> web.Response | tuple[web.StreamResponse, list[dict[str, Any]], Batches]:
    """An SSE answer begun once the first chunks are known (who answers, after which
    attempts), with them and the rest to come; or the error answer when nobody can."""
    batches = stream.batches()
    try:
        first = await anext(batches)
    except RoutingError as exc:
        return routing_error(exc)
    provider = stream.provider or ""
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        **answered_headers(provider, [*stream.attempts, Attempt(provider, Outcome.OK)]),
        **(headers or {})})
    await response.prepare(request)
    return response, first, batches
