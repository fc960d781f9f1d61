"""A hostile local client cannot hurt the endpoint: no 500s for any body, timeouts for slow or idle
connections, a connection cap that keeps a token holder served through a flood; and what a hostile
provider does reaches the endpoint's clients as a clean error, without our keys."""

from __future__ import annotations

import asyncio
import json
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router import Router
from router.cli.main import main
from router.config import parse_config
from router.endpoint.server import EndpointServer
from router.keys import Secret
from tests.conftest import OR_KEY, config_text, subprocess_env, unused_port

pytestmark = pytest.mark.usefixtures("keys_in_env")
TOKEN = "test-endpoint-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HELLO = [{"role": "user", "content": "hi there"}]
SERVER_TIMEOUTS = "\n[server]\nheader_timeout_s = 1\nbody_timeout_s = 1\nkeepalive_timeout_s = 2\n"


@pytest.fixture
async def endpoint(make_config):
    config, _ = make_config(idle_s=1.0, exo_extra="total_timeout_s = 3\n", extra=SERVER_TIMEOUTS)
    async with Router(config) as router:
        server = EndpointServer(router, token=Secret(TOKEN), port=0)
        await server.start()
        yield server
        await server.stop()


@pytest.fixture
async def client(endpoint):
    sdk = openai.AsyncOpenAI(base_url=endpoint.url, api_key=TOKEN, max_retries=0)
    yield sdk
    await sdk.close()


async def post(endpoint: EndpointServer, content: bytes) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(f"{endpoint.url}/chat/completions", content=content,
                               headers={**AUTH, "content-type": "application/json"})


def assert_openai_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["type"] and "param" in error and "code" in error


# -- finding 6: no request body produces a 500 -------------------------------------------------
BAD_BODIES = {
    "nested 20,000 deep": b'{"messages": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
    "nested 200 deep in a field": json.dumps({"model": "llama-3.2-3b", "messages": HELLO,
                                              "metadata": json.loads("[" * 200 + "]" * 200)}).encode(),
    "stream_options a number": json.dumps({"messages": HELLO, "stream": True, "stream_options": 5}).encode(),
    "stream_options a list": json.dumps({"messages": HELLO, "stream": True, "stream_options": []}).encode(),
    "include_usage a string": json.dumps({"messages": HELLO, "stream": True,
                                          "stream_options": {"include_usage": "yes"}}).encode(),
    "stream a string": json.dumps({"messages": HELLO, "stream": "yes"}).encode(),
    "content a number": json.dumps({"messages": [{"role": "user", "content": 5}]}).encode(),
    "content parts not objects": json.dumps({"messages": [{"role": "user", "content": [1, 2]}]}).encode(),
    "role unknown": json.dumps({"messages": [{"role": 7, "content": "x"}]}).encode(),
    "max_tokens a string": json.dumps({"messages": HELLO, "max_tokens": "10"}).encode(),
    "max_tokens negative": json.dumps({"messages": HELLO, "max_tokens": -1}).encode(),
    "max_completion_tokens a bool": json.dumps({"messages": HELLO, "max_completion_tokens": True}).encode(),
    "model a list": json.dumps({"messages": HELLO, "model": ["a"]}).encode(),
    "not UTF-8": b'{"messages": "\xff\xfe"}',

}


@pytest.mark.parametrize("name", list(BAD_BODIES))
async def test_a_malformed_body_is_a_400_in_openai_shape(endpoint, exo, name):
    response = await post(endpoint, BAD_BODIES[name])
    assert_openai_error(response, 400)
    assert not exo.chat_requests


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=12)
FIELDS = st.sampled_from(["messages", "model", "stream", "stream_options", "max_tokens",
                          "max_completion_tokens", "tools", "n", "temperature"])
ROLES = st.sampled_from(["user", "system", "assistant"])
MESSAGE = st.fixed_dictionaries({"role": st.one_of(ROLES, ROLES, ROLES, JSON)},
                                optional={"content": st.text(max_size=10) | JSON, "name": JSON})
OPTIONAL = {"model": st.just("llama-3.2-3b") | JSON, "stream": st.one_of(st.just(True), st.just(True), JSON),
            "stream_options": st.one_of(st.fixed_dictionaries({"include_usage": st.booleans() | JSON}),
                                      st.integers(), st.text(min_size=1), JSON),
            "max_tokens": st.integers(-5, 5000) | JSON, "max_completion_tokens": JSON, "tools": JSON}


@st.composite
def near_valid(draw: st.DrawFn) -> dict:
    """A body with good messages and each other field we read present half the time, good or not."""
    body = {"messages": draw(st.lists(MESSAGE, min_size=1, max_size=2))}
    for key, values in OPTIONAL.items():
        if draw(st.integers(0, 2)):
            body[key] = draw(values)
    return body


NEAR_VALID = near_valid()
BODIES = st.one_of(NEAR_VALID, NEAR_VALID, NEAR_VALID, st.dictionaries(FIELDS, JSON, max_size=5), JSON)


@pytest.fixture(scope="module")
def threaded_endpoint(tmp_path_factory) -> Iterator[str]:
    """A Router and its endpoint on a loop of their own (hypothesis drives it from this thread),
    in front of a fake exo."""
    from tests.fakes.provider import FakeProvider

    exo = FakeProvider("exo")
    path = tmp_path_factory.mktemp("hyp") / "config.toml"
    config = parse_config(config_text([exo.origin], "http://127.0.0.1:9/api/v1", "http://127.0.0.1:9/v1"),
                          str(path))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    state: dict[str, object] = {}

    async def up() -> str:
        router = Router(config)
        await router.__aenter__()
        server = EndpointServer(router, token=Secret(TOKEN), port=0)
        await server.start()
        state.update(router=router, server=server)
        return server.url

    async def down() -> None:
        await state["server"].stop()  # type: ignore[attr-defined]
        await state["router"].aclose()  # type: ignore[attr-defined]

    url = asyncio.run_coroutine_threadsafe(up(), loop).result(20)
    try:
        yield url
    finally:
        asyncio.run_coroutine_threadsafe(down(), loop).result(20)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        exo.close()


@pytest.fixture(scope="module")
def http_client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=15) as http:
        yield http


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES)
def test_no_request_body_gets_a_500(threaded_endpoint, http_client, body):
    response = http_client.post(f"{threaded_endpoint}/chat/completions", json=body, headers=AUTH)
    assert response.status_code in (200, 400, 404, 429, 503), (response.status_code, response.text)
    if response.status_code != 200:
        assert_openai_error(response, response.status_code)


# -- finding 2 through the endpoint: streaming and non-streaming clients ------------------------
@pytest.mark.parametrize("fault", ["endless_keepalive", "endless_tokens"])
async def test_an_endless_stream_ends_with_an_error_chunk_for_a_streaming_client(client, exo, fault):
    exo.fault, exo.chunk_delay_s, exo.keep_alive_s = fault, 0.01, 0.1
    started = time.monotonic()
    stream = await client.chat.completions.create(model="llama-3.2-3b", messages=HELLO, stream=True)
    with pytest.raises(openai.APIError) as failed:
        async for _ in stream:
            pass
    assert time.monotonic() - started < 6
    assert "idle_timeout_s" in str(failed.value) or "total_timeout_s" in str(failed.value)


@pytest.mark.parametrize("fault", ["endless_keepalive", "endless_tokens"])
async def test_an_endless_stream_is_ended_and_failed_over_for_a_non_streaming_client(client, exo, fault):
    """The client has seen nothing yet: exo's endless answer is cut at its deadline and the
    request goes on to the next provider (issue 14: a failover the client never sees)."""
    exo.fault, exo.chunk_delay_s, exo.keep_alive_s = fault, 0.01, 0.1
    started = time.monotonic()
    raw = await client.chat.completions.with_raw_response.create(model="llama-3.2-3b",
                                                                 messages=HELLO)
    assert time.monotonic() - started < 6
    attempts = raw.headers["x-exo-bridge-attempts"].split(",")
    assert attempts[0] == "exo:stream-cut" and attempts[-1].endswith(":ok")


async def test_a_malformed_chunk_after_the_first_token_is_an_error_chunk_not_a_500(client, exo):
    exo.fault, exo.fault_after_tokens = "malformed_index", 2
    stream = await client.chat.completions.create(model="llama-3.2-3b", messages=HELLO, stream=True)
    with pytest.raises(openai.APIError, match=r"malformed|index"):
        async for _ in stream:
            pass


async def test_a_malformed_chunk_before_the_first_token_fails_over(client, exo, openrouter):
    exo.fault, exo.fault_after_tokens = "malformed_delta", 0
    raw = await client.chat.completions.with_raw_response.create(model="llama-3.2-3b", messages=HELLO)
    assert raw.headers["x-exo-bridge-attempts"] == "exo:bad-response,openrouter:ok"


# -- finding 7 through the endpoint and the CLI ------------------------------------------------
@pytest.mark.parametrize("status", [401, 503])
async def test_an_echoed_key_is_not_in_the_endpoints_error_body(endpoint, exo, openrouter, hf, status):
    exo.stop()
    hf.stop()
    openrouter.fault, openrouter.fault_status = "echo_key", status
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(f"{endpoint.url}/chat/completions", headers=AUTH,
                                   json={"model": "llama-3.2-3b", "messages": HELLO})
    assert response.status_code in (429, 503)
    assert "Authorization" in response.text and OR_KEY not in response.text


async def test_an_echoed_key_is_not_in_the_sse_error_chunk(endpoint, exo, openrouter):
    exo.stop()
    openrouter.fault, openrouter.fault_after_tokens = "echo_key_mid_stream", 2
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(f"{endpoint.url}/chat/completions", headers=AUTH,
                                   json={"model": "llama-3.2-3b", "messages": HELLO, "stream": True})
    assert '"error"' in response.text and "Authorization" in response.text
    assert OR_KEY not in response.text and "data: [DONE]" not in response.text


@pytest.mark.parametrize("as_json", [False, True])
def test_an_echoed_key_is_not_in_ask_output(make_config, exo, openrouter, hf, capsys, as_json):
    _, path = make_config()
    exo.stop()
    hf.stop()
    openrouter.fault, openrouter.fault_status = "echo_key", 503
    code = main(["ask", "hi", "--config", str(path), *(["--json"] if as_json else [])])
    out, err = capsys.readouterr()
    assert code == 3
    assert "Authorization" in out + err and OR_KEY not in out + err


# -- finding 5: slow, idle and too many connections --------------------------------------------
async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the server sent before it closed the connection (fails if it is still open)."""
    got = b""
    async with asyncio.timeout(seconds):
        while chunk := await reader.read(65536):
            got += chunk
    return got


async def test_an_idle_connection_is_closed_after_the_keepalive_timeout(endpoint):
    reader, writer = await asyncio.open_connection("127.0.0.1", endpoint.port)
    started = time.monotonic()
    assert await _closed_within(reader, 5) == b""
    assert 1.5 < time.monotonic() - started < 4
    writer.close()


async def test_slow_headers_are_cut_off_after_the_header_timeout(endpoint):
    reader, writer = await asyncio.open_connection("127.0.0.1", endpoint.port)
    started = time.monotonic()

    async def drip() -> None:
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for i in range(100):
            await asyncio.sleep(0.2)
            writer.write(f"X-Slow-{i}: y\r\n".encode())

    dripping = asyncio.create_task(drip())
    try:
        await _closed_within(reader, 4)
    finally:
        dripping.cancel()
        writer.close()
    assert time.monotonic() - started < 2.5  # the header timeout (1 s), not the keep-alive one


async def test_a_slow_body_is_cut_off_after_the_body_timeout(endpoint, exo):
    reader, writer = await asyncio.open_connection("127.0.0.1", endpoint.port)
    writer.write(f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}"
                 "\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode())
    started = time.monotonic()

    async def drip() -> None:
        for _ in range(100):
            await asyncio.sleep(0.2)
            writer.write(b" ")

    dripping = asyncio.create_task(drip())
    try:
        answer = await _closed_within(reader, 5)
    finally:
        dripping.cancel()
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert time.monotonic() - started < 3
    assert not exo.chat_requests


async def test_at_the_cap_a_new_connection_closes_the_longest_idle_or_gets_a_503(make_config, exo):
    config, _ = make_config(extra="\n[server]\nmax_connections = 2\nkeepalive_timeout_s = 60\n")
    exo.chunk_delay_s = 0.3  # ~2 s an answer
    async with Router(config) as router:
        server = EndpointServer(router, token=Secret(TOKEN), port=0)
        await server.start()
        try:
            first_reader, first = await asyncio.open_connection("127.0.0.1", server.port)
            _, second = await asyncio.open_connection("127.0.0.1", server.port)
            async with httpx.AsyncClient(timeout=10) as http:  # a third: the first idle one goes
                assert (await http.get(f"http://127.0.0.1:{server.port}/health")).status_code == 200
            assert await _closed_within(first_reader, 2) == b""
            second.close()
            async with httpx.AsyncClient(timeout=10) as a, httpx.AsyncClient(timeout=10) as b:
                busy = [asyncio.create_task(client.post(f"{server.url}/chat/completions", headers=AUTH,
                                                        json={"model": "llama-3.2-3b", "messages": HELLO}))
                        for client in (a, b)]
                await asyncio.sleep(0.5)  # both connections now busy with a request
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                refused = await _closed_within(reader, 2)
                writer.close()
                assert refused.startswith(b"HTTP/1.1 503") and b"too_many_connections" in refused
                assert [r.status_code for r in await asyncio.gather(*busy)] == [200, 200]
            assert server.connections is not None and server.connections.refused == 1
        finally:
            first.close()
            await server.stop()


def _limit_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


def _start_serve(path: Path, port: int) -> subprocess.Popen[str]:
    exe = str(Path(sys.executable).with_name("exo-bridge"))
    proc = subprocess.Popen([exe, "serve", "--port", str(port), "--config", str(path)],
                            stderr=subprocess.PIPE, text=True, preexec_fn=_limit_files,
                            env=subprocess_env(EXO_BRIDGE_TOKEN=TOKEN, OPENROUTER_API_KEY=OR_KEY))
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "serving" in line, line + proc.stderr.read()
    return proc


def _flood(port: int, count: int) -> list[socket.socket]:
    """``count`` idle TCP connections (no request, no token), opened fifty at a time so that
    the listen backlog takes each of them (a burst would leave most half-open)."""
    held = []
    for n in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        held.append(sock)
        if n % 50 == 49:
            time.sleep(0.05)
    return held


def test_a_flood_of_idle_connections_does_not_starve_a_token_holder(make_config, exo):
    _, path = make_config(extra="\n[server]\nkeepalive_timeout_s = 120\nheader_timeout_s = 120\n")
    port = unused_port()
    proc = _start_serve(path, port)
    held: list[socket.socket] = []
    try:
        held = _flood(port, 1100)
        time.sleep(1.0)
        served = 0
        for _ in range(20):
            with httpx.Client(timeout=5) as http:
                try:
                    response = http.post(f"http://127.0.0.1:{port}/v1/chat/completions", headers=AUTH,
                                         json={"model": "llama-3.2-3b", "messages": HELLO})
                    served += response.status_code == 200 and "Hello" in response.text
                except httpx.HTTPError:
                    pass
        assert served == 20
        with httpx.Client(timeout=5) as http:
            assert http.get(f"http://127.0.0.1:{port}/health").status_code == 200
    finally:
        for sock in held:
            sock.close()
        proc.terminate()
        err = proc.communicate(timeout=15)[1]
    assert "Too many open files" not in err and "Traceback" not in err
