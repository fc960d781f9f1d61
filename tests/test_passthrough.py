"""What a request carries that a provider understands goes through untouched; what a provider
returns that OpenAI defines comes back — streamed and not, on every provider's path."""

from __future__ import annotations

import pytest

from tests.endpoint_fixtures import HELLO, PATHS, client, endpoint, take_path  # noqa: F401

pytestmark = pytest.mark.usefixtures("keys_in_env")
IMAGE = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
EXTRAS = {
    "tools": TOOLS,
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "parallel_tool_calls": False,
    "response_format": {"type": "json_schema", "json_schema": {
        "name": "weather", "schema": {"type": "object"}, "strict": True}},
    "seed": 42, "logprobs": True, "top_logprobs": 2, "user": "user-7", "temperature": 0.2,
    "metadata": {"ticket": "T-1"}, "stop": ["\n\n"], "max_tokens": 300,
}
PICTURE = [{"role": "user", "content": [
    {"type": "text", "text": "What is in this picture?"},
    {"type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}}]}]


def fakes_by_path(exo, openrouter, hf):
    return {"exo": exo, "openrouter": openrouter, "huggingface": hf}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("path", PATHS)
async def test_request_fields_reach_the_provider_untouched(client, exo, openrouter, hf, path,  # noqa: F811
                                                           stream):
    take_path(path, exo, openrouter)
    response = await client.chat.completions.create(model="llama-3.2-3b", messages=PICTURE,
                                                    stream=stream, **EXTRAS)
    if stream:
        async for _ in response:
            pass
    sent = fakes_by_path(exo, openrouter, hf)[path].chat_requests[-1].body
    assert {key: sent[key] for key in EXTRAS} == EXTRAS
    assert sent["messages"] == PICTURE


@pytest.mark.parametrize("path", PATHS)
async def test_tool_calls_and_finish_reason_come_back(client, exo, openrouter, hf, path):  # noqa: F811
    for fake in (exo, openrouter, hf):
        fake.tool_calls = [("get_weather", '{"city": "Paris"}'), ("get_weather", '{"city": "Oslo"}')]
    take_path(path, exo, openrouter)
    whole = await client.chat.completions.create(model="llama-3.2-3b", messages=HELLO, tools=TOOLS)
    calls = whole.choices[0].message.tool_calls
    assert [c.function.arguments for c in calls] == ['{"city": "Paris"}', '{"city": "Oslo"}']
    assert all(c.id for c in calls) and whole.choices[0].finish_reason == "tool_calls"
    stream = await client.chat.completions.create(model="llama-3.2-3b", messages=HELLO, tools=TOOLS,
                                                  stream=True)
    arguments: dict[int, str] = {}
    finish = None
    async for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or ():
                arguments[call.index] = arguments.get(call.index, "") + (call.function.arguments or "")
            finish = choice.finish_reason or finish
    assert arguments == {0: '{"city": "Paris"}', 1: '{"city": "Oslo"}'} and finish == "tool_calls"


@pytest.mark.parametrize("path", PATHS)
async def test_logprobs_come_back(client, exo, openrouter, path):  # noqa: F811
    take_path(path, exo, openrouter)
    whole = await client.chat.completions.create(model="llama-3.2-3b", messages=HELLO,
                                                 logprobs=True, top_logprobs=1)
    tokens = whole.choices[0].logprobs.content
    assert "".join(t.token for t in tokens) == whole.choices[0].message.content
    stream = await client.chat.completions.create(model="llama-3.2-3b", messages=HELLO,
                                                  logprobs=True, stream=True)
    streamed = [t.token async for chunk in stream for c in chunk.choices if c.logprobs
                for t in c.logprobs.content or ()]
    assert "".join(streamed) == whole.choices[0].message.content


@pytest.mark.parametrize("path", ["openrouter", "huggingface"])
async def test_refusal_comes_back(client, exo, openrouter, hf, path):  # noqa: F811
    for fake in (openrouter, hf):
        fake.refusal = "I can not help with that"
    take_path(path, exo, openrouter)
    whole = await client.chat.completions.create(model="llama-3.2-3b", messages=HELLO)
    assert whole.choices[0].message.refusal.strip() == "I can not help with that"
    assert whole.choices[0].message.content is None
    stream = await client.chat.completions.create(model="llama-3.2-3b", messages=HELLO, stream=True)
    refused = "".join([c.delta.refusal or "" async for chunk in stream for c in chunk.choices])
    assert refused.strip() == "I can not help with that"
