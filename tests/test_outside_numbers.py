"""Every number from outside is checked where it enters (router/numbers.py): ``Infinity``,
``1e400``, a 400-digit integer — from exo's state (node memory, layers, a download's bytes and
speed, a model's size) or OpenRouter's key call (its limit, its usage) — is a field we do not
know, never an OverflowError: chats are served, ``status`` and ``keys test`` exit 0 and show the
rest, and the background probes go on."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router import Router, jsonio, parse_config
from router.cli.main import main
from router.money.prices import per_million
from router.money.usage_guard import cost_usd, price_per_token, token_count
from router.numbers import MAX_TEXT_CHARS, number, whole
from router.providers.exo_state import MAX_BYTES, parse_catalogue, parse_cluster, readiness
from router.providers.openai_compat import retry_after_seconds
from router.providers.openrouter_account import limit_wait, read_key, reset_seconds
from tests.conftest import OR_KEY, config_text, until
from tests.fakes.exo_cluster import LLAMA, QWEN
from tests.fakes.provider import FakeProvider

HOSTILE_TEXT = ["Infinity", "-Infinity", "1e400", "-1e400", "9" * 400, "-" + "9" * 400, "NaN"]
_MARK = "\u0000hostile\u0000"


def every_number(text: str, keys: frozenset[str] | None = None) -> Callable[[Any], bytes]:
    """A tamper (tests/fakes/provider.py) that writes ``text`` for every number in an answer
    (only under ``keys``, when given): what a hostile or broken server sends on the wire."""
    def mark(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: mark(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [mark(v, key) for v in value]
        if isinstance(value, int | float) and not isinstance(value, bool) \
                and (keys is None or key in keys):
            return _MARK
        return value

    def tamper(answer: Any) -> bytes:
        return json.dumps(mark(answer)).replace(json.dumps(_MARK), text).encode()
    return tamper


# -- the one validator ----------------------------------------------------------------------
HUGE_INTS = st.integers(min_value=-(10 ** 500), max_value=10 ** 500)
ANY_NUMBERISH = (st.none() | st.booleans() | HUGE_INTS | st.integers() | st.floats()
                 | st.text(max_size=60) | st.sampled_from(HOSTILE_TEXT)
                 | st.from_regex(r"-?[0-9]{1,5000}(\.[0-9]{0,5})?(e-?[0-9]{1,4})?", fullmatch=True)
                 | st.lists(st.integers(), max_size=2) | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=500, deadline=None)
@given(ANY_NUMBERISH, st.floats(-1e20, 1e20) | st.just(-math.inf),
       st.floats(0, 1e20) | st.just(math.inf), st.booleans())
def test_a_number_from_outside_is_finite_and_in_range_or_none(value, low, span, text):
    found = number(value, low, low + span, text=text)
    assert found is None or (isinstance(found, float) and math.isfinite(found)
                             and low <= found <= low + span)
    if isinstance(value, str) and len(value.strip()) > MAX_TEXT_CHARS:
        assert found is None  # long text is never parsed


@settings(max_examples=500, deadline=None)
@given(ANY_NUMBERISH, st.integers(-(10 ** 20), 10 ** 20), st.integers(0, 10 ** 20), st.booleans(),
       st.booleans())
def test_a_whole_number_from_outside_is_in_range_or_none(value, low, span, text, fraction):
    found = whole(value, low, low + span, text=text, fraction=fraction)
    assert found is None or (type(found) is int and low <= found <= low + span)


@settings(max_examples=300, deadline=None)
@given(ANY_NUMBERISH)
def test_usage_prices_and_waits_from_outside_never_raise(value):
    """The checks that were there before (issue 12's usage, prices, a limit's wait) now all go
    through router.numbers: a 400-digit integer no longer raises OverflowError in them."""
    assert token_count(value) is None or 0 <= token_count(value) <= 10_000_000
    assert cost_usd(value) is None or 0 <= cost_usd(value) <= 10_000  # type: ignore[operator]
    assert price_per_token(value) is None or 0 <= price_per_token(value) <= 0.01  # type: ignore[operator]
    assert per_million(value) is None or 0 <= per_million(value) <= 0.01  # type: ignore[operator]
    header = {"retry-after": str(value), "x-ratelimit-reset": str(value)}
    wait = retry_after_seconds(header)
    assert wait is None or 0 <= wait <= 7 * 86400
    assert math.isfinite(reset_seconds(header))


def test_huge_integers_read_as_floats_whichever_parser_reads_them():
    """orjson reads an integer beyond 64 bits as a float; the standard library (the fallback,
    for a document with ``Infinity`` in it) now does too, and no digit count is refused."""
    assert jsonio.loads("9" * 400) == math.inf
    assert jsonio.loads(f"[Infinity, {'9' * 400}, {'9' * 5000}, 18446744073709551616]") \
        == [math.inf, math.inf, math.inf, 2.0 ** 64]
    assert jsonio.loads("[NaN, 18446744073709551615, -9223372036854775808]")[1:] \
        == [18446744073709551615, -9223372036854775808]


# -- exo's state ----------------------------------------------------------------------------
NUMERIC = st.sampled_from([math.inf, -math.inf, math.nan, 10 ** 400, -(10 ** 400), 1e308, -1, 0.5,
                           2 ** 64, 12])
_FIELDS = st.sampled_from(["inBytes", "layersLoaded", "totalLayers", "total", "downloaded",
                           "speed", "etaMs", "storage_size_megabytes"])


def _state(number_value: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    memory = {"inBytes": number_value}
    progress = {"total": memory, "downloaded": memory, "speed": number_value, "etaMs": number_value}
    parts = {
        "nodeMemory": {"n1": {"ramTotal": memory, "ramAvailable": memory}},
        "instances": {"i": {"MlxRingInstance": {"instanceId": "i", "shardAssignments": {
            "modelId": QWEN, "runnerToShard": {"r": {}}, "nodeToRunner": {"n1": "r"}}}}},
        "runners": {"r": {"RunnerLoading": {"layersLoaded": number_value,
                                            "totalLayers": number_value}}},
        "downloads": {"n1": [{"DownloadOngoing": {"nodeId": "n1", "shardMetadata": {
            "modelId": LLAMA}, "downloadProgress": progress}},
            {"DownloadCompleted": {"nodeId": "n1", "shardMetadata": {"modelId": QWEN},
                                   "total": memory}}]}}
    listing = {"data": [{"id": QWEN, "storage_size_megabytes": number_value}]}
    return parts, listing


@settings(max_examples=200, deadline=None)
@given(NUMERIC)
def test_any_number_in_exos_state_is_read_or_unknown(value):
    parts, listing = _state(value)
    cluster = parse_cluster(parts, parse_catalogue(listing))
    ready, busy, progress = readiness(cluster)
    [node] = cluster.nodes
    assert 0 <= node.ram_total <= MAX_BYTES and 0 <= node.ram_available <= MAX_BYTES
    [runner] = cluster.instances[0].runners
    assert 0 <= runner.layers_loaded <= 100_000 and 0 <= runner.total_layers <= 100_000
    for download in cluster.downloads:
        assert math.isfinite(download.speed) and 0 <= download.total_bytes <= MAX_BYTES
        assert download.eta_s is None or math.isfinite(download.eta_s)
        assert 0 <= download.percent <= 100
    assert 0 <= cluster.catalogue[QWEN].size_bytes <= MAX_BYTES
    assert progress is None or 0 <= progress <= 100
    assert QWEN in busy and not ready


def test_exo_state_keeps_what_is_sane():
    parts, listing = _state(12)
    cluster = parse_cluster(parts, parse_catalogue(listing))
    assert cluster.nodes[0].ram_total == 12 and cluster.instances[0].runners[0].layers_loaded == 12
    assert cluster.catalogue[QWEN].size_bytes == 12 * 1024 * 1024


# -- end to end: exo ------------------------------------------------------------------------
@pytest.fixture
def cfg(exo_cluster: FakeProvider, openrouter: FakeProvider, hf: FakeProvider, tmp_path,
        keys_in_env) -> str:
    path = tmp_path / "config.toml"
    path.write_text("[health]\nexo_probe_interval_s = 0.05\n\n" + config_text(
        [exo_cluster.origin], openrouter.base_url, hf.base_url))
    return str(path)


def _hostile_exo(exo_cluster: FakeProvider, text: str, scenario: str) -> None:
    cluster = exo_cluster.cluster
    assert cluster is not None
    mini = next(n for n in cluster.nodes.values() if n.name == "Mac mini")
    if scenario == "loading":  # its files are here: it loads, slowly (layersLoaded/totalLayers)
        mini.files.add(QWEN)
        cluster.layers_per_s = 0.001
    else:  # it downloads, slowly (total, downloaded, speed, etaMs)
        cluster.download_speed = 1
    cluster.place({"model_id": QWEN})
    for _ in range(4):
        cluster.step(0.01)
    for path in ("/state/nodeMemory", "/state/runners", "/state/downloads", "/v1/models"):
        exo_cluster.tamper[path] = every_number(text)


@pytest.mark.parametrize("text", ["Infinity", "1e400", "9" * 400])
@pytest.mark.parametrize("scenario", ["loading", "downloading"])
async def test_exos_hostile_numbers_leave_chats_served_and_probing_on(exo_cluster, cfg, text,
                                                                      scenario):
    _hostile_exo(exo_cluster, text, scenario)
    config = parse_config(Path(cfg).read_text(), cfg)
    async with Router(config) as router:
        result = await router.chat({"model": LLAMA, "messages": [{"role": "user", "content": "hi"}]})
        assert result.provider_used == "exo"  # its readiness was read; the bad fields unknown
        router.start_probes()
        seen = exo_cluster.hits["/state/nodeMemory"]
        await until(lambda: exo_cluster.hits["/state/nodeMemory"] >= seen + 3)  # still probing
        snapshot = router.health["exo"].snapshot
        assert snapshot is not None and snapshot.ready == {LLAMA}
        assert snapshot.cluster is not None
        assert [n.name for n in snapshot.cluster.nodes] == ["Mac mini", "MacBook Pro"]
        assert all(n.ram_total == 0 for n in snapshot.cluster.nodes)  # unknown, not a crash


@pytest.mark.parametrize("text", ["Infinity", "1e400", "9" * 400])
def test_status_shows_a_cluster_with_hostile_numbers(capsys, exo_cluster, cfg, text):
    _hostile_exo(exo_cluster, text, "downloading")
    assert main(["status", "--config", cfg]) == 0
    out = capsys.readouterr().out
    assert "Mac mini · RAM unknown · Llama 3.2 3B (ready)" in out
    assert main(["status", "--json", "--config", cfg]) == 0
    seen = json.loads(capsys.readouterr().out)
    assert [n["name"] for n in seen["cluster"]["nodes"]] == ["Mac mini", "MacBook Pro"]
    [download] = seen["cluster"]["downloads"]
    assert download["model"] == QWEN and download["speed_bytes_per_s"] == 0


# -- end to end: OpenRouter's key call ------------------------------------------------------
_KEY_FIGURES = frozenset({"limit", "limit_remaining", "usage", "usage_daily", "usage_weekly",
                          "usage_monthly", "used", "remaining", "expires_at"})


@pytest.mark.parametrize("text", ["Infinity", "1e400", "9" * 400, "-" + "9" * 400])
def test_openrouters_hostile_key_figures_leave_status_and_keys_test_working(
        capsys, make_config, keys_in_env, openrouter, text):
    openrouter.tamper["/key"] = every_number(text, _KEY_FIGURES)
    _, path = make_config()
    assert main(["keys", "test", "openrouter", "--config", str(path)]) == 0
    assert "openrouter: healthy" in capsys.readouterr().out
    assert main(["status", "--json", "--config", str(path)]) == 0
    [status] = [p for p in json.loads(capsys.readouterr().out)["providers"]
                if p["id"] == "openrouter"]
    assert status["state"] == "healthy"


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(_KEY_FIGURES - {"used", "remaining"})), NUMERIC),
       NUMERIC, st.sampled_from(["daily", "weekly", None]))
def test_any_key_figure_reads_to_a_sane_report(fields, free, period):
    report = read_key({"data": {**fields, "limit_reset": period,
                                "free_model_daily_requests": {"used": free, "limit": free}}},
                      datetime.now(UTC))
    assert report is not None
    for value in (report.limit_usd, report.remaining_usd, report.usage_usd):
        assert value is None or (math.isfinite(value) and abs(value) <= 1e7)
    json.dumps(report.as_json(), allow_nan=False)


def test_a_limit_errors_hostile_reset_never_raises():
    from router.errors import LimitCause

    for text in ("9" * 400, "9" * 5000, "1e400", "Infinity"):
        headers = {"x-ratelimit-reset": text, "retry-after": text}
        for cause in LimitCause:
            wait = limit_wait(cause, headers, {"resets_at": 10 ** 400, "limit_reset": "daily"})
            assert wait is None or (math.isfinite(wait) and wait >= 0)


async def test_one_bad_key_figure_keeps_the_rest(openrouter, make_config, keys_in_env):
    openrouter.account.usage_daily_usd = 1.25
    openrouter.tamper["/key"] = every_number("9" * 400, frozenset({"limit"}))
    config, _ = make_config()
    async with Router(config) as router:
        snapshot = await router.probe(config.provider("openrouter"))
    assert snapshot.account is not None
    assert snapshot.account.limit_usd is None and snapshot.account.usage_daily_usd == 1.25
    assert OR_KEY not in repr(snapshot)


async def test_a_probe_that_raises_marks_its_provider_down_and_probing_goes_on(cfg, caplog):
    """Whatever an adapter's probe raises (a defect, a value no validator foresaw) is that
    provider's failed check, logged; the background probes of every provider go on."""
    config = parse_config(Path(cfg).read_text(), cfg)
    async with Router(config) as router:
        adapter = router.prober.adapters["exo"]
        real, calls = adapter.probe, []

        async def flaky(*args: Any) -> Any:
            calls.append(1)
            if len(calls) <= 2:
                raise OverflowError("int too large to convert to float")
            return await real(*args)

        adapter.probe = flaky  # type: ignore[method-assign]
        first = await router.probe(config.provider("exo"))
        assert first.state == "down" and "OverflowError" in first.detail
        router.start_probes()
        await until(lambda: len(calls) >= 4)
        await until(lambda: router.health["exo"].snapshot is not None
                    and router.health["exo"].snapshot.state == "healthy")
    assert "probing exo failed" in caplog.text


@pytest.mark.parametrize("text", ["1e400", "9" * 400, "-" + "9" * 400])
async def test_an_sdk_client_is_answered_by_exo_whose_numbers_are_hostile(client, exo, text):
    """Through the endpoint, with the official openai SDK: exo loading one model, downloading
    another, every number in its state and model list hostile — the ready model still answers."""
    exo.loading = {"mlx-community/Qwen3-8B-4bit": (3, 36)}
    exo.downloading = {"mlx-community/Llama-3.3-70B-Instruct-4bit": 40.0}
    for path in ("/state/nodeMemory", "/state/runners", "/state/downloads", "/v1/models"):
        exo.tamper[path] = every_number(text)
    raw = await client.chat.completions.with_raw_response.create(
        model=LLAMA, messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-exo-bridge-provider"] == "exo"
    assert raw.parse().choices[0].message.content


@settings(max_examples=200, deadline=None)
@given(st.lists(NUMERIC | st.text(max_size=3) | st.none(), min_size=22, max_size=23))
def test_a_journal_line_with_hostile_numbers_is_refused_with_a_reason(values):
    """A damaged journal (a 400-digit timestamp, an infinite cost) is a line set aside with why,
    never an OverflowError while the ledger opens."""
    from router.ledger.rows import checked_values

    checked = checked_values(values)
    assert isinstance(checked, str) and len(checked) < 200
