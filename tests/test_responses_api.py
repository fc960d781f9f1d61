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
    ({"tools": [{"type": "made_up_tool"}]}, "tools[0].type"),
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


NAMESPACE = {"type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents.",
             "tools": [{"type": "function", "name": "spawn_agent", "description": "Spawn one",
                        "strict": False, "parameters": {"type": "object", "properties": {}}},
                       {"type": "function", "name": "get_weather", "parameters": {}}]}
PATCH_TOOL = {"type": "custom", "name": "apply_patch", "description": "Edit files.",
              "format": {"type": "grammar", "syntax": "lark",
                         "definition": "start: begin_patch hunk+ end_patch"}}
PATCH = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch\n"


async def test_codex_tools_namespaces_flattened_hosted_dropped(client, exo):  # noqa: F811
    """Codex sends a namespace tool and a hosted web_search: the namespace's tools are functions
    (a name taken by another tool is prefixed with its namespace), web_search is dropped and named
    in a header, and a call of a namespaced tool goes back naming its namespace."""
    exo.tool_calls = [("spawn_agent", '{"task": "x"}')]
    raw = await client.responses.with_raw_response.create(
        model="llama-3.2-3b", input="hi",
        tools=[WEATHER, NAMESPACE, {"type": "web_search", "external_web_access": False}])  # type: ignore[list-item]
    response = raw.parse()
    assert raw.headers["x-exo-bridge-dropped-tools"] == "web_search"
    names = [t["function"]["name"] for t in exo.chat_requests[-1].body["tools"]]
    assert names == ["get_weather", "spawn_agent", "multi_agent_v1__get_weather"]
    (call,) = response.output
    assert call.type == "function_call" and call.name == "spawn_agent"
    assert call.model_dump()["namespace"] == "multi_agent_v1"
    # sent back with its namespace, it is the same function's call again
    exo.tool_calls = None
    await client.responses.create(model="llama-3.2-3b", tools=[WEATHER, NAMESPACE], input=[  # type: ignore[list-item]
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "namespace": "multi_agent_v1",
         "arguments": "{}"},  # type: ignore[typeddict-unknown-key]
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"}])
    sent = exo.chat_requests[-1].body["messages"]
    assert sent[0]["tool_calls"][0]["function"]["name"] == "multi_agent_v1__get_weather"


async def test_only_hosted_tools_means_no_tools_and_no_tool_choice(client, exo):  # noqa: F811
    raw = await client.responses.with_raw_response.create(
        model="llama-3.2-3b", input="hi", tool_choice="required",
        tools=[{"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["v"]},
               {"type": "web_search"}])
    assert raw.headers["x-exo-bridge-dropped-tools"] == "web_search, file_search"
    sent = exo.chat_requests[-1].body
    assert "tools" not in sent and "tool_choice" not in sent


@pytest.mark.parametrize("stream", [False, True])
async def test_a_freeform_tool_is_a_function_of_one_string(client, exo, stream):  # noqa: F811
    """Codex's apply_patch (custom, a lark grammar): the model gets a function taking `input`,
    its call comes back as a custom_tool_call with that string, and the call and its output sent
    back reach the model as a call and a tool message."""
    exo.tool_calls = [("apply_patch", json.dumps({"input": PATCH}))]
    if stream:
        events = [e async for e in await client.responses.create(
            model="llama-3.2-3b", input="edit", tools=[PATCH_TOOL], stream=True)]  # type: ignore[list-item]
        kinds = [e.type for e in events]
        assert "response.custom_tool_call_input.done" in kinds
        output = events[-1].response.output  # type: ignore[union-attr]
    else:
        output = (await client.responses.create(model="llama-3.2-3b", input="edit",
                                                tools=[PATCH_TOOL])).output  # type: ignore[list-item]
    (call,) = output
    assert call.type == "custom_tool_call" and call.name == "apply_patch" and call.input == PATCH
    (function,) = exo.chat_requests[-1].body["tools"]
    assert function["function"]["parameters"]["required"] == ["input"]
    assert "start: begin_patch" in function["function"]["description"]
    exo.tool_calls = None
    await client.responses.create(model="llama-3.2-3b", tools=[PATCH_TOOL], input=[  # type: ignore[list-item]
        {"type": "message", "role": "user", "content": "edit"},
        {"type": "custom_tool_call", "call_id": call.call_id, "name": "apply_patch", "input": PATCH},
        {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "Done!"}])
    sent = exo.chat_requests[-1].body["messages"]
    assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {"input": PATCH}
    assert sent[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "Done!"}


async def test_additional_tools_items_offer_their_tools(client, exo):  # noqa: F811
    await client.responses.create(model="llama-3.2-3b", input=[  # type: ignore[list-item]
        {"type": "additional_tools", "role": "developer", "tools": [NAMESPACE, PATCH_TOOL]},
        {"type": "message", "role": "user", "content": "hi"}])
    sent = exo.chat_requests[-1].body
    assert [t["function"]["name"] for t in sent["tools"]] == ["spawn_agent", "get_weather",
                                                              "apply_patch"]
    assert sent["messages"] == [{"role": "user", "content": "hi"}]


async def test_an_unknown_model_is_404_before_the_body_is_read(endpoint, client, exo, openrouter,  # noqa: F811
                                                               hf):
    """Codex with no model configured sends its own default and items this endpoint may not
    know: the answer is the 404 for the model, not a 400 about an item."""
    for provider in endpoint.router.config.providers:
        await endpoint.router.probe(provider)
        await endpoint.router.pricer.refresh(await endpoint.router.http(), provider)
    with pytest.raises(openai.NotFoundError) as caught:
        await client.responses.create(model="gpt-6.2-sol", input=[  # type: ignore[list-item]
            {"type": "made_up_item"}, {"type": "message", "role": "user", "content": "hi"}])
    assert caught.value.response.headers["x-should-retry"] == "false"


async def test_errors_no_retry_can_fix_say_so_on_every_api(endpoint, client, exo):  # noqa: F811
    wrong = openai.AsyncOpenAI(base_url=endpoint.url, api_key="wrong", max_retries=0)
    calls = [wrong.responses.create(model="llama-3.2-3b", input="hi"),
             wrong.chat.completions.create(model="llama-3.2-3b",
                                           messages=[{"role": "user", "content": "hi"}]),
             client.responses.create(model="llama-3.2-3b", input=[]),
             client.chat.completions.create(model="llama-3.2-3b", messages=[]),
             client.get("/no/such/path", cast_to=object)]
    for call in calls:
        with pytest.raises(openai.APIStatusError) as caught:
            await call
        assert caught.value.status_code in (400, 401, 404)
        assert caught.value.response.headers["x-should-retry"] == "false"
    await wrong.close()


async def test_a_freeform_tool_inside_a_namespace_comes_back_naming_both(client, exo):  # noqa: F811
    """Codex with its default model offers {"type": "namespace", "name": "functions", "tools":
    [{"type": "custom", "name": "exec", ...}]} in an additional_tools item."""
    exo.tool_calls = [("exec", json.dumps({"input": "console.log(1)"}))]
    functions = {"type": "namespace", "name": "functions", "description": "",
                 "tools": [{**PATCH_TOOL, "name": "exec"}]}
    response = await client.responses.create(model="llama-3.2-3b", input=[  # type: ignore[list-item]
        {"type": "additional_tools", "role": "developer", "tools": [functions]},
        {"type": "message", "role": "user", "content": "run it"}])
    (call,) = response.output
    assert (call.type, call.name, call.input) == ("custom_tool_call", "exec", "console.log(1)")
    assert call.model_dump()["namespace"] == "functions"
