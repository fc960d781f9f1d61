"""Every request Claude Code and Codex CLI were seen to send (tests/agents/fixtures, recorded by
tests/test_agents_real.py from the real agents), replayed at the endpoint without npm: each is
answered as the agent needs, tool calls included, and reaches the model whole."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from router import Router
from router.endpoint.server import EndpointServer
from router.keys import Secret
from tests.agents import harness
from tests.endpoint_fixtures import TOKEN, post_sse
from tests.fakes.provider import FakeProvider
from tests.test_agents_real import ALIASES

pytestmark = pytest.mark.usefixtures("keys_in_env")
FIXTURES = harness.load_fixtures()
CASES = [pytest.param(name, index, entry, id=f"{name}-{index}")
         for name, entries in FIXTURES.items() for index, entry in enumerate(entries)]


@pytest.fixture
async def agent_endpoint(make_config) -> AsyncIterator[EndpointServer]:
    config, _ = make_config(idle_s=2, extra=ALIASES)
    async with Router(config) as router:
        for provider in router.config.providers:  # the model lists known: unknown is a 404
            await router.probe(provider)
            await router.pricer.refresh(await router.http(), provider)
        server = EndpointServer(router, token=Secret(TOKEN), port=0)
        await server.start()
        yield server
        await server.stop()


def test_the_fixtures_cover_both_agents_and_every_scenario() -> None:
    paths = {entry["path"].split("?")[0] for entries in FIXTURES.values() for entry in entries}
    assert paths == {"/v1/messages", "/v1/responses", "/v1/chat/completions"}
    assert {"claude-code-reads-a-file-through-exo", "codex-runs-a-command-through-exo",
            "codex-applies-a-patch-with-its-freeform-tool",
            "codex-with-an-unknown-model-says-so-at-once"} <= set(FIXTURES)


@pytest.mark.parametrize(("name", "index", "entry"), CASES)
async def test_a_recorded_request_is_answered(agent_endpoint: EndpointServer, exo: FakeProvider,
                                              name: str, index: int,
                                              entry: dict[str, Any]) -> None:
    body = entry["body"]
    call = _a_tool_call(body)
    if call is not None:
        exo.tool_calls = [call]
        exo.after_tool = "done: {result}"
    token = "wrong-token-0000" if "wrong-token" in name else TOKEN
    headers = {**entry["headers"], "x-api-key": token, "Authorization": f"Bearer {token}"}
    url = f"http://127.0.0.1:{agent_endpoint.port}{entry['path']}"
    if body.get("stream"):
        response, events = await post_sse(url, body, headers)
        answer = _streamed(events) if response.status_code == 200 else {"events": events}
    else:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(url, json=body, headers=headers)
        answer = response.json()
    if "wrong-token" in name:
        assert response.status_code == 401 and response.headers["x-should-retry"] == "false"
        assert exo.chat_requests == []
        return
    if "unknown-model" in name:
        assert response.status_code == 404 and response.headers["x-should-retry"] == "false"
        assert exo.chat_requests == []
        return
    assert response.status_code == 200, answer
    chat = exo.chat_requests[-1].body
    if entry["path"].startswith("/v1/messages"):
        _check_messages(body, chat, answer, call)
    elif entry["path"].startswith("/v1/responses"):
        _check_responses(body, chat, answer, call, response.headers)
    else:  # chat completions: passed on as sent, the call answered as a chat tool call
        assert chat["messages"] == body["messages"] and chat["tools"] == body["tools"]
        calls = answer["choices"][0]["message"].get("tool_calls") or []
        has_result = any(m["role"] == "tool" for m in chat["messages"])
        assert [c["function"]["name"] for c in calls] == ([] if has_result else [call[0]])


def _streamed(events: list[Any]) -> dict[str, Any]:
    """A streamed answer as the whole one (the Message, or the completed Response)."""
    data = [e[1] for e in events if isinstance(e[1], dict)]
    kinds = [d.get("type") for d in data]
    if "message_start" in kinds:
        assert kinds[-1] == "message_stop", kinds
        return {"content": [d["content_block"] for d in data if d["type"] == "content_block_start"]}
    done = [d["response"] for d in data if d.get("type") == "response.completed"]
    assert len(done) == 1, kinds
    return done[0]


def _a_tool_call(body: dict[str, Any]) -> tuple[str, str] | None:
    """The tool the fake model calls: a freeform one when offered, else one in a namespace,
    else the first function."""
    tools = body.get("tools") or []
    for tool in tools:
        if tool.get("type") == "custom":
            return tool["name"], json.dumps({"input": "*** Begin Patch\n*** End Patch\n"})
    for tool in tools:
        if tool.get("type") == "namespace":
            return tool["tools"][0]["name"], "{}"
    names = [t.get("name") or (t.get("function") or {}).get("name") for t in tools]
    named = [n for n in names if isinstance(n, str)]  # a chat tool's name is in its function
    return (named[0], "{}") if named else None


def _check_messages(body: dict[str, Any], chat: dict[str, Any], answer: dict[str, Any],
                    call: tuple[str, str] | None) -> None:
    # a system entry inside messages stays where it was, after the top-level system prompt
    roles = [m["role"] for m in body["messages"]]
    chat_roles = [m["role"] for m in chat["messages"]]
    assert chat_roles.count("system") == roles.count("system") + (1 if body.get("system") else 0)
    assert [r for r in chat_roles[1:] if r != "tool"][:len(roles)].count("system") == \
        roles.count("system")
    assert len(chat["tools"]) == len(body["tools"])
    answered_with_tool = any(block["type"] == "tool_use" for block in answer["content"])
    has_result = any(m["role"] == "tool" for m in chat["messages"])
    assert answered_with_tool == (call is not None and not has_result)


def _check_responses(body: dict[str, Any], chat: dict[str, Any], answer: dict[str, Any],
                     call: tuple[str, str] | None, headers: Any) -> None:
    offered = [t for t in body.get("tools") or []]
    items = body["input"] if isinstance(body["input"], list) else []
    for item in items:
        if item.get("type") == "additional_tools":
            offered += item["tools"]
    expected = {t["name"] for t in offered if t["type"] in ("function", "custom")} | {
        inner["name"] for t in offered if t["type"] == "namespace" for inner in t["tools"]}
    names = {t["function"]["name"] for t in chat.get("tools") or []}
    assert {n.split("__")[-1] for n in names} == expected
    hosted = [t["type"] for t in offered if t["type"] not in ("function", "custom", "namespace")]
    said = headers.get("x-exo-bridge-dropped-tools", "")
    assert sorted(said.split(", ") if said else []) == sorted(set(hosted))
    for tool in chat.get("tools") or []:  # a freeform tool: a function taking one string
        if tool["function"]["name"] in {t["name"] for t in offered if t["type"] == "custom"}:
            assert tool["function"]["parameters"]["required"] == ["input"]
    # the calls Codex sent back reach the model as calls and outputs
    sent_calls = [i for i in items if i.get("type") in ("function_call", "custom_tool_call")]
    chat_calls = [c for m in chat["messages"] for c in m.get("tool_calls") or ()]
    assert len(chat_calls) == len(sent_calls)
    output = answer["output"]
    has_result = any(m["role"] == "tool" for m in chat["messages"])
    if call is not None and not has_result:
        kind = "custom_tool_call" if any(t.get("type") == "custom" for t in offered) else \
            "function_call"
        assert output[0]["type"] == kind and output[0]["name"] == call[0]
        namespaces = {inner["name"]: t["name"] for t in offered if t["type"] == "namespace"
                      for inner in t["tools"]}
        if kind == "function_call" and call[0] in namespaces:
            assert output[0]["namespace"] == namespaces[call[0]]
    else:
        assert output[0]["type"] == "message"
