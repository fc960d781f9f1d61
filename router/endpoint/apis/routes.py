"""The endpoint's three chat APIs through one route shape: chat completions (``POST
/v1/chat/completions``, the identity translation), the Responses API (``POST /v1/responses``)
and the Messages API (``POST /v1/messages``). Each translates the caller's request to chat
completions, routes it on the Router's one path and translates the answer (or its stream) back;
an ``Api`` says how. Errors on /v1/messages take Anthropic's shape."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from router.endpoint.answers import (
    Handler,
    answered_headers,
    error_body,
    json_response,
    routing_error,
    start_stream,
)
from router.endpoint.apis import messages_request, responses_request
from router.endpoint.apis.chat_stream import ChatBuilder
from router.endpoint.apis.common import Unmappable
from router.endpoint.apis.messages_stream import MessageBuilder, error_type
from router.endpoint.apis.responses_stream import ResponseBuilder
from router.endpoint.apis.responses_tools import DROPPED_TOOLS_HEADER, tool_set
from router.errors import RoutingError, StreamBroken
from router.money.usage_guard import estimate_tokens
from router.result import text_length

if TYPE_CHECKING:
    from router.core import Router

log = logging.getLogger(__name__)
INTERNAL_MID_ANSWER = "internal error in exo-bridge mid-answer (see its log)"

MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
# Says that /v1/messages/count_tokens answered with our own estimate, not a tokenizer's count.
TOKEN_COUNT_HEADER = "x-exo-bridge-token-count"


class Builder(Protocol):
    def feed(self, chunks: list[dict[str, Any]]) -> bytes: ...

    def finish(self, usage: Mapping[str, Any] | None) -> bytes: ...

    def fail(self, message: str, internal: bool = False) -> bytes: ...

    def answer(self, completion: Mapping[str, Any], usage: Mapping[str, Any]) -> Mapping[str, Any]: ...


class Endpoint(Protocol):
    """What a route needs of the endpoint: its Router, and the request body read within its
    limits (or the error answer that says why not)."""

    router: Router

    async def json_body(self, request: web.Request) -> dict[str, Any] | web.Response: ...


Translate = Callable[[Mapping[str, Any]], dict[str, Any]]
MakeBuilder = Callable[[Mapping[str, Any], dict[str, Any]], Builder]
Said = Callable[[Mapping[str, Any]], dict[str, str]]  # headers that say how a request was taken


def _identity(body: Mapping[str, Any]) -> dict[str, Any]:
    return body  # type: ignore[return-value]  # json_body's dict, taken as it is


def _said_nothing(body: Mapping[str, Any]) -> dict[str, str]:
    return {}


@dataclass(frozen=True, slots=True)
class Api:
    """One API on the Router's one path: how its request becomes a chat request
    (``translate``; None: it is one already), how the answer is given back (``builder``), and
    what headers say of how the request was taken (``said``)."""

    builder: MakeBuilder
    translate: Translate | None = None
    said: Said = _said_nothing


def _dropped_tools(body: Mapping[str, Any]) -> dict[str, str]:
    """The hosted tools the model was not given (web_search, ...), named for the caller."""
    dropped = tool_set(body).dropped
    return {DROPPED_TOOLS_HEADER: ", ".join(dropped)} if dropped else {}


def _message_builder(body: Mapping[str, Any], chat: dict[str, Any]) -> Builder:
    return MessageBuilder(body, estimate_tokens(text_length(chat.get("messages"))))


CHAT_COMPLETIONS = Api(lambda body, chat: ChatBuilder(body))
RESPONSES = Api(lambda body, chat: ResponseBuilder(body, tool_set(body).origins),
                responses_request.to_chat, _dropped_tools)
MESSAGES = Api(_message_builder, messages_request.to_chat)
APIS = {"/v1/chat/completions": CHAT_COMPLETIONS, "/v1/responses": RESPONSES,
        MESSAGES_PATH: MESSAGES}


def add_routes(app: web.Application, endpoint: Endpoint) -> None:
    for path, api in APIS.items():
        app.router.add_post(path, route(endpoint, api))
    app.router.add_post(COUNT_TOKENS_PATH, _count_tokens(endpoint))


def _unmappable(exc: Unmappable) -> web.Response:
    return json_response(error_body(str(exc), "invalid_request_error", "unsupported_parameter",
                                    exc.param), status=400)


def _count_tokens(endpoint: Endpoint) -> Handler:
    """``POST /v1/messages/count_tokens``: the request checked as /v1/messages checks it (a 400
    naming what cannot be translated, 404 for an unknown model), then our own estimate of its
    prompt (about four characters a token, tools and tool calls included), marked as one: the
    header ``x-exo-bridge-token-count: estimate`` and ``"estimate": true`` in the body. The
    models behind the router have different tokenizers; none is asked."""
    async def handle(request: web.Request) -> web.StreamResponse:
        body = await endpoint.json_body(request)
        if isinstance(body, web.Response):
            return body
        try:
            chat = messages_request.to_chat({**body, "max_tokens": 1})  # count_tokens has none
            await endpoint.router.accept(chat)
        except Unmappable as exc:
            return _unmappable(exc)
        except RoutingError as exc:
            return routing_error(exc)
        return json_response({"input_tokens": estimate_tokens(prompt_chars(chat)),
                              "estimate": True}, headers={TOKEN_COUNT_HEADER: "estimate"})
    return handle


def prompt_chars(chat: Mapping[str, Any]) -> int:
    """The characters a model reads of a chat request: message text, tool calls, tools."""
    messages = chat.get("messages") or []
    calls = [m.get("tool_calls") for m in messages if isinstance(m, dict) and m.get("tool_calls")]
    extra = [x for x in (calls, chat.get("tools")) if x]
    return text_length(messages) + sum(len(json.dumps(x)) for x in extra)


def route(endpoint: Endpoint, api: Api) -> Handler:
    """The one route shape: read, check (the model first when a translation could fail on
    something else), translate, route, answer whole or streamed."""
    async def handle(request: web.Request) -> web.StreamResponse:
        body = await endpoint.json_body(request)
        if isinstance(body, web.Response):
            return body
        router = endpoint.router
        try:
            if api.translate is None:
                chat = body
            else:
                await _known_model(router, body)  # an unknown model is a 404 whatever else is sent
                chat = api.translate(body)
            await router.accept(chat)
        except Unmappable as exc:
            return _unmappable(exc)
        except RoutingError as exc:
            return routing_error(exc)
        answer = api.builder(body, chat)
        headers = api.said(body)
        if body.get("stream"):
            return await _stream(router, request, chat, answer, headers)
        try:
            result = await router.chat(chat, checked=True)
        except RoutingError as exc:
            return routing_error(exc)
        return json_response(answer.answer(result.response, result.usage),
                             headers={**answered_headers(result.provider_used, result.attempts),
                                      **headers})
    return handle


async def _known_model(router: Router, body: Mapping[str, Any]) -> None:
    """Raises UnknownModel for a model no alias or enabled provider knows (a model that is no
    string is left to the translation to name)."""
    model = body.get("model")
    if isinstance(model, str) and model.strip():
        await router.catalog.check(model)


async def _stream(router: Router, request: web.Request, chat: dict[str, Any],
                  answer: Builder, headers: Mapping[str, str]) -> web.StreamResponse:
    """Forward chunks as they come, those that arrived together in one write; a failure after
    the first token ends with the API's error event, never a clean end."""
    async with router.stream(chat, checked=True) as stream:
        started = await start_stream(request, stream, headers)
        if isinstance(started, web.Response):
            return started
        response, first, batches = started
        try:
            batch: list[dict[str, Any]] | None = first
            while batch is not None:
                if events := answer.feed(batch):
                    await response.write(events)
                batch = await anext(batches, None)
        except StreamBroken as exc:
            await response.write(answer.fail(str(exc)))
            return response
        except ConnectionError:
            raise  # the client went away
        except Exception:  # a defect of ours: the client still learns the answer is incomplete
            log.exception("unexpected error mid-stream")
            await response.write(answer.fail(INTERNAL_MID_ANSWER, internal=True))
            return response
        await response.write(answer.finish(stream.result.usage if stream.result else None))
    return response


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
