"""Exo-first routing and every failover rule, through real HTTP to the fake providers."""

from __future__ import annotations

import pytest

from router import NoProviderAvailable, Outcome, RequestRejected, Router, StreamBroken
from router.core import Timing
from router.events import Failover, HealthChanged
from tests.conftest import OR_KEY
from tests.fakes.provider import FakeProvider

pytestmark = pytest.mark.usefixtures("keys_in_env")

ASK = {"model": "llama-3.2-3b", "messages": [{"role": "user", "content": "hi there"}]}


def outcomes(attempts) -> list[tuple[str, str]]:
    return [(a.provider, str(a.outcome)) for a in attempts]


async def collect(router: Router, request=ASK) -> tuple[str, object]:
    text = []
    async with router.stream(request) as stream:
        async for chunk in stream:
            for choice in chunk["choices"]:
                text.append(choice["delta"].get("content") or "")
    return "".join(text), stream.result


async def test_exo_first_when_it_is_ready(make_config, exo: FakeProvider, openrouter: FakeProvider):
    config, _ = make_config()
    async with Router(config) as router:
        result = await router.chat(ASK)
    assert result.provider_used == "exo"
    assert result.model == "mlx-community/Llama-3.2-3B-Instruct-4bit"
    assert result.text.strip() == "Hello from the fake provider ."
    assert result.cost_usd == 0.0 and result.cost_source == "free"
    assert result.usage["completion_tokens"] == 6
    assert outcomes(result.attempts) == [("exo", "ok")]
    assert openrouter.chat_requests == []
    # exo was always asked to stream with usage, whatever the caller wanted
    sent = exo.chat_requests[0].body
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


async def test_exo_chunks_are_normalised(make_config, exo: FakeProvider):
    config, _ = make_config()
    async with Router(config) as router, router.stream(ASK) as stream:
        chunks = [c async for c in stream]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert all(c["id"].startswith("chatcmpl-") for c in chunks)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["cost"] == 0.0
    assert [c for c in chunks[:-1] if c.get("usage")] == []
    assert stream.provider == "exo" and stream.result is not None


@pytest.mark.parametrize("streamed", [False, True])
async def test_refused_exo_fails_over_and_opens_breaker(make_config, exo: FakeProvider,
                                                        openrouter: FakeProvider, streamed: bool):
    config, _ = make_config()
    exo.stop()
    events = []
    async with Router(config) as router:
        router.subscribe(events.append)
        result = (await collect(router))[1] if streamed else await router.chat(ASK)
        assert result.provider_used == "openrouter"
        assert outcomes(result.attempts) == [("exo", "refused"), ("openrouter", "ok")]
        assert result.attempts[0].detail == "connection refused"
        # the second request skips exo without a network call
        again = await router.chat(ASK)
        assert outcomes(again.attempts) == [("exo", "circuit-open"), ("openrouter", "ok")]
        assert again.attempts[0].latency_ms == 0
    assert any(isinstance(e, Failover) and e.from_provider == "exo" and e.to_provider == "openrouter"
               for e in events)
    assert openrouter.chat_requests[0].headers["Authorization"] == f"Bearer {OR_KEY}"
    assert result.cost_source == "reported" and result.cost_usd > 0


async def test_after_forget_health_the_breaker_opens_again(make_config, exo: FakeProvider,
                                                          openrouter: FakeProvider):
    config, _ = make_config()
    exo.stop()
    async with Router(config) as router:
        await router.chat(ASK)
        router.forget_health()  # benchmarks and one-shot use start afresh
        first, again = await router.chat(ASK), await router.chat(ASK)
    assert outcomes(first.attempts) == [("exo", "refused"), ("openrouter", "ok")]
    assert outcomes(again.attempts) == [("exo", "circuit-open"), ("openrouter", "ok")]


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize(("fault", "status", "outcome"), [
    ("hang_before_headers", None, "timeout"),
    ("stall_after_headers", None, "timeout"),
    ("status", 500, "server-error"),
    ("status", 502, "server-error"),
    ("status", 503, "server-error"),
    ("malformed_json", None, "bad-response"),
    ("model_not_found", None, "model-unavailable"),
])
async def test_exo_fault_before_first_token_fails_over(make_config, exo: FakeProvider,
                                                       openrouter: FakeProvider, fault, status,
                                                       outcome, streamed):
    config, _ = make_config(first_token_s=0.4)
    exo.fault, exo.fault_status = fault, status or 500
    async with Router(config) as router:
        if streamed:
            text, result = await collect(router)
            assert text.strip() == "Hello from the fake provider ."
        else:
            result = await router.chat(ASK)
    assert outcomes(result.attempts) == [("exo", outcome), ("openrouter", "ok")]
    assert result.provider_used == "openrouter"


async def test_keep_alives_do_not_count_as_first_token(make_config, exo: FakeProvider):
    config, _ = make_config(first_token_s=0.3)
    exo.fault = "stall_after_headers"  # sends ": keep-alive" every 50 ms, never a token
    exo.stall_s = 5
    async with Router(config) as router:
        result = await router.chat(ASK)
    assert result.attempts[0].outcome == "timeout"
    assert result.attempts[0].latency_ms < 1500


@pytest.mark.parametrize("fault", ["stall_mid_stream", "close_without_done", "error_chunk_mid_stream"])
async def test_failure_after_first_token_is_never_a_clean_finish(make_config, exo: FakeProvider,
                                                                 openrouter: FakeProvider, fault):
    config, _ = make_config(idle_s=0.3)
    exo.fault = fault
    seen = []
    async with Router(config) as router:
        with pytest.raises(StreamBroken) as caught:
            async with router.stream(ASK) as stream:
                async for chunk in stream:
                    seen.extend(c["delta"].get("content") for c in chunk["choices"])
    assert "".join(filter(None, seen)).strip() == "Hello from"
    assert outcomes(caught.value.attempts) == [("exo", "stream-cut")]
    assert openrouter.chat_requests == []  # no silent restart elsewhere mid-answer


@pytest.mark.parametrize("fault", ["stall_mid_stream", "close_without_done", "error_chunk_mid_stream"])
async def test_openrouter_mid_stream_failures(make_config, exo: FakeProvider, openrouter: FakeProvider,
                                              fault):
    config, _ = make_config(idle_s=0.3)
    exo.stop()
    openrouter.fault = fault
    async with Router(config) as router:
        with pytest.raises(StreamBroken):
            async with router.stream(ASK) as stream:
                async for _ in stream:
                    pass


@pytest.mark.parametrize("fault", ["stall_mid_stream", "close_without_done", "error_chunk_mid_stream"])
async def test_a_cut_before_anything_was_delivered_fails_over(make_config, exo: FakeProvider,
                                                              openrouter: FakeProvider, hf: FakeProvider,
                                                              fault):
    """A non-streamed caller has received nothing when an answer breaks: it fails over like any
    other failure, the partial attempt recorded as stream-cut with its tokens and cost."""
    config, _ = make_config(idle_s=0.3)
    exo.stop()
    openrouter.fault = fault
    async with Router(config) as router:
        await router.pricer.refresh(await router.http(), config.provider("openrouter"))
        result = await router.chat(ASK)
    assert outcomes(result.attempts) == [("exo", "refused"), ("openrouter", "stream-cut"),
                                         ("huggingface", "ok")]
    cut = result.attempts[1]
    assert cut.usage["completion_tokens"] >= 1 and cut.cost_usd > 0 and cut.called
    assert result.text.strip() == "Hello from the fake provider ."


async def test_429_cools_provider_for_retry_after(make_config, exo: FakeProvider,
                                                  openrouter: FakeProvider, hf: FakeProvider):
    config, _ = make_config()
    exo.stop()
    openrouter.fault, openrouter.fault_status, openrouter.retry_after = "status", 429, "120"
    async with Router(config) as router:
        first = await router.chat(ASK)
        assert outcomes(first.attempts) == [("exo", "refused"), ("openrouter", "rate-limited"),
                                            ("huggingface", "ok")]
        second = await router.chat(ASK)
    assert second.attempts[1].outcome == "rate-limited" and not second.attempts[1].called
    assert "resting 1" in second.attempts[1].detail  # ~120 s
    assert len(openrouter.chat_requests) == 1


async def test_402_is_out_of_credits_until_the_user_acts(make_config, exo, openrouter, hf):
    """A bare 402 (no limit named) is the account's credit: not retried by itself (each cause
    in tests/test_accounts.py)."""
    config, _ = make_config()
    exo.stop()
    openrouter.fault, openrouter.fault_status = "status", 402
    async with Router(config) as router:
        first = await router.chat(ASK)
        second = await router.chat(ASK)
    assert first.attempts[1].outcome == "out-of-credits"
    assert second.attempts[1].outcome == "out-of-credits" and not second.attempts[1].called
    assert second.attempts[1].detail.startswith("out of credits, until credit is added")
    assert len(openrouter.chat_requests) == 1


async def test_401_marks_invalid_key_and_is_not_retried(make_config, exo, openrouter, hf, monkeypatch):
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-wrong")
    config, _ = make_config()
    exo.stop()
    async with Router(config) as router:
        first = await router.chat(ASK)
        second = await router.chat(ASK)
        states = {s.id: s for s in router.statuses()}
    assert first.attempts[1].outcome == "invalid-key"
    assert second.attempts[1].outcome == "invalid-key" and not second.attempts[1].called
    assert len(openrouter.chat_requests) == 1
    assert states["openrouter"].state == "down" and states["openrouter"].detail == "invalid key"
    assert states["openrouter"].invalid_key  # said by a field, not by its text
    assert "sk-or-wrong" not in repr(first) + repr(second)


async def test_model_404_fails_over_for_that_model_only(make_config, exo, openrouter, hf):
    config, _ = make_config()
    exo.stop()
    openrouter.fault = "model_not_found"
    async with Router(config) as router:
        first = await router.chat(ASK)
        assert outcomes(first.attempts)[1] == ("openrouter", "model-unavailable")
        openrouter.fault = None
        other = await router.chat({**ASK, "model": "openai/gpt-4o-mini"})
        assert other.provider_used == "openrouter"
        again = await router.chat(ASK)
        assert again.attempts[1].outcome == "model-unavailable" and not again.attempts[1].called


async def test_request_fault_400_returns_to_caller_without_burning_others(make_config, exo, openrouter, hf):
    config, _ = make_config()
    exo.stop()
    openrouter.fault = "bad_request"
    async with Router(config) as router:
        with pytest.raises(RequestRejected) as caught:
            await router.chat(ASK)
    assert outcomes(caught.value.attempts) == [("exo", "refused"), ("openrouter", "bad-request")]
    assert hf.chat_requests == []


async def test_malformed_request_is_rejected_before_any_provider(make_config, exo, openrouter):
    config, _ = make_config()
    async with Router(config) as router:
        with pytest.raises(RequestRejected):
            await router.chat({"model": "llama-3.2-3b", "messages": []})
        with pytest.raises(RequestRejected):
            await router.chat({"model": "llama-3.2-3b"})
    assert exo.chat_requests == [] and openrouter.chat_requests == []


async def test_all_fail_lists_every_attempt(make_config, exo, openrouter, hf):
    config, _ = make_config()
    exo.stop()
    openrouter.fault, openrouter.fault_status = "status", 503
    hf.stop()
    async with Router(config) as router:
        with pytest.raises(NoProviderAvailable) as caught:
            await router.chat(ASK)
    assert outcomes(caught.value.attempts) == [("exo", "refused"), ("openrouter", "server-error"),
                                               ("huggingface", "refused")]
    message = str(caught.value)
    assert "exo: refused" in message and "huggingface: refused" in message


async def test_keyless_and_disabled_providers_skipped_without_a_call(make_config, exo, openrouter, hf,
                                                                     monkeypatch):
    monkeypatch.delenv("OPENROUTER_API_KEY")
    config, _ = make_config()
    exo.stop()
    async with Router(config) as router:
        result = await router.chat(ASK)
    assert outcomes(result.attempts) == [("exo", "refused"), ("openrouter", "no-key"),
                                         ("huggingface", "ok")]
    assert openrouter.requests == []


async def test_busy_exo_is_skipped_at_once_with_download_progress(make_config, exo, openrouter):
    config, _ = make_config()
    exo.ready = set()
    exo.downloading = {"mlx-community/Llama-3.2-3B-Instruct-4bit": 43.0}
    async with Router(config) as router:
        result = await router.chat(ASK)
    assert outcomes(result.attempts) == [("exo", "busy"), ("openrouter", "ok")]
    assert result.attempts[0].detail == "downloading Llama-3.2-3B 43%"
    assert exo.chat_requests == []


async def test_loading_exo_is_busy(make_config, exo, openrouter):
    config, _ = make_config()
    exo.ready = set()
    exo.loading = {"mlx-community/Llama-3.2-3B-Instruct-4bit": (12, 28)}
    async with Router(config) as router:
        result = await router.chat(ASK)
    assert result.attempts[0].outcome == "busy"
    assert "12/28 layers" in result.attempts[0].detail


async def test_cloud_only_model_skips_exo_without_contacting_it(make_config, exo, openrouter):
    config, _ = make_config()
    async with Router(config) as router:
        result = await router.chat({**ASK, "model": "anthropic/claude-sonnet-4"})
    assert result.provider_used == "openrouter"
    assert result.attempts[0].outcome == "model-unavailable"
    assert "cloud-only" in result.attempts[0].detail
    assert exo.chat_requests == []
    assert openrouter.chat_requests[0].body["model"] == "anthropic/claude-sonnet-4"


async def test_alias_uses_each_providers_own_id(make_config, exo, openrouter, hf):
    config, _ = make_config()
    exo.stop()
    openrouter.fault, openrouter.fault_status = "status", 502
    async with Router(config) as router:
        await router.chat(ASK)
    assert openrouter.chat_requests[0].body["model"] == "meta-llama/llama-3.2-3b-instruct"
    assert hf.chat_requests[0].body["model"] == "meta-llama/Llama-3.2-3B-Instruct"


async def test_legacy_exo_gets_only_ids_its_model_list_shows(legacy_exo: FakeProvider, openrouter, hf,
                                                             tmp_path):
    from router.config import parse_config
    from tests.conftest import config_text
    legacy_exo.models = ["llama-3.2-3b"]
    config = parse_config(config_text([legacy_exo.origin], openrouter.base_url, hf.base_url), "t")
    async with Router(config) as router:
        result = await router.chat(ASK)
        other = await router.chat({**ASK, "model": "openai/gpt-4o"})  # legacy would swap it silently
    assert result.provider_used == "exo" and result.model == "llama-3.2-3b"
    assert result.usage_estimated  # legacy streams carry no usage
    assert [r.body["model"] for r in legacy_exo.chat_requests] == ["llama-3.2-3b"]
    assert other.provider_used == "openrouter"


async def test_second_exo_node_is_used_when_the_first_is_down(exo, openrouter, hf):
    from router.config import parse_config
    from tests.conftest import config_text, unused_port
    dead = f"http://127.0.0.1:{unused_port()}"
    config = parse_config(config_text([dead, exo.origin], openrouter.base_url, hf.base_url), "t")
    async with Router(config) as router:
        result = await router.chat(ASK)
    assert result.provider_used == "exo" and len(exo.chat_requests) == 1


async def test_fail_back_within_one_probe_interval(make_config, exo, openrouter):
    config, _ = make_config()
    events = []
    exo.stop()
    async with Router(config, timing=Timing(exo_probe_interval_s=0.1)) as router:
        router.subscribe(events.append)
        router.start_probes()
        first = await router.chat(ASK)
        assert first.provider_used == "openrouter"
        exo.start()
        import asyncio
        for _ in range(30):
            await asyncio.sleep(0.05)
            if any(isinstance(e, HealthChanged) and e.recovered for e in events):
                break
        back = await router.chat(ASK)
    assert back.provider_used == "exo"
    recovered = [e for e in events if isinstance(e, HealthChanged) and e.recovered]
    assert recovered and recovered[0].provider == "exo"


async def test_paid_failover_needs_consent(make_config, exo, openrouter, hf):
    config, _ = make_config(extra="allow_paid_failover = false")
    exo.stop()
    async with Router(config) as router:
        result = await router.chat(ASK)
    assert outcomes(result.attempts) == [("exo", "refused"), ("openrouter", "not-allowed"),
                                         ("huggingface", "ok")]
    assert openrouter.chat_requests == []


async def test_client_cancel_closes_upstream(make_config, exo):
    import asyncio
    config, _ = make_config()
    exo.chunk_delay_s = 0.05
    finished = []
    async with Router(config) as router:
        router.subscribe(lambda e: finished.append(e) if type(e).__name__ == "RequestFinished" else None)
        async with router.stream(ASK) as stream:
            async for chunk in stream:
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    break
        for _ in range(40):
            if exo.cancelled_streams:
                break
            await asyncio.sleep(0.05)
    assert exo.cancelled_streams == 1
    assert finished and finished[0].attempts[-1].outcome == Outcome.CANCELLED
    assert finished[0].attempts[-1].usage["completion_tokens"] >= 1
