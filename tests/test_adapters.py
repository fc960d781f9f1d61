"""Adapters in isolation: error classification, exo state parsing, SSE edge cases (httpx.MockTransport)."""

from __future__ import annotations

import json

import httpx
import pytest

from router.errors import Outcome, ProviderFailure
from router.http.client import HttpxWire
from router.providers import adapter_for
from router.providers.exo import current_readiness, legacy_downloads
from router.providers.openai_compat import error_message
from router.streaming import Attempt, Deadlines


@pytest.mark.parametrize(("body", "message"), [
    (b'{"error": {"message": "bad key", "code": 401}}', "bad key"),
    (b'{"error": "Invalid credentials in Authorization header"}', "Invalid credentials in Authorization header"),
    (b'{"errors": [{"message": "first"}]}', "first"),
    (b'{"detail": [{"msg": "field required"}]}', "field required"),
    (b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
])
def test_error_message_shapes(body, message):
    assert error_message(body) == message


@pytest.mark.parametrize(("kind", "status", "body", "outcome"), [
    ("openrouter", 401, b'{"error": {"code": 401, "message": "No auth"}}', Outcome.INVALID_KEY),
    ("openrouter", 402, b'{"error": {"code": 402, "message": "Insufficient credits"}}', Outcome.OUT_OF_CREDITS),
    ("openrouter", 403, b'{"error": {"code": 403, "message": "flagged", "metadata": {"reasons": []}}}',
     Outcome.BAD_REQUEST),
    ("openrouter", 400, b'{"error": {"code": 400, "message": "x is not a valid model ID"}}',
     Outcome.MODEL_UNAVAILABLE),
    ("openrouter", 429, b'{"error": {"code": 429, "message": "Rate limit exceeded: free-models-per-day"}}',
     Outcome.RATE_LIMITED),
    ("huggingface", 400, b'{"error": {"message": "not supported", "code": "model_not_supported"}}',
     Outcome.MODEL_UNAVAILABLE),
    ("huggingface", 402, b'{"error": "You have exceeded your monthly included credits"}', Outcome.OUT_OF_CREDITS),
    ("huggingface", 403, b'{"error": "Access to model X is restricted: gated"}', Outcome.MODEL_UNAVAILABLE),
    ("huggingface", 410, b'{"error": "Gone"}', Outcome.MODEL_UNAVAILABLE),
    ("exo", 404, b'{"error": {"message": "No instance found for model m", "code": 404}}',
     Outcome.MODEL_UNAVAILABLE),
    ("exo", 422, b'{"detail": [{"msg": "field required"}]}', Outcome.BAD_REQUEST),
    ("exo", 408, b'{"detail": "Response generation timed out"}', Outcome.TIMEOUT),
    ("openai", 503, b"", Outcome.SERVER_ERROR),
])
def test_classification(kind, status, body, outcome):
    failure = adapter_for(kind).classify(status, body, httpx.Headers({"retry-after": "7"}))
    assert failure.outcome is outcome


def test_openrouter_daily_quota_waits_until_reset():
    failure = adapter_for("openrouter").classify(
        429, b'{"error": {"code": 429, "message": "Rate limit exceeded: free-models-per-day"}}',
        httpx.Headers())
    assert failure.retry_after_s is not None and failure.retry_after_s > 60


def test_current_exo_state_with_runner_and_download_shapes():
    state = {
        "instances": {"i1": {"MlxRingInstance": {"shardAssignments": {
            "modelId": "m/ready", "runnerToShard": {"r1": {}, "r2": {}}}}},
            "i2": {"MlxJacclInstance": {"shardAssignments": {
                "modelId": "m/loading", "shards": [["n1", "r3", {}]]}}}},
        "runners": {"r1": {"RunnerReady": {}}, "r2": {"RunnerRunning": {}},
                    "r3": {"RunnerLoading": {"layersLoaded": 3, "totalLayers": 10}}},
        "downloads": {"n1": [{"DownloadOngoing": {"shardMetadata": {"modelCard": {"modelId": "m/dl"}},
                                                  "downloadProgress": {"totalBytes": 200,
                                                                       "downloadedBytes": 50}}},
                             {"DownloadCompleted": {"shardMetadata": {"modelId": "m/ready"}}}]},
    }
    ready, busy, progress = current_readiness(state)
    assert ready == {"m/ready"}
    assert busy == {"m/loading": "loading loading 3/10 layers", "m/dl": "downloading dl 25%"}
    assert progress == 25.0


def test_legacy_download_progress():
    busy, progress = legacy_downloads({"n": {"status": "in_progress", "downloaded_bytes": 10,
                                             "total_bytes": 40, "shard": {"model_id": "llama-3.2-3b"}},
                                       "m": {"status": "complete", "shard": {"model_id": "x"}}})
    assert busy == {"llama-3.2-3b": "downloading llama-3.2-3b 25%"} and progress == 25.0


async def _chunks(handler, kind="openai", deadlines=Deadlines(1, 1, 1)):
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        attempt = Attempt(HttpxWire(http), adapter_for(kind), "http://x/v1/chat/completions", {"model": "m"},
                          None, deadlines)
        return [c async for batch in attempt.batches() for c in batch]


def sse(*lines: str) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"},
                          content="".join(f"{line}\n\n" for line in lines).encode())


async def test_whole_json_answer_is_turned_into_chunks():
    body = {"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hey"},
                                    "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    chunks = await _chunks(lambda r: httpx.Response(200, json=body))
    assert chunks[0]["choices"][0]["delta"]["content"] == "hey"
    assert chunks[-1]["usage"]["completion_tokens"] == 1


async def test_200_with_error_object_is_not_an_answer():
    with pytest.raises(ProviderFailure) as caught:
        await _chunks(lambda r: httpx.Response(200, json={"error": {"message": "boom"}}))
    assert caught.value.outcome is Outcome.SERVER_ERROR


async def test_sse_garbage_is_bad_response():
    with pytest.raises(ProviderFailure) as caught:
        await _chunks(lambda r: sse("data: {nope"))
    assert caught.value.outcome is Outcome.BAD_RESPONSE


async def test_stream_without_done_fails_for_openai_but_not_for_legacy_exo():
    chunk = '{"id": "a", "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": "stop"}]}'
    with pytest.raises(ProviderFailure) as caught:
        await _chunks(lambda r: sse(f"data: {chunk}"))
    assert caught.value.outcome is Outcome.STREAM_CUT
    assert len(await _chunks(lambda r: sse(f"data: {chunk}"), kind="exo")) == 1


async def test_empty_stream_is_a_failure():
    with pytest.raises(ProviderFailure):
        await _chunks(lambda r: sse(": keep-alive"), kind="exo")


async def test_standard_chunks_pass_unchanged_others_are_rebuilt():
    standard = ('{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m",'
                '"choices":[{"index":0,"delta":{"content":"h\\u00e9"},"finish_reason":null}]}')
    legacy = '{"id":"a","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}'
    chunks = await _chunks(lambda r: sse(f"data: {standard}", f"data: {legacy}", "data: [DONE]"))
    assert chunks[0] == json.loads(standard)  # nothing added, nothing dropped
    assert chunks[0]["choices"][0]["delta"]["content"] == "hé"
    assert chunks[1]["id"] == "chatcmpl-a"  # rebuilt to the standard shape
    assert chunks[1]["object"] == "chat.completion.chunk"
