"""What a client sends in the wrong shape is a 400 naming the field, never a 500: a list or a number
where a ``type`` tag belongs (``{"type": ["input_text"]}``), ``"stream": "false"`` on any of the
three APIs, bytes that are no UTF-8 in ``Authorization`` / ``x-api-key`` (a 401); and, property-
based, no body of any shape gets a 5xx from /v1/chat/completions, /v1/responses or /v1/messages."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.endpoint.server import EndpointServer
from tests.endpoint_fixtures import AUTH, HELLO
from tests.test_endpoint_hostile import http_client, threaded_endpoint  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("keys_in_env")

LLAMA = "mlx-community/Llama-3.2-3B-Instruct-4bit"
RESPONSES, MESSAGES, CHAT = "/responses", "/messages", "/chat/completions"


async def post(endpoint: EndpointServer, path: str, body: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(f"{endpoint.url}{path}", json=body, headers=AUTH)


def said(response: httpx.Response) -> str:
    """The error's message, in OpenAI's shape or Anthropic's."""
    return str(response.json()["error"]["message"])


def _responses(**fields: Any) -> dict[str, Any]:
    return {"model": LLAMA, "input": "hi", **fields}


def _messages(**fields: Any) -> dict[str, Any]:
    return {"model": LLAMA, "max_tokens": 50, "messages": HELLO, **fields}


def _part(part: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [part]}]


@pytest.mark.parametrize(("path", "body", "field"), [
    (RESPONSES, _responses(input=_part({"type": ["input_text"], "text": "hi"})),
     "input[0].content[0].type"),
    (RESPONSES, _responses(input=[{"type": {"message": 1}, "role": "user", "content": "hi"}]),
     "input[0].type"),
    (RESPONSES, _responses(tools=[{"type": ["function"], "name": "f"}]), "tools[0].type"),
    (RESPONSES, _responses(tool_choice={"type": ["function"], "name": "f"}), "tool_choice.type"),
    (RESPONSES, _responses(text={"format": {"type": ["json_object"]}}), "text.format.type"),
    (RESPONSES, _responses(input=[{"type": "function_call_output", "call_id": "c",
                                   "output": [{"type": [1], "text": "x"}]}]),
     "input[0].output[0].type"),
    (MESSAGES, _messages(tool_choice={"type": ["auto"]}), "tool_choice.type"),
    (MESSAGES, _messages(messages=_part({"type": ["text"], "text": "hi"})),
     "messages[0].content[0].type"),
    (MESSAGES, _messages(messages=_part({"type": "image", "source": {"type": ["base64"]}})),
     "messages[0].content[0].source.type"),
    (MESSAGES, _messages(tools=[{"type": {"custom": True}, "name": "f", "input_schema": {}}]),
     "tools[0].type"),
    (MESSAGES, _messages(messages=_part({"type": "tool_result", "tool_use_id": "t",
                                         "content": [{"type": 3.5}]})),
     "messages[0].content[0].content[0].type"),
])
async def test_a_type_tag_that_is_no_string_is_a_400_naming_it(endpoint, path, body, field):
    response = await post(endpoint, path, body)
    assert response.status_code == 400, response.text
    assert f"{field} must be a string" in said(response)
    if path == RESPONSES:
        assert response.json()["error"]["param"] == field
    else:
        assert response.json()["type"] == "error"  # Anthropic's shape


@pytest.mark.parametrize("path", [RESPONSES, MESSAGES, CHAT])
@pytest.mark.parametrize("stream", ["false", "true", {"on": False}, 0, 1, [], None])
async def test_stream_must_be_true_or_false(endpoint, exo, path, stream):
    body = {RESPONSES: _responses(), MESSAGES: _messages(),
            CHAT: {"model": LLAMA, "messages": HELLO}}[path]
    body["stream"] = stream
    response = await post(endpoint, path, body)
    if stream is None:  # absent, as null: not streamed
        assert response.status_code == 200 and "json" in response.headers["content-type"]
        return
    assert response.status_code == 400, (response.status_code, response.text[:200])
    assert "'stream' must be true or false" in said(response)
    assert exo.chat_requests == []  # nothing was asked upstream


async def _raw(endpoint: EndpointServer, path: str, header: bytes) -> bytes:
    address = urlsplit(endpoint.url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    writer.write(b"POST /v1" + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header
                 + b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                 b"Connection: close\r\n\r\n{}")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer


@pytest.mark.parametrize("header", [b"Authorization: Bearer \xff\xfe\xfd", b"Authorization: \xc3\x28",
                                    b"x-api-key: \xe2\x28\xa1token", b"Authorization: Basic \x80"])
@pytest.mark.parametrize("path", [CHAT, RESPONSES, MESSAGES])
async def test_bytes_that_are_no_utf8_in_a_token_are_a_401(endpoint, caplog, header, path):
    with caplog.at_level(logging.ERROR):
        answer = await _raw(endpoint, path, header)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 "), answer[:200]
    assert b"application/json" in head and b"token" in body
    assert b"Traceback" not in answer
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- property-based: no body gets a 5xx -----------------------------------------------------
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=12)
TEXT = st.text(max_size=12)


def tag(*valid: str) -> st.SearchStrategy[Any]:
    """A ``type`` tag: one we know, or anything at all."""
    return st.one_of(st.sampled_from(valid), st.sampled_from(valid), JSON)


def maybe(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


R_PART = maybe({"type": tag("input_text", "output_text", "text", "refusal", "input_image"),
                "text": TEXT | JSON, "image_url": TEXT | JSON, "detail": JSON, "refusal": JSON})
R_ITEM = maybe({"type": tag("message", "function_call", "function_call_output", "reasoning",
                            "item_reference"),
                "role": st.sampled_from(["user", "assistant", "system", "developer"]) | JSON,
                "content": TEXT | st.lists(R_PART | JSON, max_size=3) | JSON,
                "call_id": TEXT | JSON, "name": TEXT | JSON, "arguments": TEXT | JSON,
                "output": TEXT | st.lists(R_PART, max_size=2) | JSON})
R_BODY = st.fixed_dictionaries({"input": TEXT | st.lists(R_ITEM | JSON, max_size=3) | JSON}, optional={
    "model": st.just(LLAMA) | JSON, "stream": st.booleans() | JSON, "instructions": TEXT | JSON,
    "max_output_tokens": st.integers(-1, 100) | JSON, "temperature": JSON,
    "tools": st.lists(maybe({"type": tag("function", "web_search"), "name": TEXT | JSON,
                             "parameters": JSON}) | JSON, max_size=2) | JSON,
    "tool_choice": st.sampled_from(["auto", "none", "required"])
    | maybe({"type": tag("function"), "name": TEXT | JSON}) | JSON,
    "text": maybe({"format": maybe({"type": tag("text", "json_object", "json_schema"),
                                    "name": TEXT | JSON, "schema": JSON}) | JSON}) | JSON})

M_SOURCE = maybe({"type": tag("base64", "url"), "data": TEXT | JSON, "media_type": TEXT | JSON,
                  "url": TEXT | JSON})
M_BLOCK = maybe({"type": tag("text", "image", "tool_use", "tool_result", "thinking"),
                 "text": TEXT | JSON, "source": M_SOURCE | JSON, "id": TEXT | JSON,
                 "name": TEXT | JSON, "input": JSON, "tool_use_id": TEXT | JSON,
                 "content": TEXT | st.lists(maybe({"type": tag("text", "image"), "text": TEXT}),
                                            max_size=2) | JSON})
M_MESSAGE = maybe({"role": st.sampled_from(["user", "assistant"]) | JSON,
                   "content": TEXT | st.lists(M_BLOCK | JSON, max_size=3) | JSON})
M_BODY = st.fixed_dictionaries({"max_tokens": st.integers(-1, 100) | JSON,
                                "messages": st.lists(M_MESSAGE | JSON, max_size=3) | JSON}, optional={
    "model": st.just(LLAMA) | JSON, "stream": st.booleans() | JSON,
    "system": TEXT | st.lists(maybe({"type": tag("text"), "text": TEXT | JSON}), max_size=2) | JSON,
    "tools": st.lists(maybe({"type": tag("custom", "web_search_20250305"), "name": TEXT | JSON,
                             "input_schema": JSON}) | JSON, max_size=2) | JSON,
    "tool_choice": maybe({"type": tag("auto", "any", "none", "tool"), "name": TEXT | JSON,
                          "disable_parallel_tool_use": JSON}) | JSON,
    "output_config": maybe({"format": maybe({"type": tag("json_schema"), "schema": JSON}) | JSON}),
    "metadata": JSON, "temperature": JSON, "top_k": JSON, "stop_sequences": JSON})

C_BODY = st.fixed_dictionaries({"messages": st.lists(maybe({
    "role": st.sampled_from(["user", "assistant"]) | JSON,
    "content": TEXT | st.lists(maybe({"type": tag("text", "image_url"), "text": TEXT | JSON}),
                               max_size=2) | JSON}) | JSON, max_size=3) | JSON}, optional={
    "model": st.just(LLAMA) | JSON, "stream": st.booleans() | JSON,
    "stream_options": JSON, "max_tokens": JSON, "tools": JSON, "tool_choice": JSON})

BODIES = st.one_of(st.tuples(st.just(RESPONSES), R_BODY), st.tuples(st.just(MESSAGES), M_BODY),
                   st.tuples(st.just(CHAT), C_BODY), st.tuples(st.sampled_from(
                       [RESPONSES, MESSAGES, CHAT]), JSON))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request_=BODIES)
def test_no_body_to_any_of_the_three_apis_gets_a_5xx(threaded_endpoint, http_client, request_):  # noqa: F811
    path, body = request_
    response = http_client.post(f"{threaded_endpoint}{path}", content=json.dumps(body).encode(),
                                headers={**AUTH, "content-type": "application/json"})
    assert response.status_code < 500 or response.status_code == 503, \
        (path, body, response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert isinstance(response.json()["error"]["message"], str)


@pytest.mark.parametrize(("path", "field", "text"), [
    (RESPONSES, "temperature", "1e400"), (RESPONSES, "temperature", "9" * 400),
    (RESPONSES, "temperature", "Infinity"), (RESPONSES, "temperature", "2.5"),
    (RESPONSES, "top_p", "-0.1"), (MESSAGES, "temperature", "NaN"), (MESSAGES, "temperature", "1.5"),
    (MESSAGES, "top_k", "-" + "9" * 400), (MESSAGES, "top_p", "1e400"),
])
async def test_a_sampling_number_out_of_range_is_a_400_naming_it(endpoint, exo, path, field, text):
    body = (_responses() if path == RESPONSES else _messages())
    raw = json.dumps(body)[:-1] + f', "{field}": {text}}}'
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(f"{endpoint.url}{path}", content=raw.encode(),
                                   headers={**AUTH, "content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert f"'{field}' must be a number from" in said(response)
    assert exo.chat_requests == []
