"""The endpoint's Responses API (``POST /v1/responses``) and Messages API (``POST /v1/messages``)
routes: translate the caller's request to chat completions, route it on the Router's one path,
translate the answer (or its stream) back. Errors on /v1/messages take Anthropic's shape."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from router.endpoint.apis import messages_request, responses_request
from router.endpoint.apis.common import Unmappable
from router.endpoint.apis.messages_stream import MessageBuilder, error_type
from router.endpoint.apis.responses_stream import ResponseBuilder
from router.endpoint.apis.responses_tools import DROPPED_TOOLS_HEADER, tool_set
from router.errors import RoutingError, StreamBroken
from router.money.usage_guard import estimate_tokens
from router.result import Result, text_length

if TYPE_CHECKING:
    from router.endpoint.server import EndpointServer, Handler

MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
# Says that /v1/messages/count_tokens answered with our own estimate, not a tokenizer's count.
TOKEN_COUNT_HEADER = "x-exo-bridge-token-count"


class Builder(Protocol):
    def feed(self, chunks: list[dict[str, Any]]) -> bytes: ...

    def finish(self, usage: Mapping[str, Any] | None) -> bytes: ...

    def fail(self, message: str) -> bytes: ...

    def answer(self, completion: Mapping[str, Any], usage: Mapping[str, Any]) -> dict[str, Any]: ...


Translate = Callable[[Mapping[str, Any]], dict[str, Any]]
MakeBuilder = Callable[[Mapping[str, Any], dict[str, Any]], Builder]
Said = Callable[[Mapping[str, Any]], dict[str, str]]  # headers that say how a request was taken


def add_routes(app: web.Application, server: EndpointServer) -> None:
    app.router.add_post("/v1/responses", _route(
        server, responses_request.to_chat,
        lambda body, chat: ResponseBuilder(body, tool_set(body).origins), _dropped_tools))
    app.router.add_post(MESSAGES_PATH, _route(server, messages_request.to_chat, _message_builder))
    app.router.add_post(COUNT_TOKENS_PATH, _count_tokens(server))


def _dropped_tools(body: Mapping[str, Any]) -> dict[str, str]:
    """The hosted tools the model was not given (web_search, ...), named for the caller."""
    dropped = tool_set(body).dropped
    return {DROPPED_TOOLS_HEADER: ", ".join(dropped)} if dropped else {}


def _message_builder(body: Mapping[str, Any], chat: dict[str, Any]) -> Builder:
    return MessageBuilder(body, estimate_tokens(text_length(chat.get("messages"))))


def _count_tokens(server: EndpointServer) -> Callable[[web.Request], Any]:
    """``POST /v1/messages/count_tokens``: the request checked as /v1/messages checks it (a 400
    naming what cannot be translated, 404 for an unknown model), then our own estimate of its
    prompt (about four characters a token, tools and tool calls included), marked as one: the
    header ``x-exo-bridge-token-count: estimate`` and ``"estimate": true`` in the body. The
    models behind the router have different tokenizers; none is asked."""
    async def handle(request: web.Request) -> web.StreamResponse:
        from router.endpoint.server import _routing_error, error_body, json_response

        body = await server._json_body(request)
        if isinstance(body, web.Response):
            return body
        try:
            chat = messages_request.to_chat({**body, "max_tokens": 1})  # count_tokens has none
            await server.router.accept(chat)
        except Unmappable as exc:
            return json_response(error_body(str(exc), "invalid_request_error",
                                            "unsupported_parameter", exc.param), status=400)
        except RoutingError as exc:
            return _routing_error(exc, server.router)
        return json_response({"input_tokens": estimate_tokens(prompt_chars(chat)),
                              "estimate": True}, headers={TOKEN_COUNT_HEADER: "estimate"})
    return handle


def prompt_chars(chat: Mapping[str, Any]) -> int:
    """The characters a model reads of a chat request: message text, tool calls, tools."""
    messages = chat.get("messages") or []
    calls = [m.get("tool_calls") for m in messages if isinstance(m, dict) and m.get("tool_calls")]
    extra = [x for x in (calls, chat.get("tools")) if x]
    return text_length(messages) + sum(len(json.dumps(x)) for x in extra)


def _route(server: EndpointServer, translate: Translate, builder: MakeBuilder,
           said: Said = lambda body: {}) -> Callable[[web.Request], Any]:
    async def handle(request: web.Request) -> web.StreamResponse:
        from router.endpoint.server import _routing_error, error_body, json_response

        body = await server._json_body(request)
        if isinstance(body, web.Response):
            return body
        try:
            await _known_model(server, body)  # an unknown model is a 404 whatever else is sent
            chat = translate(body)
            await server.router.accept(chat)
        except Unmappable as exc:
            return json_response(error_body(str(exc), "invalid_request_error",
                                            "unsupported_parameter", exc.param), status=400)
        except RoutingError as exc:
            return _routing_error(exc, server.router)
        answer = builder(body, chat)
        headers = said(body)
        if body.get("stream"):
            return await _stream(server, request, chat, answer, headers)
        try:
            result = await server.router.chat(chat, checked=True)
        except RoutingError as exc:
            return _routing_error(exc, server.router)
        return json_response(answer.answer(result.response, result.usage),
                             headers={**_headers(result.provider_used, result), **headers})
    return handle


async def _known_model(server: EndpointServer, body: Mapping[str, Any]) -> None:
    """Raises UnknownModel for a model no alias or enabled provider knows (a model that is no
    string is left to the translation to name)."""
    model = body.get("model")
    if isinstance(model, str) and model.strip():
        await server.router.catalog.check(model)


async def _stream(server: EndpointServer, request: web.Request, chat: dict[str, Any],
                  answer: Builder, headers: Mapping[str, str]) -> web.StreamResponse:
    from router.endpoint.server import start_stream

    async with server.router.stream(chat, checked=True) as stream:
        started = await start_stream(request, stream, server.router, headers)
        if isinstance(started, web.Response):
            return started
        response, first, batches = started
        await response.write(answer.feed(first))
        try:
            async for batch in batches:
                if events := answer.feed(batch):
                    await response.write(events)
        except StreamBroken as exc:
            await response.write(answer.fail(str(exc)))
            return response
        await response.write(answer.finish(stream.result.usage if stream.result else None))
    return response


def _headers(provider: str, result: Result) -> dict[str, str]:
    from router.endpoint.server import attempts_header

    return {"x-exo-bridge-provider": provider,
            "x-exo-bridge-attempts": attempts_header(result.attempts)}


@web.middleware
async def anthropic_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error answered under /v1/messages (the token check's too) in Anthropic's shape:
    ``{"type": "error", "error": {"type", "message"}}``."""
    response = await handler(request)
    if not request.path.startswith(MESSAGES_PATH) or response.status < 400 \
            or not isinstance(response, web.Response) or response.prepared:
        return response
    try:
        error = json.loads(response.body)["error"]  # type: ignore[arg-type]
        message = str(error["message"])
    except (TypeError, ValueError, KeyError):
        return response
    response.body = json.dumps({"type": "error", "error": {
        "type": error_type(response.status), "message": message}}).encode()
    return response
