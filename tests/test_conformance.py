"""Every body and chunk the endpoint produces, against OpenAI's published schemas (the extract in
tests/schemas/openai.json, from openai-openapi; see its ``commit``) — success, stream chunks, the
usage chunk and every error — on the exo, OpenRouter and Hugging Face paths. The Messages API,
for which Anthropic publishes no OpenAPI document here, is held to the anthropic SDK's own
(pydantic) types."""

from __future__ import annotations

import json

import anthropic.types
import httpx
import pydantic
import pytest

from tests.endpoint_fixtures import (
    ANSWERS,
    AUTH,
    HELLO,
    PATHS,
    TOKEN,
    answer_with,
    endpoint,  # noqa: F401
    post_sse,
    take_path,
)
from tests.schemas import SPEC, check, check_response_event

pytestmark = pytest.mark.usefixtures("keys_in_env")
ASK = {"model": "llama-3.2-3b", "messages": HELLO, "logprobs": True, "top_logprobs": 1}
STREAM_EVENT = pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent)


def test_the_extract_names_its_source():
    assert SPEC["source"].startswith("https://github.com/openai/openai-openapi")
    assert len(SPEC["commit"]) == 40 and SPEC["openapi"].startswith("3.1")


@pytest.mark.parametrize("answer", ANSWERS)
@pytest.mark.parametrize("path", PATHS)
async def test_chat_bodies_and_chunks(endpoint, exo, openrouter, hf, path, answer):  # noqa: F811
    answer_with(answer, exo, openrouter, hf)
    openrouter.system_fingerprint = hf.system_fingerprint = "fp_conformance"
    take_path(path, exo, openrouter)
    async with httpx.AsyncClient() as http:
        whole = await http.post(f"{endpoint.url}/chat/completions", json=ASK, headers=AUTH)
    assert whole.status_code == 200 and whole.headers["x-exo-bridge-provider"] == path
    check("CreateChatCompletionResponse", whole.json())
    response, events = await post_sse(f"{endpoint.url}/chat/completions", {
        **ASK, "stream": True, "stream_options": {"include_usage": True}})
    assert response.headers["x-exo-bridge-provider"] == path
    chunks = [data for _, data in events[:-1]]
    assert events[-1][1] == "[DONE]" and chunks[-1]["choices"] == [] and chunks[-1]["usage"]
    for chunk in chunks:
        check("CreateChatCompletionStreamResponse", chunk)


async def test_models_list_and_model(endpoint, exo):  # noqa: F811
    await endpoint.router.probe(endpoint.router.config.provider("exo"))
    async with httpx.AsyncClient() as http:
        listing = (await http.get(f"{endpoint.url}/models", headers=AUTH)).json()
        one = await http.get(f"{endpoint.url}/models/mlx-community/Llama-3.2-3B-Instruct-4bit",
                             headers=AUTH)
    check("ListModelsResponse", listing)
    check("Model", one.json())


async def _error_bodies(endpoint, exo, openrouter, hf) -> list[tuple[int, dict]]:  # noqa: F811
    """Every error the chat and Responses routes answer, in the order of a request's checks."""
    chat, base = f"{endpoint.url}/chat/completions", endpoint.url
    bad = {"Authorization": "Bearer nope"}
    sent = [
        ("POST", chat, {"content": b"{not json"}),
        ("POST", chat, {"json": {"model": "llama-3.2-3b"}}),
        ("POST", chat, {"json": ASK, "headers": bad}),
        ("POST", chat, {"json": ASK, "headers": {**AUTH, "Origin": "https://evil.example"}}),
        ("POST", chat, {"json": ASK, "headers": {**AUTH, "Host": "evil.example"}}),
        ("POST", chat, {"content": b"x" * (9 * 1024 * 1024)}),
        ("GET", chat, {}),
        ("GET", f"{base}/no-such-route", {}),
        ("GET", f"{base}/models/no-such-model", {}),
        ("POST", f"{base}/responses", {"json": {"model": "llama-3.2-3b", "input": "hi",
                                                "previous_response_id": "resp_1"}}),
        ("POST", f"{base}/responses", {"json": {"model": "llama-3.2-3b", "input": 3}}),
    ]
    out = []
    async with httpx.AsyncClient() as http:
        for method, url, kw in sent:
            kw.setdefault("headers", AUTH)
            response = await http.request(method, url, **kw)
            out.append((response.status_code, response.json()))
        for provider in endpoint.router.config.providers:  # learn every model list: a 404
            await endpoint.router.probe(provider)
            await endpoint.router.pricer.refresh(await endpoint.router.http(), provider)
        response = await http.post(chat, json={**ASK, "model": "no-such-model"}, headers=AUTH)
        out.append((response.status_code, response.json()))
        exo.stop()
        openrouter.fault = "bad_request"  # a provider's 400 goes back to the caller
        response = await http.post(chat, json=ASK, headers=AUTH)
        out.append((response.status_code, response.json()))
        openrouter.stop()
        hf.stop()
        response = await http.post(f"{base}/responses", json={"model": "llama-3.2-3b", "input": "hi"},
                                   headers=AUTH)
        out.append((response.status_code, response.json()))
        endpoint.router.forget_health()
        for fake in (openrouter, hf):
            fake.start()
            fake.fault, fake.fault_status, fake.retry_after = "status", 429, "30"
        response = await http.post(chat, json=ASK, headers=AUTH)
        out.append((response.status_code, response.json()))
    return out


async def test_every_error_body(endpoint, exo, openrouter, hf):  # noqa: F811
    errors = await _error_bodies(endpoint, exo, openrouter, hf)
    assert [status for status, _ in errors] == [400, 400, 401, 403, 403, 413, 405, 404, 404, 400,
                                                400, 404, 400, 503, 429]
    for _, body in errors:
        check("ErrorResponse", body)


async def test_mid_stream_error_chunk(endpoint, exo):  # noqa: F811
    exo.fault = "close_without_done"
    _, events = await post_sse(f"{endpoint.url}/chat/completions", {**ASK, "stream": True})
    chunks = [data for _, data in events]
    for chunk in chunks[:-1]:
        check("CreateChatCompletionStreamResponse", chunk)
    check("ErrorResponse", chunks[-1])
    assert "[DONE]" not in chunks


@pytest.mark.parametrize("answer", ANSWERS)
@pytest.mark.parametrize("path", PATHS)
async def test_responses_bodies_and_events(endpoint, exo, openrouter, hf, path, answer):  # noqa: F811
    answer_with(answer, exo, openrouter, hf)
    take_path(path, exo, openrouter)
    ask = {"model": "llama-3.2-3b", "input": "hi there", "instructions": "be brief",
           "max_output_tokens": 200, "metadata": {"run": "conformance"},
           "tools": [{"type": "function", "name": "get_weather",
                      "parameters": {"type": "object", "properties": {}}}]}
    async with httpx.AsyncClient() as http:
        whole = await http.post(f"{endpoint.url}/responses", json=ask, headers=AUTH)
    assert whole.status_code == 200 and whole.headers["x-exo-bridge-provider"] == path
    check("Response", whole.json())
    _, events = await post_sse(f"{endpoint.url}/responses", {**ask, "stream": True})
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    for name, data in events:
        assert name == data["type"]
        check_response_event(data)
    assert events[-1][0] == "response.completed"


async def test_responses_failed_event(endpoint, exo):  # noqa: F811
    exo.fault = "close_without_done"
    _, events = await post_sse(f"{endpoint.url}/responses",
                               {"model": "llama-3.2-3b", "input": "hi", "stream": True})
    for _, data in events:
        check_response_event(data)
    assert events[-1][0] == "response.failed"
    assert events[-1][1]["response"]["error"]["code"] == "server_error"


@pytest.mark.parametrize("answer", ANSWERS)
@pytest.mark.parametrize("path", PATHS)
async def test_messages_bodies_and_events(endpoint, exo, openrouter, hf, path, answer):  # noqa: F811
    answer_with(answer, exo, openrouter, hf)
    take_path(path, exo, openrouter)
    ask = {"model": "llama-3.2-3b", "max_tokens": 200, "system": "be brief",
           "messages": [{"role": "user", "content": "hi there"}]}
    headers = {"x-api-key": TOKEN, "anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient() as http:
        whole = await http.post(f"{endpoint.url}/messages", json=ask, headers=headers)
    assert whole.status_code == 200
    message = anthropic.types.Message.model_validate(whole.json())
    assert message.content and message.usage.output_tokens > 0
    _, events = await post_sse(f"{endpoint.url}/messages", {**ask, "stream": True}, headers)
    for name, data in events:
        assert name == data["type"]
        STREAM_EVENT.validate_python(data)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]


async def test_messages_errors(endpoint, exo):  # noqa: F811
    url = f"{endpoint.url}/messages"
    ask = {"model": "llama-3.2-3b", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient() as http:
        replies = [await http.post(url, json=ask, headers={"x-api-key": "wrong"}),
                   await http.post(url, json={**ask, "max_tokens": None}, headers=AUTH),
                   await http.post(url, content=b"[]", headers=AUTH)]
    assert [r.status_code for r in replies] == [401, 400, 400]
    for reply in replies:
        error = anthropic.types.ErrorResponse.model_validate(reply.json())
        assert error.type == "error" and error.error.message
    exo.fault = "close_without_done"
    _, events = await post_sse(url, {**ask, "stream": True})
    assert events[-1][0] == "error"
    assert json.loads(json.dumps(events[-1][1]))["error"]["type"] == "api_error"
