"""A misbehaving provider cannot hurt the router: bounded memory, deadlines for the whole answer,
malformed chunks classified, exo's overflow waiting for exo, keys never echoed.

Through real HTTP to the fake providers (tests/fakes/hostile.py holds the hostile answers).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from router import NoProviderAvailable, Outcome, Router, StreamBroken
from router.events import RequestFinished
from router.ledger.ledger import Ledger
from router.providers.openai_compat import error_message
from tests.conftest import OR_KEY, config_text, subprocess_env

pytestmark = pytest.mark.usefixtures("keys_in_env")

ASK = {"model": "llama-3.2-3b", "messages": [{"role": "user", "content": "hi there"}]}
MiB = 1 << 20


def outcomes(attempts) -> list[tuple[str, str]]:
    return [(a.provider, str(a.outcome)) for a in attempts]


async def collect(router: Router, request=ASK) -> tuple[str, object]:
    text = []
    async with router.stream(request) as stream:
        async for chunk in stream:
            for choice in chunk["choices"]:
                text.append(choice["delta"].get("content") or "")
    return "".join(text), stream.result


def limits(line: int = 2 * MiB, response: int = 8 * MiB, inflated: int = 8 * MiB) -> str:
    return (f"max_line_bytes = {line}\nmax_response_bytes = {response}\n"
            f"max_decompressed_bytes = {inflated}\n")


# -- finding 1: memory is not the upstream's to take ---------------------------------------------
@pytest.mark.parametrize(("fault", "limit_key"), [
    ("gzip_bomb_json", "max_decompressed_bytes"),
    ("huge_json", "max_response_bytes"),
    ("gzip_bomb_sse", "max_line_bytes"),
    ("huge_line", "max_line_bytes"),
])
async def test_a_bomb_before_the_first_token_fails_over(make_config, exo, openrouter, fault, limit_key):
    config, _ = make_config(exo_extra=limits(), first_token_s=20)
    exo.fault, exo.fault_after_tokens = fault, 0
    async with Router(config) as router:
        result = await router.chat(ASK)
    assert result.provider_used == "openrouter"
    (exo_attempt, _) = result.attempts
    assert (exo_attempt.provider, exo_attempt.outcome) == ("exo", Outcome.BAD_RESPONSE)
    assert limit_key in exo_attempt.detail
    if fault.startswith("huge"):  # not compressed: what left the fake is what we had to read
        assert exo.sent_bytes < 8 * MiB + 16 * MiB  # the limit, plus the sockets' buffers


@pytest.mark.parametrize("fault", ["gzip_bomb_sse", "huge_line"])
async def test_a_huge_line_after_the_first_token_ends_the_stream_with_an_error(make_config, exo, fault):
    config, _ = make_config(exo_extra=limits(), first_token_s=20, idle_s=20)
    exo.fault = fault
    async with Router(config) as router:
        with pytest.raises(StreamBroken) as broken:
            await collect(router)
    last = broken.value.attempts[-1]
    assert (last.provider, last.outcome) == ("exo", Outcome.BAD_RESPONSE)
    assert "max_line_bytes" in last.detail


# `exo-bridge ask --json`, then the process's own peak RSS (VmHWM: of this program only, unlike
# ru_maxrss, which counts the parent's pages a child had before it started Python).
ASK_THEN_PEAK = """
import sys
from router.cli.main import main
code = main(sys.argv[1:])
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
print("peak-kib", hwm.split()[1], file=sys.stderr)
sys.exit(code)
"""


def ask_json_peak_rss(config_path: Path) -> tuple[dict, float]:
    """`exo-bridge ask --json` in a child process: its answer, and its peak RSS in MiB."""
    done = subprocess.run([sys.executable, "-c", ASK_THEN_PEAK, "ask", "hi", "--json", "--config",
                           str(config_path)], capture_output=True, text=True, timeout=120,
                          env=subprocess_env(OPENROUTER_API_KEY=OR_KEY))
    peak = next(line for line in done.stderr.splitlines() if line.startswith("peak-kib"))
    return json.loads(done.stdout), int(peak.split()[1]) / 1024


@pytest.mark.parametrize("fault", ["gzip_bomb_json", "gzip_bomb_sse", "huge_json", "huge_line"])
def test_peak_memory_stays_bounded_under_each_bomb_with_the_default_limits(tmp_path, exo, openrouter, hf,
                                                                          fault):
    exo.fault, exo.fault_after_tokens = fault, 0
    exo.hostile_bytes = (300 if fault == "huge_json" else 50 if fault == "huge_line" else 1024) * MiB
    path = tmp_path / "config.toml"
    path.write_text(config_text([exo.origin], openrouter.base_url, hf.base_url, first_token_s=30))
    answer, peak = ask_json_peak_rss(path)
    assert answer["provider_used"] == "openrouter"
    assert answer["attempts"][0]["outcome"] == "bad-response"
    assert peak < 160, f"peak RSS {peak:.0f} MiB"  # ~45 MiB at rest; the limits add ~40


# -- finding 2: deadlines that hold for the whole answer ----------------------------------------
async def test_keep_alive_comments_do_not_reset_the_idle_deadline(make_config, exo):
    config, _ = make_config(idle_s=1.0)
    exo.fault, exo.keep_alive_s = "endless_keepalive", 0.1
    started = time.monotonic()
    async with Router(config) as router:
        with pytest.raises(StreamBroken) as broken:
            await collect(router)
    assert time.monotonic() - started < 4
    last = broken.value.attempts[-1]
    assert (last.provider, last.outcome) == ("exo", Outcome.STREAM_CUT)
    assert "idle_timeout_s" in last.detail and "keep-alive" in last.detail


async def test_a_long_data_line_arriving_slowly_is_data_not_idleness(make_config, exo):
    config, _ = make_config(idle_s=1.0)
    exo.fault, exo.keep_alive_s = "slow_line", 0.3  # the line takes 2.4 s, no piece 1 s apart
    async with Router(config) as router:
        text, result = await collect(router)
    assert text.endswith("x" * 8000) and result.provider_used == "exo"


async def test_endless_valid_tokens_end_at_the_total_deadline(make_config, exo):
    config, _ = make_config(exo_extra="total_timeout_s = 2\n", idle_s=5)
    exo.fault, exo.chunk_delay_s = "endless_tokens", 0.01
    started = time.monotonic()
    async with Router(config) as router:
        with pytest.raises(StreamBroken) as broken:
            await collect(router)
    assert 1.9 < time.monotonic() - started < 5
    assert "total_timeout_s" in broken.value.attempts[-1].detail


async def test_the_total_deadline_holds_for_a_non_streamed_caller_too(make_config, exo, openrouter):
    """Cut at its total deadline; the caller has seen nothing yet, so it fails over (issue 14)."""
    config, _ = make_config(exo_extra="total_timeout_s = 1.5\n", idle_s=5)
    exo.fault, exo.chunk_delay_s = "endless_tokens", 0.01
    started = time.monotonic()
    async with Router(config) as router:
        result = await router.chat(ASK)
    assert time.monotonic() - started < 4
    assert outcomes(result.attempts)[0] == ("exo", "stream-cut")
    assert "total_timeout_s" in result.attempts[0].detail and result.provider_used == "openrouter"


# -- finding 3: every malformed chunk is a classified bad-response -------------------------------
# (Absurd usage numbers are not a malformed chunk: they are replaced and flagged usage-invalid,
# tests/test_ledger_hostile.py.)
MALFORMED = ["malformed_delta", "malformed_index", "malformed_content", "malformed_tool_call",
             "deep_chunk"]


@pytest.mark.parametrize("fault", MALFORMED)
async def test_a_malformed_chunk_before_the_first_token_fails_over_and_is_recorded(
        make_config, tmp_path, exo, openrouter, hf, fault):
    config, _ = make_config()
    exo.stop()
    openrouter.fault, openrouter.fault_after_tokens = fault, 0
    ledger = Ledger.in_dir(tmp_path / "ledger")
    try:
        async with Router(config, ledger=ledger) as router:
            result = await router.chat(ASK)
        assert result.provider_used == "huggingface"
        assert outcomes(result.attempts) == [("exo", "refused"), ("openrouter", "bad-response"),
                                             ("huggingface", "ok")]
        ledger.flush()
        conn = sqlite3.connect(ledger.path)
        recorded = conn.execute("SELECT provider, outcome, called FROM attempts ORDER BY id").fetchall()
        conn.close()
        assert ("openrouter", "bad-response", 1) in recorded
    finally:
        ledger.close()


@pytest.mark.parametrize("fault", MALFORMED)
async def test_a_malformed_chunk_after_the_first_token_ends_with_an_error(make_config, exo, openrouter,
                                                                         fault):
    config, _ = make_config()
    exo.stop()
    openrouter.fault, openrouter.fault_after_tokens = fault, 2
    finished: list[RequestFinished] = []
    async with Router(config) as router:
        router.subscribe(lambda e: finished.append(e) if isinstance(e, RequestFinished) else None)
        with pytest.raises(StreamBroken):
            await collect(router)
    (event,) = finished
    assert outcomes(event.attempts)[-1] == ("openrouter", "bad-response")
    assert event.attempts[-1].usage is not None  # the paid call keeps what it counted


# -- finding 4: exo's overflow waits for exo, never for our pool ---------------------------------
async def test_260_concurrent_slow_requests_are_all_served_by_exo(make_config, exo, openrouter):
    """Each answer takes longer than the first-token deadline: a request that had to wait for
    one of our own connections would time out and go to the paid provider."""
    config, _ = make_config(first_token_s=3, idle_s=5)
    exo.chunk_delay_s = 0.6  # ~4 s for the whole answer, the first token at once
    async with Router(config) as router:
        results = await asyncio.gather(*(router.chat(ASK) for _ in range(270)),
                                       return_exceptions=True)
    served = [r.provider_used if not isinstance(r, BaseException) else type(r).__name__ for r in results]
    assert served.count("exo") == 270, {p: served.count(p) for p in set(served)}
    assert not openrouter.chat_requests


async def test_past_exo_max_connections_requests_wait_for_exo_within_the_first_token_deadline(
        make_config, exo, openrouter):
    config, _ = make_config(exo_extra="max_connections = 2\n", first_token_s=5)
    exo.chunk_delay_s = 0.05  # ~0.35 s an answer
    async with Router(config) as router:
        results = await asyncio.gather(*(router.chat(ASK) for _ in range(8)))
    assert [r.provider_used for r in results] == ["exo"] * 8
    assert not openrouter.chat_requests


async def test_a_wait_longer_than_the_first_token_deadline_times_out_without_a_call(
        make_config, exo, openrouter):
    config, _ = make_config(exo_extra="max_connections = 1\n", first_token_s=0.5, idle_s=5)
    exo.chunk_delay_s = 0.3  # ~2 s an answer
    async with Router(config) as router:
        first, second = await asyncio.gather(router.chat(ASK), router.chat(ASK))
        assert router.health["exo"].breaker == "closed"  # exo is answering: no breaker for our queue
    assert first.provider_used == "exo" and second.provider_used == "openrouter"
    waited = second.attempts[0]
    assert (waited.outcome, waited.called) == (Outcome.TIMEOUT, False)
    assert "max_connections" in waited.detail
    assert len(exo.chat_requests) == 1


async def test_a_full_queue_is_busy_and_skipped_at_once(make_config, exo, openrouter):
    config, _ = make_config(exo_extra="max_connections = 1\nmax_queued = 1\n", first_token_s=5)
    exo.chunk_delay_s = 0.1
    async with Router(config) as router:
        results = await asyncio.gather(*(router.chat(ASK) for _ in range(3)))
    served = sorted(r.provider_used for r in results)
    assert served == ["exo", "exo", "openrouter"]
    busy = next(r for r in results if r.provider_used == "openrouter").attempts[0]
    assert (busy.outcome, busy.called) == (Outcome.BUSY, False)


# -- finding 7: keys are never echoed ----------------------------------------------------------
@pytest.mark.parametrize("status", [401, 503])
async def test_an_upstream_error_quoting_our_key_is_redacted(make_config, exo, openrouter, hf, status,
                                                             caplog):
    config, _ = make_config()
    exo.stop()
    hf.stop()
    openrouter.fault, openrouter.fault_status = "echo_key", status
    async with Router(config) as router:
        with pytest.raises(NoProviderAvailable) as failed:
            await router.chat(ASK)
    texts = [str(failed.value), *(a.detail for a in failed.value.attempts), caplog.text]
    assert "Authorization" in texts[0]  # the message is kept, the key is not
    assert all(OR_KEY not in text for text in texts)


async def test_a_mid_stream_error_quoting_our_key_is_redacted(make_config, exo, openrouter):
    config, _ = make_config()
    exo.stop()
    openrouter.fault, openrouter.fault_after_tokens = "echo_key_mid_stream", 2
    async with Router(config) as router:
        with pytest.raises(StreamBroken) as broken:
            await collect(router)
    assert "Authorization" in str(broken.value) and OR_KEY not in str(broken.value)


def test_key_shaped_strings_are_redacted_from_any_provider_text():
    body = json.dumps({"error": {"message": "bad key sk-or-v1-" + "ab12" * 16 + " / hf_" + "x" * 30
                                 + " / Bearer abc.def-ghi"}}).encode()
    text = error_message(body)
    assert "ab12ab12" not in text and "xxxxxxxx" not in text and "abc.def" not in text
    assert text.startswith("bad key")


async def test_exo_probe_reads_are_bounded_too(make_config, exo):
    """The probe client reads provider JSON with the same limits (here: a huge model list)."""
    config, _ = make_config(exo_extra=limits(response=MiB, inflated=MiB))
    exo.models = [f"model-{i:07d}-" + "x" * 100 for i in range(20_000)]  # ~2.5 MB of JSON
    async with Router(config) as router:
        snapshot = await router.probe(config.provider("exo"))
    assert snapshot.state == "down" and "max_" in snapshot.detail

