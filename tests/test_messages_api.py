"""POST /v1/messages through the anthropic SDK (x-api-key auth), on the router's one path."""

from __future__ import annotations

import json

import anthropic
import pytest

from tests.endpoint_fixtures import TOKEN, claude, endpoint  # noqa: F401
from tests.test_passthrough import IMAGE

pytestmark = pytest.mark.usefixtures("keys_in_env")
HI = [{"role": "user", "content": "hi there"}]
WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
PNG = IMAGE.split(",", 1)[1]


async def test_text_in_text_out(claude, exo):  # noqa: F811
    message = await claude.messages.create(  # sampling settings as older SDKs send them
        model="llama-3.2-3b", max_tokens=64, messages=HI, system="Answer briefly.",
        stop_sequences=["END"], extra_body={"temperature": 0.2, "top_k": 5})
    assert message.content[0].text.strip() == "Hello from the fake provider ."
    assert message.stop_reason == "end_turn" and message.role == "assistant"
    assert message.usage.output_tokens == 6 and message.usage.input_tokens > 0
    sent = exo.chat_requests[-1].body
    assert sent["messages"] == [{"role": "system", "content": "Answer briefly."},
                                {"role": "user", "content": "hi there"}]
    assert (sent["max_tokens"], sent["stop"], sent["temperature"], sent["top_k"]) == (64, ["END"], 0.2, 5)


async def test_structured_output_format(claude, exo):  # noqa: F811
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    await claude.messages.create(model="llama-3.2-3b", max_tokens=64, messages=HI, extra_body={
        "output_config": {"format": {"type": "json_schema", "schema": schema}}})
    assert exo.chat_requests[-1].body["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


async def test_image_blocks(claude, exo):  # noqa: F811
    await claude.messages.create(model="llama-3.2-3b", max_tokens=64, messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]}])
    assert exo.chat_requests[-1].body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}]


async def test_tool_use_round_trip(claude, exo):  # noqa: F811
    exo.tool_calls = [("get_weather", '{"city": "Paris"}')]
    first = await claude.messages.create(model="llama-3.2-3b", max_tokens=64, tools=[WEATHER],
                                         tool_choice={"type": "any"}, messages=HI)
    (use,) = [block for block in first.content if block.type == "tool_use"]
    assert (use.name, use.input, first.stop_reason) == ("get_weather", {"city": "Paris"}, "tool_use")
    sent = exo.chat_requests[-1].body
    assert sent["tool_choice"] == "required" and sent["tools"][0]["function"]["parameters"] == \
        WEATHER["input_schema"]
    exo.tool_calls = None
    await claude.messages.create(model="llama-3.2-3b", max_tokens=64, tools=[WEATHER], messages=[
        *HI, {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                      "content": "18 C and sunny"},
                                     {"type": "text", "text": "and tomorrow?"}]}])
    assert exo.chat_requests[-1].body["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": use.id, "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": use.id, "content": "18 C and sunny"},
        {"role": "user", "content": "and tomorrow?"}]


async def test_streaming_with_the_sdk_helper(claude, exo):  # noqa: F811
    async with claude.messages.stream(model="llama-3.2-3b", max_tokens=64, messages=HI) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert final.content[0].text.strip() == "Hello from the fake provider ."
    assert final.usage.output_tokens == 6 and final.stop_reason == "end_turn"


async def test_streamed_tool_use(claude, exo, openrouter):  # noqa: F811
    exo.stop()
    openrouter.tool_calls = [("get_weather", '{"city": "Oslo"}'), ("get_weather", '{"city": "Rome"}')]
    async with claude.messages.stream(model="llama-3.2-3b", max_tokens=64, tools=[WEATHER],
                                      messages=HI) as stream:
        final = await stream.get_final_message()
    assert [b.input for b in final.content if b.type == "tool_use"] == [{"city": "Oslo"}, {"city": "Rome"}]
    assert final.stop_reason == "tool_use"


async def test_failover_is_invisible_and_a_broken_stream_raises(endpoint, claude, exo):  # noqa: F811
    exo.fault = "close_without_done"
    raw = await claude.messages.with_raw_response.create(model="llama-3.2-3b", max_tokens=64, messages=HI)
    assert raw.headers["x-exo-bridge-attempts"] == "exo:stream-cut,openrouter:ok"
    endpoint.router.forget_health()
    with pytest.raises(anthropic.APIStatusError):
        async with claude.messages.stream(model="llama-3.2-3b", max_tokens=64, messages=HI) as stream:
            async for _ in stream:
                pass


async def test_errors_in_anthropic_shape(endpoint, exo, openrouter, hf):  # noqa: F811
    base = endpoint.url.removesuffix("/v1")
    wrong = anthropic.AsyncAnthropic(base_url=base, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        await wrong.messages.create(model="llama-3.2-3b", max_tokens=64, messages=HI)
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "authentication_error"
    bearer = anthropic.AsyncAnthropic(base_url=base, auth_token=TOKEN, max_retries=0)  # Bearer works too
    with pytest.raises(anthropic.BadRequestError) as bad:
        await bearer.messages.create(model="llama-3.2-3b", max_tokens=64, messages=HI,
                                     tools=[{"type": "web_search_20250305", "name": "web_search"}])
    assert "web_search_20250305" in bad.value.message
    exo.stop(); openrouter.stop(); hf.stop()
    with pytest.raises(anthropic.InternalServerError) as down:
        await bearer.messages.create(model="llama-3.2-3b", max_tokens=64, messages=HI)
    assert down.value.body["error"]["type"] == "api_error"
    await wrong.close()
    await bearer.close()


async def test_system_entries_inside_messages_stay_where_they_were(claude, exo):  # noqa: F811
    """Claude Code sends {"role": "system"} entries inside messages (its environment, agent and
    skill lists): each is a system message at the same place, not a 400."""
    await claude.messages.create(model="llama-3.2-3b", max_tokens=64, system="Be brief.", messages=[
        {"role": "system", "content": [{"type": "text", "text": "Agents: none"},  # type: ignore[misc,list-item]
                                       {"type": "text", "text": "Skills: none"}]},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "system", "content": "# Environment\ncwd: /tmp"},  # type: ignore[misc,list-item]
        {"role": "user", "content": "and now?"}])
    assert exo.chat_requests[-1].body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Agents: none\nSkills: none"},
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
        {"role": "system", "content": "# Environment\ncwd: /tmp"},
        {"role": "user", "content": "and now?"}]


async def test_a_system_entry_that_is_not_text_is_a_400_naming_it(claude, exo):  # noqa: F811
    with pytest.raises(anthropic.BadRequestError) as caught:
        await claude.messages.create(model="llama-3.2-3b", max_tokens=64, messages=[
            {"role": "system", "content": [{"type": "image", "source": {}}]}])  # type: ignore[misc,list-item]
    assert "messages[0].content" in caught.value.message and exo.chat_requests == []


async def _lists_known(endpoint) -> None:  # noqa: F811
    """Every provider probed and its model list fetched: an unknown model is then a 404."""
    for provider in endpoint.router.config.providers:
        await endpoint.router.probe(provider)
        await endpoint.router.pricer.refresh(await endpoint.router.http(), provider)


async def test_count_tokens_is_our_estimate_marked_as_one(claude, endpoint, exo, openrouter, hf):  # noqa: F811
    short = await claude.messages.count_tokens(model="llama-3.2-3b", messages=HI)
    raw = await claude.messages.with_raw_response.count_tokens(
        model="llama-3.2-3b", system="x" * 400, tools=[WEATHER],
        messages=[*HI, {"role": "system", "content": "y" * 400}])  # type: ignore[list-item]
    long = await raw.parse()
    assert raw.headers["x-exo-bridge-token-count"] == "estimate"
    assert 0 < short.input_tokens < 10 and long.input_tokens > 200 + short.input_tokens
    assert json.loads(await raw.read())["estimate"] is True
    assert exo.chat_requests == []  # counted here: no model was asked
    await _lists_known(endpoint)
    with pytest.raises(anthropic.NotFoundError) as unknown:
        await claude.messages.count_tokens(model="no-such-model", messages=HI)
    assert unknown.value.response.headers["x-should-retry"] == "false"
    with pytest.raises(anthropic.BadRequestError):
        await claude.messages.count_tokens(model="llama-3.2-3b", messages=[])


async def test_errors_no_retry_can_fix_say_so(endpoint, claude, exo, openrouter, hf):  # noqa: F811
    """401, 400, 404 and 413 carry x-should-retry: false (Claude Code otherwise retries a wrong
    token with back-off for 40 s before saying anything)."""
    await _lists_known(endpoint)
    base = endpoint.url.removesuffix("/v1")
    wrong = anthropic.AsyncAnthropic(base_url=base, api_key="wrong", max_retries=0)
    calls = [
        (wrong.messages.create(model="llama-3.2-3b", max_tokens=64, messages=HI), 401),
        (claude.messages.create(model="llama-3.2-3b", max_tokens=0, messages=HI), 400),
        (claude.messages.create(model="no-such-model", max_tokens=64, messages=HI), 404),
        (claude.messages.create(model="llama-3.2-3b", max_tokens=64, messages=[
            {"role": "user", "content": "x" * (endpoint.router.config.server.max_body_bytes + 1)}]),
         413)]
    for call, status in calls:
        with pytest.raises(anthropic.APIStatusError) as caught:
            await call
        assert caught.value.status_code == status
        assert caught.value.response.headers["x-should-retry"] == "false"
    await wrong.close()
    assert exo.chat_requests == []
