"""What to do when nobody answered (router/setup_guide.py), finding exo (router/exo/discover.py), and
`exo-bridge ask` with nothing usable."""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime

import pytest

from router import (
    Attempt,
    HealthState,
    LimitCause,
    NoProviderAvailable,
    Outcome,
    ProviderStatus,
    Role,
    Router,
    Situation,
    guidance,
    needs_setup,
    parse_config,
    router_guidance,
)
from router.cli.main import main
from router.config import DEFAULT_CONFIG_TOML
from router.exo.discover import configured, discover, same_address
from tests.conftest import OR_KEY, config_text, unused_port

CONFIG = parse_config(DEFAULT_CONFIG_TOML, "/home/me/.config/exo-bridge/config.toml")
PATH = CONFIG.source


def advise(attempts, **kw):
    situation = Situation(CONFIG, kw.pop("model", "llama-3.2-3b"), **kw)
    return {a.provider: a for a in guidance(situation, attempts)}


def skipped(provider: str, outcome: Outcome, detail: str = "") -> Attempt:
    return Attempt(provider, outcome, detail, called=False)


# -- guidance, case by case ---------------------------------------------------------------
def test_fresh_install_exo_down_and_no_keys():
    found = advise([Attempt("exo", Outcome.REFUSED, "connection refused"),
                    skipped("openrouter", Outcome.NO_KEY), skipped("huggingface", Outcome.NO_KEY)])
    assert list(found) == ["exo", "openrouter", "huggingface"]
    exo = found["exo"]
    assert exo.commands == ("exo",) and "run `exo`" in exo.text
    assert "http://localhost:52415" in exo.text and ":8000" in exo.text
    assert "base_urls" in exo.text and PATH in exo.text
    assert found["openrouter"].commands == ("exo-bridge keys set openrouter",)
    assert "$OPENROUTER_API_KEY" in found["openrouter"].text
    assert found["huggingface"].commands == ("exo-bridge keys set huggingface",)


@pytest.mark.parametrize("outcome", [Outcome.TIMEOUT, Outcome.CIRCUIT_OPEN])
def test_exo_unreachable_in_any_way_says_how_to_start_it(outcome):
    assert advise([Attempt("exo", outcome)])["exo"].commands == ("exo",)


def test_exo_up_without_the_model_says_warm_it():
    exo = advise([skipped("exo", Outcome.MODEL_UNAVAILABLE, "not loaded")])["exo"]
    assert exo.commands == ("exo-bridge exo warm llama-3.2-3b",)
    assert "not loaded" in exo.text and "running" in exo.text


def test_invalid_key_says_test_then_set_again():
    found = advise([Attempt("openrouter", Outcome.INVALID_KEY, "HTTP 401")])
    assert found["openrouter"].commands == ("exo-bridge keys test openrouter",
                                            "exo-bridge keys set openrouter")


def test_paid_failover_off_names_the_config_key_and_the_file():
    config = parse_config("allow_paid_failover = false\n" + DEFAULT_CONFIG_TOML, PATH)
    situation = Situation(config, "llama-3.2-3b", has_key=lambda p: p.id == "openrouter")
    found = guidance(situation, [skipped("openrouter", Outcome.NOT_ALLOWED, "paid provider")])
    assert found[0].commands == (f"allow_paid_failover = true  # in {PATH}",)
    assert "at the top of " + PATH in found[0].text
    keyless = guidance(Situation(config, "llama-3.2-3b"),
                       [skipped("openrouter", Outcome.NOT_ALLOWED, "paid provider")])
    assert keyless[0].commands[-1] == "exo-bridge keys set openrouter"  # both are needed


def test_paused_cloud_failover_says_untick_the_pause():
    found = advise([skipped("openrouter", Outcome.NOT_ALLOWED, "paused")], local_only=True)
    assert "Pause cloud failover" in found["openrouter"].text


def test_budget_used_up_says_when_it_resets():
    resets = datetime(2026, 11, 2, tzinfo=UTC)
    found = advise([skipped("huggingface", Outcome.OVER_BUDGET, "over budget")], resets_at=resets)
    assert "resets at 2026-11-02 00:00 UTC" in found["huggingface"].text
    assert "daily_request_limit" in found["huggingface"].text


def test_free_quota_resets_when_the_account_says():
    ends = datetime(2026, 11, 1, 17, 30, tzinfo=UTC)
    status = ProviderStatus("openrouter", "OpenRouter", Role.CLOUD, HealthState.DEGRADED, "", 0.0,
                            None, True, limit=LimitCause.FREE_QUOTA, limit_ends=ends)
    found = advise([skipped("openrouter", Outcome.OVER_BUDGET)], statuses={"openrouter": status},
                   resets_at=datetime(2026, 11, 2, tzinfo=UTC))
    assert "resets at 2026-11-01 17:30 UTC" in found["openrouter"].text


def test_the_provider_that_answered_and_those_not_tried_get_no_advice():
    found = advise([Attempt("exo", Outcome.REFUSED), Attempt("openrouter", Outcome.OK)])
    assert list(found) == ["exo"]


def test_defaults_point_at_the_file_to_create(tmp_path, monkeypatch):
    target = tmp_path / "cfg" / "config.toml"
    monkeypatch.setenv("EXO_BRIDGE_CONFIG", str(target))
    defaults = parse_config(DEFAULT_CONFIG_TOML, "<defaults>")
    found = guidance(Situation(defaults), [Attempt("exo", Outcome.REFUSED)])
    assert str(target) in found[0].text


async def test_a_real_router_s_attempts_give_the_guidance(make_config, exo, openrouter, hf):
    """The outcomes come from the router itself: exo refused, OpenRouter not allowed (paid
    failover off), Hugging Face without a key."""
    _, path = make_config()
    config = parse_config("allow_paid_failover = false\n" + path.read_text(), str(path))
    exo.stop()
    async with Router(config) as router:
        with pytest.raises(NoProviderAvailable) as caught:
            await router.chat({"messages": [{"role": "user", "content": "hi"}]})
        found = {a.provider: a for a in router_guidance(router, caught.value.attempts)}
    assert [a.outcome for a in caught.value.attempts] == [Outcome.REFUSED, Outcome.NOT_ALLOWED,
                                                         Outcome.NO_KEY]
    assert found["exo"].commands == ("exo",)
    assert found["openrouter"].commands[0] == f"allow_paid_failover = true  # in {path}"
    assert found["huggingface"].commands == ("exo-bridge keys set huggingface",)


# -- when the assistant opens by itself ------------------------------------------------------
def _status(pid: str, role: Role, state: HealthState) -> ProviderStatus:
    return ProviderStatus(pid, pid, role, state, "", 0.0, None, role is Role.CLOUD)


def test_needs_setup_on_a_first_run_or_with_nothing_usable_and_no_key():
    down = _status("exo", Role.LOCAL, HealthState.DOWN)
    up = _status("exo", Role.LOCAL, HealthState.HEALTHY)
    keyless = _status("openrouter", Role.CLOUD, HealthState.NO_KEY)
    keyed_down = _status("openrouter", Role.CLOUD, HealthState.DOWN)
    assert needs_setup(False, [up])  # a fresh install, whatever works
    assert needs_setup(True, [down, keyless])
    assert not needs_setup(True, [up, keyless])
    assert not needs_setup(True, [down, keyed_down])  # a key is stored: not a setup problem
    assert not needs_setup(True, [])


# -- discovery -----------------------------------------------------------------------------
async def test_discovery_finds_current_and_legacy_exo_and_closed_ports(exo, legacy_exo):
    closed = f"http://127.0.0.1:{unused_port()}"
    found = await discover([exo.origin, legacy_exo.origin, closed], timeout_s=2.0)
    current, legacy, nothing = found
    assert (current.url, current.reachable, current.generation) == (exo.origin, True, "current")
    assert set(exo.models) <= set(current.models)
    assert current.loaded == tuple(sorted(exo.ready)) and len(current.loaded) < len(exo.models)
    assert (legacy.reachable, legacy.generation) == (True, "legacy")
    assert set(legacy.models) == set(legacy_exo.models)
    assert (nothing.reachable, nothing.generation) == (False, None)
    assert "refused" in nothing.detail and closed in nothing.summary


async def test_discovery_looks_everywhere_at_once_with_short_timeouts():
    """Two addresses that accept a connection and never answer: both give up within the
    timeout, together (not one after the other)."""
    silent = [socket.socket(), socket.socket()]
    try:
        urls = []
        for s in silent:
            s.bind(("127.0.0.1", 0))
            s.listen(8)
            urls.append(f"http://127.0.0.1:{s.getsockname()[1]}")
        start = time.monotonic()
        found = await discover(urls, timeout_s=0.5)
        elapsed = time.monotonic() - start
    finally:
        for s in silent:
            s.close()
    assert [f.reachable for f in found] == [False, False]
    assert all("0.5 s" in f.detail for f in found)
    assert elapsed < 0.95


async def test_discovery_on_a_router_s_client(exo):
    config = parse_config(config_text([exo.origin], "http://127.0.0.1:9/api/v1",
                                      "http://127.0.0.1:9/v1"), "<test>")
    async with Router(config) as router:
        found = await discover([exo.origin], http=await router.http())
    assert found[0].reachable


def test_localhost_and_127_0_0_1_are_the_same_address():
    assert same_address("http://localhost:52415", "http://127.0.0.1:52415/")
    assert not same_address("http://localhost:52415", "http://localhost:8000")
    assert configured("http://127.0.0.1:8000", ["http://localhost:52415", "http://localhost:8000"])
    assert not configured("http://127.0.0.1:8000", ["http://studio.local:8000"])


# -- exo-bridge ask with nothing usable ------------------------------------------------------
@pytest.fixture
def nothing_usable(tmp_path):
    """exo on a closed port, the cloud at closed ports, no keys anywhere."""
    closed = f"http://127.0.0.1:{unused_port()}"
    path = tmp_path / "config.toml"
    path.write_text(config_text([closed], f"{closed}/api/v1", f"{closed}/v1"))
    return path


def test_ask_with_nothing_usable_prints_guidance_and_exits_3(capsys, nothing_usable):
    code = main(["ask", "hello", "--config", str(nothing_usable)])
    out, err = capsys.readouterr()
    assert code == 3 and out == ""
    assert "no answer" not in err
    paragraphs = [p.strip() for p in err.split("\n\n") if p.strip().startswith(
        ("Exo Local:", "OpenRouter:", "Hugging Face:"))]
    assert len(paragraphs) == 3
    assert "run `exo`" in paragraphs[0] and str(nothing_usable) in paragraphs[0]
    assert "`exo-bridge keys set openrouter`" in paragraphs[1]
    assert "`exo-bridge keys set huggingface`" in paragraphs[2]


def test_ask_json_keeps_its_contract_and_adds_guidance(capsys, nothing_usable):
    code = main(["ask", "hello", "--json", "--config", str(nothing_usable)])
    data = json.loads(capsys.readouterr().out)
    assert code == 3 and data["provider_used"] is None and data["response"] is None
    assert [a["outcome"] for a in data["attempts"]] == ["refused", "no-key", "no-key"]
    assert [g["provider"] for g in data["guidance"]] == ["exo", "openrouter", "huggingface"]
    assert data["guidance"][1]["commands"] == ["exo-bridge keys set openrouter"]


def test_ask_with_exo_up_but_the_model_not_loaded_says_warm(capsys, make_config, exo, openrouter,
                                                            hf):
    exo.ready = set()
    _, path = make_config()
    code = main(["ask", "hello", "--config", str(path)])
    err = capsys.readouterr().err
    assert code == 3 and "`exo-bridge exo warm llama-3.2-3b`" in err
    assert OR_KEY not in err

