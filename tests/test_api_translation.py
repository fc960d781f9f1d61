"""Property tests of the Responses and Messages translations: any JSON a caller sends is either
translated to a chat request the router accepts or refused with a clear 400 (never a crash), and
any sequence of chat chunks becomes a stream whose events are valid and add up to the answer."""

from __future__ import annotations

import json
from typing import Any

import anthropic.types
import pydantic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.endpoint.apis import messages_request, responses_request
from router.endpoint.apis.common import Unmappable
from router.endpoint.apis.messages_stream import MessageBuilder
from router.endpoint.apis.responses_stream import ResponseBuilder
from router.endpoint.apis.responses_tools import Origin, tool_set
from router.request_check import validate_request
from router.result import Assembler
from tests.schemas import check, check_response_event

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
KEYS = st.sampled_from(["model", "input", "instructions", "messages", "system", "max_tokens", "tools",
                        "tool_choice", "text", "max_output_tokens", "role", "content", "type",
                        "call_id", "output", "image_url", "source", "name", "arguments", "stream",
                        "namespace", "format"])
SHAPED = st.recursive(st.none() | st.booleans() | st.integers(-2, 5) | st.sampled_from(
    ["user", "assistant", "system", "developer", "message", "function_call", "function_call_output",
     "input_text", "input_image", "text", "image", "tool_use", "tool_result", "function", "auto",
     "json_schema", "base64", "hi", "namespace", "custom", "custom_tool_call",
     "custom_tool_call_output", "additional_tools", "web_search", "grammar"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=25)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(body=st.dictionaries(KEYS, JSON | SHAPED, max_size=6))
def test_any_body_translates_or_is_refused_clearly(body: dict[str, Any]) -> None:
    for translate in (responses_request.to_chat, messages_request.to_chat):
        try:
            chat = translate(body)
        except Unmappable as exc:
            assert str(exc) and (exc.param is None or isinstance(exc.param, str))
            continue
        validate_request(chat)  # the router takes it
        json.dumps(chat)


TEXT = st.text(alphabet="abc xyz", min_size=1, max_size=6)


@st.composite
def chat_chunks(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A chat answer as a provider may stream it: text, a refusal and/or tool calls."""
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": t} for t in draw(st.lists(TEXT, max_size=4))]
    deltas += [{"refusal": t} for t in draw(st.lists(TEXT, max_size=2))]
    for index in range(draw(st.integers(0, 2))):
        args = json.dumps({"q": draw(TEXT)})
        deltas.append({"tool_calls": [{"index": index, "id": f"call_{index}", "type": "function",
                                       "function": {"name": "f", "arguments": ""}}]})
        deltas += [{"tool_calls": [{"index": index, "function": {"arguments": args[:3]}}]},
                   {"tool_calls": [{"index": index, "function": {"arguments": args[3:]}}]}]
    finish = draw(st.sampled_from(["stop", "length", "tool_calls", "content_filter"]))
    chunks = [{"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    chunks.append({**chunks[0], "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    return chunks


USAGE = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}


def assembled(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    assembler = Assembler()
    for chunk in chunks:
        assembler.add(chunk)
    return assembler.completion(USAGE)


# The function "f" the chunks call, as it was offered: a function, a freeform (custom) tool, a
# function inside a namespace (router/endpoint/apis/responses_tools.py).
ORIGINS = [{}, {"f": Origin("f", custom=True)}, {"f": Origin("f", namespace="ns")}]


@settings(max_examples=40, deadline=None)
@given(chunks=chat_chunks(), origins=st.sampled_from(ORIGINS))
def test_responses_stream_is_valid_and_adds_up(chunks: list[dict[str, Any]],
                                               origins: dict[str, Origin]) -> None:
    completion = assembled(chunks)
    check("CreateChatCompletionResponse", completion)
    builder = ResponseBuilder({"model": "m"}, origins)
    raw = b"".join([builder.feed([c]) for c in chunks] + [builder.finish(USAGE)])
    events = [json.loads(line[6:]) for line in raw.decode().splitlines() if line.startswith("data: ")]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for event in events:
        check_response_event(event)
    final = events[-1]["response"]
    whole = ResponseBuilder({"model": "m"}, origins).answer(completion, USAGE)
    check("Response", whole)
    shape = [(i["type"], i.get("arguments"), i.get("input"), i.get("namespace"),
              [p.get("text", p.get("refusal")) for p in i.get("content", [])])
             for i in final["output"]]
    assert shape == [(i["type"], i.get("arguments"), i.get("input"), i.get("namespace"),
                      [p.get("text", p.get("refusal")) for p in i.get("content", [])])
                     for i in whole["output"]]
    calls = [i for i in final["output"] if i["type"] != "message"]
    if origins.get("f", Origin("f")).custom:  # arguments without the one string: kept whole
        assert all(i["type"] == "custom_tool_call" and json.loads(i["input"]).keys() == {"q"}
                   for i in calls)
    else:
        assert all(i.get("namespace") == origins.get("f", Origin("f")).namespace for i in calls)


@FAST
@given(tools=st.lists(JSON | SHAPED, max_size=5))
def test_any_tools_become_distinct_functions_or_a_clear_400(tools: list[Any]) -> None:
    try:
        found = tool_set({"tools": tools})
    except Unmappable as exc:
        assert str(exc) and isinstance(exc.param, str)
        return
    names = [f["function"]["name"] for f in found.functions]
    assert len(names) == len(set(names)) and set(names) == set(found.origins)
    for name, origin in found.origins.items():
        assert found.chat_name(origin.name, origin.namespace) == name


STREAM_EVENT = pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent)


@settings(max_examples=60, deadline=None)
@given(chunks=chat_chunks())
def test_messages_stream_is_valid_and_adds_up(chunks: list[dict[str, Any]]) -> None:
    from anthropic.lib.streaming._messages import accumulate_event

    builder = MessageBuilder({"model": "m"}, 3)
    raw = b"".join([builder.feed([c]) for c in chunks] + [builder.finish(USAGE)])
    events = [json.loads(line[6:]) for line in raw.decode().splitlines() if line.startswith("data: ")]
    snapshot, bufs = None, {}
    for event in events:
        snapshot = accumulate_event(event=STREAM_EVENT.validate_python(event), current_snapshot=snapshot,
                                    json_bufs=bufs)
    whole = anthropic.types.Message.model_validate(
        MessageBuilder({"model": "m"}).answer(assembled(chunks), USAGE))
    assert snapshot is not None
    assert [b.model_dump() for b in snapshot.content] == [b.model_dump() for b in whole.content]
    assert (snapshot.stop_reason, snapshot.usage.output_tokens) == (whole.stop_reason, 5)
