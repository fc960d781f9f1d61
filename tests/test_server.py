"""The local endpoint, through the official openai SDK and raw HTTP, against the fake providers."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import keyring
import keyring.backends.fail
import openai
import pytest

from router import Router
from router.cli.main import main
from router.endpoint.server import EndpointError, EndpointServer
from router.events import RequestFinished
from router.keys import Secret
from tests.conftest import HF_KEY, OR_KEY, subprocess_env, unused_port
from tests.endpoint_fixtures import HELLO, TOKEN

pytestmark = pytest.mark.usefixtures("keys_in_env")


def sse_content(line: str) -> str | None:
    """The text of an SSE data line's first choice (None for other lines)."""
    if not line.startswith("data: {"):
        return None
    choices = json.loads(line[6:]).get("choices") or [{}]
    return (choices[0].get("delta") or {}).get("content")


async def test_non_streaming_through_the_sdk(client, exo):
    raw = await client.chat.completions.with_raw_response.create(model="llama-3.2-3b", messages=HELLO)
    completion = raw.parse()
    assert completion.choices[0].message.content.strip() == "Hello from the fake provider ."
    assert completion.usage.completion_tokens == 6
    assert completion.usage.model_extra["cost"] == 0.0
    assert raw.headers["x-exo-bridge-provider"] == "exo"
    assert raw.headers["x-exo-bridge-attempts"] == "exo:ok"


async def test_streaming_with_include_usage_through_the_sdk(client, exo):
    exo.stop()
    stream = await client.chat.completions.create(model="llama-3.2-3b", messages=HELLO, stream=True,
                                                  stream_options={"include_usage": True})
    text, usage = [], None
    async for chunk in stream:
        if chunk.choices:
            text.append(chunk.choices[0].delta.content or "")
            assert chunk.object == "chat.completion.chunk"
        if chunk.usage:
            usage = chunk.usage
    assert "".join(text).strip() == "Hello from the fake provider ."
    assert usage is not None and usage.model_extra["cost"] > 0
    assert usage.prompt_tokens > 0


async def test_streaming_without_include_usage_has_no_usage_chunk(endpoint, exo):
    async with httpx.AsyncClient() as http, http.stream(
            "POST", f"{endpoint.url}/chat/completions", headers={"Authorization": f"Bearer {TOKEN}"},
            json={"model": "llama-3.2-3b", "messages": HELLO, "stream": True}) as response:
        lines = [line async for line in response.aiter_lines() if line.startswith("data:")]
    assert response.headers["x-exo-bridge-provider"] == "exo"
    assert lines[-1] == "data: [DONE]"
    assert all(json.loads(line[6:])["choices"] for line in lines[:-1])


async def test_failover_is_visible_in_headers(client, exo):
    exo.stop()
    raw = await client.chat.completions.with_raw_response.create(model="llama-3.2-3b", messages=HELLO)
    assert raw.headers["x-exo-bridge-provider"] == "openrouter"
    assert raw.headers["x-exo-bridge-attempts"] == "exo:refused,openrouter:ok"
    async with client.chat.completions.with_streaming_response.create(
            model="llama-3.2-3b", messages=HELLO, stream=True) as streamed:
        assert streamed.headers["x-exo-bridge-attempts"] == "exo:circuit-open,openrouter:ok"
        async for _ in streamed.iter_lines():
            pass


async def test_every_provider_failed_is_503_with_attempts_and_retry_after(client, exo, openrouter, hf):
    exo.stop(); openrouter.stop(); hf.stop()
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model="llama-3.2-3b", messages=HELLO)
    assert caught.value.status_code == 503
    assert "exo: refused" in caught.value.message and "huggingface: refused" in caught.value.message
    assert int(caught.value.response.headers["Retry-After"]) >= 1
    body = caught.value.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}


async def test_all_over_limits_is_429(client, exo, openrouter, hf):
    exo.stop()
    for fake in (openrouter, hf):
        fake.fault, fake.fault_status, fake.retry_after = "status", 429, "30"
    with pytest.raises(openai.RateLimitError) as caught:  # exo down, the others rate limited
        await client.chat.completions.create(model="llama-3.2-3b", messages=HELLO)
    assert caught.value.status_code == 429
    with pytest.raises(openai.RateLimitError) as again:  # now skipped without calls: limits only
        await client.chat.completions.create(model="llama-3.2-3b", messages=HELLO)
    assert again.value.status_code == 429
    assert 1 <= int(again.value.response.headers["Retry-After"]) <= 30


async def test_unknown_model_is_404_listing_aliases(endpoint, client, exo, openrouter, hf):
    for provider in endpoint.router.config.providers:  # learn every model list
        await endpoint.router.probe(provider)
        await endpoint.router.pricer.refresh(await endpoint.router.http(), provider)
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(model="no-such-model-anywhere", messages=HELLO)
    assert "llama-3.2-3b" in caught.value.message
    assert exo.chat_requests == openrouter.chat_requests == hf.chat_requests == []


async def test_request_fault_is_400(client, exo, openrouter, hf):
    exo.stop()
    openrouter.fault = "bad_request"
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="llama-3.2-3b", messages=HELLO)
    assert hf.chat_requests == []


async def test_mid_stream_failure_raises_api_error_in_the_sdk(client, exo):
    exo.fault = "close_without_done"
    stream = await client.chat.completions.create(model="llama-3.2-3b", messages=HELLO, stream=True)
    seen = []
    with pytest.raises(openai.APIError) as caught:
        async for chunk in stream:
            seen.append(chunk.choices[0].delta.content if chunk.choices else "")
    assert "".join(filter(None, seen)).strip() == "Hello from"
    assert "stream" in str(caught.value).lower()


async def test_models_and_health(endpoint, client, exo):
    await endpoint.router.probe(endpoint.router.config.provider("exo"))
    models = [m.id for m in (await client.models.list()).data]
    assert models[0] == "llama-3.2-3b" and "mlx-community/Qwen3-8B-4bit" in models
    async with httpx.AsyncClient() as http:
        health = await http.get(endpoint.url.removesuffix("/v1") + "/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and {p["id"] for p in body["providers"]} == {"exo", "openrouter", "huggingface"}
    assert OR_KEY not in health.text and HF_KEY not in health.text and TOKEN not in health.text


@pytest.mark.parametrize(("headers", "content", "status", "code"), [
    ({}, b'{"messages": []}', 401, "invalid_api_key"),
    ({"Authorization": "Bearer wrong"}, b'{"messages": []}', 401, "invalid_api_key"),
    ({"Authorization": f"Bearer {TOKEN}", "Origin": "https://evil.example"}, None, 403, "origin_not_allowed"),
    ({"Authorization": f"Bearer {TOKEN}", "Host": "evil.example:8741"}, None, 403, "host_not_allowed"),
    ({"Authorization": f"Bearer {TOKEN}"}, b"{not json", 400, "invalid_json"),
    ({"Authorization": f"Bearer {TOKEN}"}, b'{"model": "llama-3.2-3b"}', 400, "bad_request"),
    ({"Authorization": f"Bearer {TOKEN}"}, b"x" * (9 * 1024 * 1024), 413, "request_too_large"),
])
async def test_security_rules(endpoint, exo, openrouter, headers, content, status, code):
    body = content if content is not None else json.dumps({"model": "llama-3.2-3b", "messages": HELLO}).encode()
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{endpoint.url}/chat/completions", content=body,
                                   headers={"Content-Type": "application/json", **headers})
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert "Traceback" not in response.text
    assert "access-control-allow-origin" not in response.headers
    assert exo.chat_requests == [] and openrouter.chat_requests == []


async def test_allowed_origin_gets_cors(make_config, exo):
    config, _ = make_config(extra='\n[server]\nallowed_origins = ["http://localhost:3000"]\n')
    async with Router(config) as router:
        server = EndpointServer(router, token=Secret(TOKEN), port=0)
        await server.start()
        try:
            async with httpx.AsyncClient() as http:
                response = await http.post(f"{server.url}/chat/completions",
                                           json={"model": "llama-3.2-3b", "messages": HELLO},
                                           headers={"Authorization": f"Bearer {TOKEN}",
                                                    "Origin": "http://localhost:3000"})
        finally:
            await server.stop()
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"


async def test_client_disconnect_cancels_upstream(endpoint, exo):
    exo.chunk_delay_s = 0.1
    async with httpx.AsyncClient() as http, http.stream(
            "POST", f"{endpoint.url}/chat/completions", headers={"Authorization": f"Bearer {TOKEN}"},
            json={"model": "llama-3.2-3b", "messages": HELLO, "stream": True}) as response:
        async for line in response.aiter_lines():
            if (sse_content(line) or "").startswith("Hello"):
                break
    for _ in range(50):
        if exo.cancelled_streams:
            break
        await asyncio.sleep(0.05)
    assert exo.cancelled_streams == 1 and exo.completed_streams == 0
    finished = [e for e in endpoint.events if isinstance(e, RequestFinished)]
    assert finished and finished[-1].attempts[-1].outcome == "cancelled"
    assert finished[-1].attempts[-1].usage["completion_tokens"] >= 1


async def test_port_in_use_is_an_error_not_an_exit(make_config):
    config, _ = make_config()
    async with Router(config) as router:
        first = EndpointServer(router, token=Secret(TOKEN), port=0)
        await first.start()
        try:
            second = EndpointServer(router, token=Secret(TOKEN), port=first.port)
            with pytest.raises(EndpointError, match=str(first.port)):
                await second.start()
        finally:
            await first.stop()


def test_token_command(capsys, keyring_store, monkeypatch):
    assert main(["token"]) == 0
    first = capsys.readouterr().out.strip()
    assert len(first) >= 32 and keyring_store.entries[("exo-bridge", "local-token")] == first
    assert main(["token"]) == 0
    assert capsys.readouterr().out.strip() == first
    monkeypatch.setenv("EXO_BRIDGE_TOKEN", "from-the-env")
    assert main(["token"]) == 0
    assert capsys.readouterr().out.strip() == "from-the-env"


def test_token_without_keychain_says_to_use_the_env(capsys):
    keyring.set_keyring(keyring.backends.fail.Keyring())
    assert main(["token"]) == 2
    assert "EXO_BRIDGE_TOKEN" in capsys.readouterr().err


def _start_serve(path: Path, port: int, **env: str) -> subprocess.Popen[str]:
    exe = str(Path(sys.executable).with_name("exo-bridge"))
    return subprocess.Popen([exe, "serve", "--port", str(port), "--config", str(path)],
                            stderr=subprocess.PIPE, text=True,
                            env=subprocess_env(EXO_BRIDGE_TOKEN=TOKEN, OPENROUTER_API_KEY=OR_KEY, **env))


def _wait_ready(proc: subprocess.Popen[str]) -> str:
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "serving" in line, line
    return line


def test_sigterm_finishes_requests_in_flight(make_config, exo):
    _, path = make_config()
    exo.chunk_delay_s = 0.15  # about a second for the whole answer
    port = unused_port()
    proc = _start_serve(path, port)
    try:
        _wait_ready(proc)
        with httpx.Client(timeout=10) as http, http.stream(
                "POST", f"http://127.0.0.1:{port}/v1/chat/completions",
                headers={"Authorization": f"Bearer {TOKEN}"},
                json={"model": "llama-3.2-3b", "messages": HELLO, "stream": True}) as response:
            lines = response.iter_lines()
            first = next(lines)
            proc.send_signal(signal.SIGTERM)
            rest = list(lines)
        assert first.startswith("data:") and "data: [DONE]" in rest
        assert proc.wait(10) == 0
    finally:
        proc.kill()


def test_serve_port_in_use_exits_2(make_config):
    _, path = make_config()
    port = unused_port()
    first = _start_serve(path, port)
    try:
        _wait_ready(first)
        second = _start_serve(path, port)
        assert second.wait(20) == 2
        assert second.stderr is not None
        err = second.stderr.read()
        assert f"127.0.0.1:{port}" in err and "Traceback" not in err
    finally:
        first.terminate()
        first.wait(10)


def test_serve_elsewhere_warns(make_config):
    _, path = make_config()
    port = unused_port()
    exe = str(Path(sys.executable).with_name("exo-bridge"))
    proc = subprocess.Popen([exe, "serve", "--host", "0.0.0.0", "--port", str(port), "--config", str(path)],
                            stderr=subprocess.PIPE, text=True, env=subprocess_env(EXO_BRIDGE_TOKEN=TOKEN))
    try:
        assert proc.stderr is not None
        warning = proc.stderr.readline()
        assert "warning" in warning and "0.0.0.0" in warning
        time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(10)


async def test_chunks_are_forwarded_as_they_arrive(endpoint, exo):
    exo.chunk_delay_s = 0.15
    arrivals = []
    async with httpx.AsyncClient() as http, http.stream(
            "POST", f"{endpoint.url}/chat/completions", headers={"Authorization": f"Bearer {TOKEN}"},
            json={"model": "llama-3.2-3b", "messages": HELLO, "stream": True}) as response:
        async for line in response.aiter_lines():
            if sse_content(line):
                arrivals.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(arrivals) == 6
    assert all(0.1 < gap < 0.3 for gap in gaps), gaps  # the provider's pace, not one burst
