"""Ledger vs bill (issue 17): the ledger's cost for the UTC day against the key's usage_daily,
in agreement and drifting; `usage --reconcile`, `usage`, `status`, and once a day in `serve`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from router import BillDrift, Router, usd
from router.cli.main import main
from router.core import Timing
from router.ledger.ledger import Ledger
from tests.conftest import quiet, until
from tests.fakes.provider import FakeProvider

pytestmark = pytest.mark.usefixtures("keys_in_env")


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cfg(make_config, exo: FakeProvider) -> str:
    exo.stop()  # every answer comes from OpenRouter, billed
    return str(make_config()[1])


def ask_three(capsys, cfg: str) -> None:
    for _ in range(3):
        code, _, err = run(capsys, "ask", "hi", "--config", cfg)
        assert code == 0 and "answered by openrouter" in err


def test_reconcile_agrees_when_the_bill_is_what_was_recorded(capsys, cfg, openrouter):
    ask_three(capsys, cfg)
    assert openrouter.account.usage_daily_usd > 0  # the fake billed its own usage.cost
    code, out, _ = run(capsys, "usage", "--reconcile", "--json", "--config", cfg)
    assert code == 0
    [check] = json.loads(out)["reconciliation"]
    assert check["provider"] == "openrouter" and check["day"] == datetime.now(UTC).date().isoformat()
    assert check["recorded_usd"] == pytest.approx(openrouter.account.usage_daily_usd)
    assert check["billed_usd"] == pytest.approx(openrouter.account.usage_daily_usd)
    assert check["drifted"] is False and abs(check["drift_usd"]) < 1e-9


def test_reconcile_flags_a_drift_with_both_figures(capsys, cfg, openrouter, tmp_path):
    ask_three(capsys, cfg)
    recorded = openrouter.account.usage_daily_usd
    openrouter.account.bill_elsewhere(0.5)  # the key spent elsewhere: the bill is higher
    code, out, _ = run(capsys, "usage", "--reconcile", "--config", cfg)
    assert code == 0
    line = next(li for li in out.splitlines() if "DRIFT" in li)
    assert line.split()[:2] == [datetime.now(UTC).date().isoformat(), "openrouter"]
    assert f"recorded {usd(recorded)}, billed {usd(recorded + 0.5)}" in line
    code, out, _ = run(capsys, "usage", "--json", "--config", cfg)  # later, without a key call
    [check] = json.loads(out)["reconciliation"]
    assert check["drifted"] is True
    assert check["billed_usd"] == pytest.approx(recorded + 0.5)
    assert check["recorded_usd"] == pytest.approx(recorded)
    code, out, _ = run(capsys, "usage", "--config", cfg)
    assert "ledger vs bill" in out and "DRIFT" in out


def test_reconcile_says_what_it_could_not_check(capsys, cfg, openrouter, monkeypatch):
    openrouter.stop()
    code, _, err = run(capsys, "usage", "--reconcile", "--config", cfg)
    assert code == 3 and "openrouter: no figure for the day from its key call" in err
    monkeypatch.delenv("OPENROUTER_API_KEY")
    code, _, err = run(capsys, "usage", "--reconcile", "--config", cfg)
    assert code == 0 and "nothing to reconcile" in err


def test_status_shows_the_account_and_the_limit(capsys, cfg, openrouter):
    account = openrouter.account
    account.key_limit_usd, account.key_limit_reset, account.usage_daily_usd = 10.0, "daily", 10.0
    account.free_daily_limit, account.free_used_today = 50, 12
    code, out, _ = run(capsys, "status", "--json", "--config", cfg)
    assert code == 0
    status = {p["id"]: p for p in json.loads(out)["providers"]}["openrouter"]
    assert status["limit"]["cause"] == "key-limit" and status["limit"]["ends_at"].endswith("+00:00")
    got = status["account"]
    assert (got["limit_usd"], got["remaining_usd"], got["limit_reset"]) == (10.0, 0.0, "daily")
    assert got["credit_level"] == "reached" and got["credit_wall"] == "key-limit"
    assert got["free_requests_today"] == {"used": 12, "limit": 50, "remaining": 38}
    assert got["usage_daily_usd"] == 10.0
    code, out, _ = run(capsys, "status", "--config", cfg)
    assert "limit: the key's credit limit is reached — ends " in out
    assert "credit: $0.00 of $10.00 left, resets daily" in out
    assert "free models 12 of 50 used today, 38 left" in out


async def test_serve_reconciles_once_a_day_and_announces_a_drift_once(make_config, exo, openrouter,
                                                                      tmp_path: Path):
    config, _ = make_config()
    exo.stop()
    ledger = Ledger.in_dir(tmp_path / "ledger")
    clock = [1000.0]
    events: list[object] = []
    try:
        async with Router(config, ledger=ledger,
                          timing=Timing(clock=lambda: clock[0], cloud_probe_interval_s=86400)) as router:
            router.subscribe(events.append)
            await router.chat({"model": "llama-3.2-3b", "messages": [{"role": "user", "content": "hi"}]})
            openrouter.account.bill_elsewhere(0.25)
            router.start_probes()  # the key call at start, then the day's check
            await until(lambda: any(isinstance(e, BillDrift) for e in events))
            since = set(router._tasks)
            await router.probe(config.provider("openrouter"))  # later the same day
            await quiet(router, since)
            clock[0] += 86400  # a day on: checked again, announced no more for the same day
            await router.probe(config.provider("openrouter"))
            await quiet(router, since)
            status = {s.id: s for s in router.statuses()}["openrouter"]
    finally:
        ledger.close()
    drifts = [e for e in events if isinstance(e, BillDrift)]
    assert len(drifts) == 1 and drifts[0].billed_usd == pytest.approx(drifts[0].recorded_usd + 0.25)
    lines = (tmp_path / "ledger" / "reconciliations.jsonl").read_text().splitlines()
    assert len(lines) == 2
    assert status.account is not None and status.account.reconciliation is not None
    assert "ledger vs bill" in status.account.summary()
