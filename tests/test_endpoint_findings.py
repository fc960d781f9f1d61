"""Issue 14's four findings, each through the official openai SDK: a non-streamed answer cut
mid-way fails over unseen; an unknown model is a 404 on a freshly started serve; Retry-After only
when a retry can help (else x-should-retry: false); schema-true bodies."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime

import httpx
import openai
import pytest

from router import Router, Timing
from router.config import parse_config
from router.endpoint.server import EndpointServer
from router.keys import Secret
from router.ledger.ledger import Ledger
from router.retry import retry_headers
from tests.conftest import HF_KEY, OR_KEY, config_text
from tests.endpoint_fixtures import HELLO, TOKEN, client, endpoint, finished  # noqa: F401
from tests.test_server import _start_serve, _wait_ready
from tests.test_server import unused_port as free_port

NOON = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def counting_client(url: str, max_retries: int = 2) -> tuple[openai.AsyncOpenAI, list[httpx.Request]]:
    """An SDK client with its default retries, and the HTTP requests it makes."""
    sent: list[httpx.Request] = []

    async def count(request: httpx.Request) -> None:
        sent.append(request)

    http = httpx.AsyncClient(event_hooks={"request": [count]})
    return openai.AsyncOpenAI(base_url=url, api_key=TOKEN, max_retries=max_retries,
                              http_client=http), sent


# -- (a) a cut before anything was delivered fails over ------------------------------------
@pytest.mark.usefixtures("keys_in_env")
async def test_non_streamed_request_fails_over_when_exo_dies_mid_answer(make_config, exo, openrouter,
                                                                        tmp_path):
    config, _ = make_config(idle_s=0.5)
    exo.fault = "close_without_done"
    ledger = Ledger.in_dir(tmp_path / "data")
    try:
        async with Router(config, ledger=ledger) as router:
            server = EndpointServer(router, token=Secret(TOKEN), port=0)
            await server.start()
            sdk = openai.AsyncOpenAI(base_url=server.url, api_key=TOKEN, max_retries=0)
            raw = await sdk.chat.completions.with_raw_response.create(model="llama-3.2-3b",
                                                                      messages=HELLO)
            await sdk.close()
            await server.stop()
        ledger.flush()
        conn = sqlite3.connect(ledger.path)
        rows = conn.execute("SELECT provider, outcome, completion_tokens, cost_usd, cost_source "
                            "FROM attempts ORDER BY id").fetchall()
        conn.close()
    finally:
        ledger.close()
    completion = raw.parse()
    assert completion.choices[0].message.content.strip() == "Hello from the fake provider ."
    assert raw.headers["x-exo-bridge-provider"] == "openrouter"
    assert raw.headers["x-exo-bridge-attempts"] == "exo:stream-cut,openrouter:ok"
    (exo_row, or_row) = rows
    assert exo_row[:2] == ("exo", "stream-cut") and exo_row[2] >= 1 and exo_row[4] == "free"
    assert or_row[:2] == ("openrouter", "ok") and or_row[3] > 0 and or_row[4] == "reported"


# -- (b) unknown model: 404 at once on a fresh serve, nothing sent ---------------------------
def test_unknown_model_is_404_on_a_freshly_started_serve(make_config, exo, openrouter, hf):
    _, path = make_config()
    port = free_port()
    proc = _start_serve(path, port, HF_TOKEN=HF_KEY)
    try:
        _wait_ready(proc)
        sdk = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=TOKEN, max_retries=0)
        with pytest.raises(openai.NotFoundError) as caught:
            sdk.chat.completions.create(model="no-such/model-anywhere", messages=HELLO)
        assert caught.value.body["code"] == "model_not_found"
        assert "llama-3.2-3b" in caught.value.message
        assert exo.chat_requests == openrouter.chat_requests == hf.chat_requests == []
        # a real pass-through id (OpenRouter lists it, exo does not) still goes through
        answer = sdk.chat.completions.with_raw_response.create(model="openai/gpt-4o-mini",
                                                               messages=HELLO)
        assert answer.headers["x-exo-bridge-attempts"] == "exo:model-unavailable,openrouter:ok"
        assert [r.body["model"] for r in openrouter.chat_requests] == ["openai/gpt-4o-mini"]
        sdk.close()
    finally:
        proc.terminate()
        proc.wait(10)


async def test_with_a_list_unknown_the_name_goes_only_where_it_may_exist(make_config, exo, openrouter,
                                                                        hf, monkeypatch):
    """Hugging Face's list could not be fetched: the name may exist there, so it is no 404, but
    neither exo nor OpenRouter (whose lists are known and lack it) is asked."""
    monkeypatch.setenv("OPENROUTER_API_KEY", OR_KEY)
    monkeypatch.setenv("HF_TOKEN", HF_KEY)
    hf.stop()
    config, _ = make_config()
    router, server = await _serve(config)
    router.start_probes()
    try:
        async with httpx.AsyncClient() as http:
            answer = await http.post(f"{server.url}/chat/completions", headers={
                "Authorization": f"Bearer {TOKEN}"}, json={"model": "some/new-model", "messages": HELLO})
    finally:
        await server.stop()
        await router.aclose()
    assert answer.status_code == 503
    assert answer.headers["x-exo-bridge-attempts"].startswith(  # then huggingface: refused or
        "exo:model-unavailable,openrouter:model-unavailable,huggingface:")  # circuit-open (probed)
    assert exo.chat_requests == openrouter.chat_requests == []


@pytest.mark.parametrize(("after", "expected"), [
    (None, {"x-should-retry": "false"}),
    (0.2, {"Retry-After": "1"}),
    (4.2, {"Retry-After": "5"}),
    (61.0, {"Retry-After": "61", "x-should-retry": "false"}),
])
def test_retry_headers(after, expected):
    assert retry_headers(after) == expected


# -- (c) Retry-After only when a retry can help -----------------------------------------------
async def _serve(config, timing: Timing = Timing()):
    router = Router(config, timing=timing)
    await router.__aenter__()
    server = EndpointServer(router, token=Secret(TOKEN), port=0)
    await server.start()
    return router, server


async def test_nothing_can_serve_is_shown_at_once_without_retries(make_config, exo):
    config, _ = make_config(exo_extra="enabled = false")  # and no cloud key anywhere
    router, server = await _serve(config)
    sdk, sent = counting_client(server.url)
    try:
        with pytest.raises(openai.InternalServerError) as caught:
            await sdk.chat.completions.create(model="llama-3.2-3b", messages=HELLO)
    finally:
        await sdk.close()
        await server.stop()
        await router.aclose()
    assert len(sent) == 1  # the SDK's two default retries were not spent
    headers = caught.value.response.headers
    assert headers["x-should-retry"] == "false" and "retry-after" not in headers
    assert "no-key" in caught.value.message


async def test_over_budget_until_midnight_is_not_retried(exo, openrouter, hf, monkeypatch):
    monkeypatch.setenv("OPENROUTER_API_KEY", OR_KEY)
    monkeypatch.setenv("HF_TOKEN", HF_KEY)
    text = config_text([exo.origin], openrouter.base_url, hf.base_url, exo_extra="enabled = false")
    text = text.replace("daily_request_limit = 1000", "daily_request_limit = 1")
    text = text.replace("daily_request_limit = 100\n", "daily_request_limit = 1\n")
    router, server = await _serve(parse_config(text, "t"), Timing(now=lambda: NOON))
    sdk, sent = counting_client(server.url)
    try:
        for _ in range(2):  # one each, then both are over their daily limit
            await sdk.chat.completions.create(model="llama-3.2-3b", messages=HELLO)
        with pytest.raises(openai.RateLimitError) as caught:
            await sdk.chat.completions.create(model="llama-3.2-3b", messages=HELLO)
    finally:
        await sdk.close()
        await server.stop()
        await router.aclose()
    assert len(sent) == 3
    headers = caught.value.response.headers
    assert headers["x-should-retry"] == "false"
    assert int(headers["retry-after"]) == 12 * 3600  # the budgets' reset, 00:00 UTC


async def test_retry_after_is_the_next_probe_and_the_sdk_retry_gets_the_answer(make_config, exo):
    config, _ = make_config()  # no cloud key: only exo could answer
    router, server = await _serve(config, Timing(exo_probe_interval_s=0.3))
    router.start_probes()
    exo.stop()
    sdk, sent = counting_client(server.url)
    try:
        async with httpx.AsyncClient() as http:
            refused = await http.post(f"{server.url}/chat/completions", headers={
                "Authorization": f"Bearer {TOKEN}"}, json={"model": "llama-3.2-3b", "messages": HELLO})
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1" and "x-should-retry" not in refused.headers
        asyncio.get_running_loop().call_later(0.3, exo.start)
        raw = await sdk.chat.completions.with_raw_response.create(model="llama-3.2-3b",
                                                                  messages=HELLO)
    finally:
        await sdk.close()
        await server.stop()
        await router.aclose()
    assert raw.headers["x-exo-bridge-provider"] == "exo"
    assert len(sent) == 2  # the first was refused with Retry-After: 1, the retry answered


# -- (d) schema-true bodies ----------------------------------------------------------------
@pytest.mark.usefixtures("keys_in_env")
async def test_plain_answer_has_null_logprobs_and_refusal(endpoint, client):  # noqa: F811
    raw = await client.chat.completions.with_raw_response.create(model="llama-3.2-3b", messages=HELLO)
    body = raw.http_response.json()
    assert body["choices"][0]["logprobs"] is None
    assert body["choices"][0]["message"]["refusal"] is None
    assert raw.parse().choices[0].finish_reason == "stop"


@pytest.mark.usefixtures("keys_in_env")
@pytest.mark.parametrize("down", [(), ("exo",)])
async def test_tool_call_reply_has_null_content(endpoint, client, exo, openrouter, down):  # noqa: F811
    for fake in (exo, openrouter):
        fake.tool_calls = [("get_weather", '{"city": "Paris"}')]
    if down:
        exo.stop()
    completion = await client.chat.completions.create(
        model="llama-3.2-3b", messages=HELLO,
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {}}}])
    choice = completion.choices[0]
    assert choice.message.content is None and choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls[0].function.name == "get_weather"
    assert choice.message.tool_calls[0].function.arguments == '{"city": "Paris"}'


@pytest.mark.usefixtures("keys_in_env")
async def test_models_have_a_created_time_and_can_be_retrieved(endpoint, client, exo):  # noqa: F811
    await endpoint.router.probe(endpoint.router.config.provider("exo"))
    listing = (await client.models.list()).data
    assert all(m.created > 1_700_000_000 for m in listing)
    one = await client.models.retrieve("mlx-community/Llama-3.2-3B-Instruct-4bit")
    alias = await client.models.retrieve("llama-3.2-3b")
    assert (one.id, one.owned_by, alias.owned_by) == (
        "mlx-community/Llama-3.2-3B-Instruct-4bit", "exo", "exo-bridge")
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("no-such-model")


@pytest.mark.usefixtures("keys_in_env")
async def test_upstream_system_fingerprint_comes_back(endpoint, client, exo, openrouter):  # noqa: F811
    exo.stop()
    openrouter.system_fingerprint = "fp_upstream42"
    completion = await client.chat.completions.create(model="llama-3.2-3b", messages=HELLO)
    assert completion.system_fingerprint == "fp_upstream42"
    stream = await client.chat.completions.create(model="llama-3.2-3b", messages=HELLO, stream=True)
    assert {chunk.system_fingerprint async for chunk in stream} == {"fp_upstream42"}
