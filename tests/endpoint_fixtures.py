"""A running endpoint over the three fake providers, the official SDKs as its clients, and a
reader of the SSE it sends (shared by the endpoint's API tests)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from router import Router
from router.endpoint.server import EndpointServer
from router.events import RequestFinished
from router.keys import Secret
from tests.fakes.provider import FakeProvider

TOKEN = "test-endpoint-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HELLO = [{"role": "user", "content": "hi there"}]
ANSWERS: dict[str, dict[str, Any]] = {
    "text": {},
    "tool-calls": {"tool_calls": [("get_weather", '{"city": "Paris"}'),
                                  ("get_time", '{"zone": "CET"}')]},
    "refusal": {"refusal": "I can not help with that"},
}
PATHS = ("exo", "openrouter", "huggingface")


@pytest.fixture
async def endpoint(make_config) -> AsyncIterator[EndpointServer]:
    config, _ = make_config(idle_s=0.5)
    events: list[Any] = []
    async with Router(config) as router:
        router.subscribe(events.append)
        server = EndpointServer(router, token=Secret(TOKEN), port=0)
        await server.start()
        server.events = events  # type: ignore[attr-defined]
        yield server
        await server.stop()


@pytest.fixture
async def client(endpoint: EndpointServer) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(base_url=endpoint.url, api_key=TOKEN, max_retries=0)
    yield sdk
    await sdk.close()


@pytest.fixture
async def claude(endpoint: EndpointServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    sdk = anthropic.AsyncAnthropic(base_url=endpoint.url.removesuffix("/v1"), api_key=TOKEN,
                                   max_retries=0)
    yield sdk
    await sdk.close()


def answer_with(kind: str, *fakes: FakeProvider) -> None:
    for fake in fakes:
        for name, value in ANSWERS[kind].items():
            setattr(fake, name, value)


def take_path(path: str, exo: FakeProvider, openrouter: FakeProvider) -> None:
    """Make `path` the provider that answers (the ones before it down)."""
    if path in ("openrouter", "huggingface"):
        exo.stop()
    if path == "huggingface":
        openrouter.stop()


def finished(endpoint: EndpointServer) -> list[RequestFinished]:
    return [e for e in endpoint.events if isinstance(e, RequestFinished)]  # type: ignore[attr-defined]


async def post_sse(url: str, body: dict[str, Any],
                   headers: dict[str, str] | None = None) -> tuple[httpx.Response, list[tuple[str | None, Any]]]:
    """POST and read the whole SSE answer: [(event name, data parsed or the raw text)]."""
    events: list[tuple[str | None, Any]] = []
    async with httpx.AsyncClient(timeout=10) as http, http.stream(
            "POST", url, json=body, headers=headers or AUTH) as response:
        name = None
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
                events.append((name, data if data == "[DONE]" else json.loads(data)))
                name = None
    return response, events
