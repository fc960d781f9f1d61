"""POST /v1/responses through the openai SDK's `responses` client, on the router's one path."""

from __future__ import annotations

import json

import openai
import pytest

from tests.endpoint_fixtures import client, endpoint, finished  # noqa: F401
from tests.test_passthrough import IMAGE

pytestmark = pytest.mark.usefixtures("keys_in_env")
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


async def test_text_in_text_out(client, exo):  # noqa: F811
    response = await client.responses.create(model="llama-3.2-3b", input="hi there",
                                              instructions="Answer briefly.", max_output_tokens=64,
                                              temperature=0.3)
    assert response.output_text.strip() == "Hello from the fake provider ."
    assert response.status == "completed" and response.id.startswith("resp_")
    assert response.usage.output_tokens == 6 and response.usage.total_tokens > 6
    sent = exo.chat_requests[-1].body
    assert sent["messages"] == [{"role": "system", "content": "Answer briefly."},
                                {"role": "user", "content": "hi there"}]
    assert (sent["max_tokens"], sent["temperature"]) == (64, 0.3)


async def test_image_input_becomes_an_image_part(client, exo):  # noqa: F811
    await client.responses.create(model="llama-3.2-3b", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": IMAGE, "detail": "low"}]}])
    assert exo.chat_requests[-1].body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}}]}]


async def test_function_call_round_trip(client, exo):  # noqa: F811
    exo.tool_calls = [("get_weather", '{"city": "Paris"}')]
    first = await client.responses.create(model="llama-3.2-3b", input="Weather in Paris?",
                                          tools=[WEATHER], tool_choice="required")
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"})
    sent = exo.chat_requests[-1].body
    assert sent["tool_choice"] == "required"
    assert sent["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather in a city", "parameters": WEATHER["parameters"]}}]
    exo.tool_calls = None
    second = await client.responses.create(model="llama-3.2-3b", tools=[WEATHER], input=[
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "18 C and sunny"}])
    assert second.output_text.strip() == "Hello from the fake provider ."
    assert exo.chat_requests[-1].body["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": [{"id": call.call_id, "type": "function",
                                                               "function": {"name": "get_weather",
                                                                            "arguments": call.arguments}}]},
        {"role": "tool", "tool_call_id": call.call_id, "content": "18 C and sunny"}]


async def test_streamed_events_and_the_stream_helper(client, exo):  # noqa: F811
    stream = await client.responses.create(model="llama-3.2-3b", input="hi", stream=True)
    events = [event async for event in stream]
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed" and "response.output_text.done" in kinds
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text.strip() == "Hello from the fake provider ."
    assert events[-1].response.usage.output_tokens == 6
    async with client.responses.stream(model="llama-3.2-3b", input="hi") as helper:
        async for _ in helper:
            pass
        final = await helper.get_final_response()
    assert final.output_text == text


async def test_streamed_function_calls(client, exo, openrouter):  # noqa: F811
    exo.stop()
    openrouter.tool_calls = [("get_weather", '{"city": "Oslo"}'), ("get_weather", '{"city": "Rome"}')]
    async with client.responses.stream(model="llama-3.2-3b", input="Weather?", tools=[WEATHER]) as s:
        async for _ in s:
            pass
        final = await s.get_final_response()
    calls = [item for item in final.output if item.type == "function_call"]
    assert [json.loads(c.arguments)["city"] for c in calls] == ["Oslo", "Rome"]
    assert len({c.call_id for c in calls}) == 2


async def test_failover_is_invisible(endpoint, client, exo):  # noqa: F811
    exo.fault = "close_without_done"  # exo dies mid-answer; nothing was sent yet
    response = await client.responses.with_raw_response.create(model="llama-3.2-3b", input="hi")
    assert response.parse().output_text.strip() == "Hello from the fake provider ."
    assert response.headers["x-exo-bridge-attempts"] == "exo:stream-cut,openrouter:ok"


async def test_broken_stream_ends_failed_never_completed(client, exo):  # noqa: F811
    exo.fault = "close_without_done"
    stream = await client.responses.create(model="llama-3.2-3b", input="hi", stream=True)
    kinds = [event.type async for event in stream]
    assert kinds[-1] == "response.failed" and "response.completed" not in kinds


@pytest.mark.parametrize(("extra", "named"), [
    ({"previous_response_id": "resp_123"}, "previous_response_id"),
    ({"background": True}, "background"),
    ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
    ({"tool_choice": {"type": "file_search"}}, "tool_choice"),
])
async def test_what_does_not_map_is_a_400_naming_it(client, exo, extra, named):  # noqa: F811
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(**{"model": "llama-3.2-3b", "input": "hi", **extra})
    assert caught.value.body["param"] == named and caught.value.body["code"] == "unsupported_parameter"
    assert named.split("[")[0].split(".")[0] in caught.value.message
    assert exo.chat_requests == []


async def test_unknown_model_is_404(endpoint, client, exo, openrouter, hf):  # noqa: F811
    for provider in endpoint.router.config.providers:
        await endpoint.router.probe(provider)
        await endpoint.router.pricer.refresh(await endpoint.router.http(), provider)
    with pytest.raises(openai.NotFoundError):
        await client.responses.create(model="no-such-model", input="hi")
    assert exo.chat_requests == openrouter.chat_requests == hf.chat_requests == []
