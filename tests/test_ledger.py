"""Ledger, exact cost accounting, budgets and `exo-bridge usage`, through the fake providers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from router import Router, Timing
from router.cli.main import main
from router.config import parse_config
from router.events import BudgetAlert, CostAnomaly
from router.ledger.ledger import Ledger
from router.ledger.schema import MIGRATIONS
from router.ledger.usage import summary
from tests.conftest import OR_KEY, config_text, subprocess_env, until

pytestmark = pytest.mark.usefixtures("keys_in_env")
ASK = {"model": "llama-3.2-3b", "messages": [{"role": "user", "content": "hi there"}]}


@pytest.fixture
def ledger(tmp_path: Path):
    book = Ledger.in_dir(tmp_path / "data")
    yield book
    book.close()


def rows(ledger: Ledger, where: str = "1") -> list[dict]:
    ledger.flush()
    conn = sqlite3.connect(ledger.path)
    conn.row_factory = sqlite3.Row
    found = [dict(r) for r in conn.execute(f"SELECT * FROM attempts WHERE {where} ORDER BY id")]
    conn.close()
    return found


async def chat(config, ledger=None, request=ASK, stream=False, **kw):
    async with Router(config, ledger=ledger, **kw) as router:
        if not stream:
            return await router.chat(request)
        async with router.stream(request) as s:
            async for _ in s:
                pass
        return s.result


@pytest.mark.parametrize("stream", [False, True])
async def test_exo_is_free_and_openrouter_bills_reported_cost(make_config, ledger, exo, openrouter, stream):
    config, _ = make_config()
    result = await chat(config, ledger, stream=stream)
    assert (result.cost_usd, result.cost_source) == (0.0, "free")
    exo.stop()
    result = await chat(config, ledger, stream=stream)
    assert result.cost_source == "reported"
    expected = result.usage["prompt_tokens"] * 1e-7 + result.usage["completion_tokens"] * 2e-7
    assert result.cost_usd == pytest.approx(expected)
    recorded = rows(ledger, "outcome = 'ok'")
    assert [(r["provider"], r["cost_source"], r["streamed"]) for r in recorded] == [
        ("exo", "free", int(stream)), ("openrouter", "reported", int(stream))]
    assert recorded[1]["cost_usd"] == pytest.approx(expected)
    assert recorded[1]["failed_over"] == 1 and recorded[1]["failovers"] == 1


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("header", "per_m"), [("together", (0.2, 0.6)), (None, (0.3, 0.9))])
async def test_huggingface_cost_from_price_table(make_config, ledger, exo, openrouter, hf, stream,
                                                 header, per_m):
    config, _ = make_config()
    exo.stop(); openrouter.stop()
    hf.inference_provider = header
    result = await chat(config, ledger, stream=stream)
    assert result.provider_used == "huggingface" and result.cost_source == "price-table"
    u = result.usage
    assert result.cost_usd == pytest.approx((u["prompt_tokens"] * per_m[0] + u["completion_tokens"] * per_m[1]) / 1e6)
    assert hf.chat_requests[0].body["stream_options"] == {"include_usage": True}
    assert [r.path for r in hf.requests].count("/v1/models") == 1  # cached


async def test_openai_compatible_prices_from_config_else_estimated(tmp_path, caplog):
    from tests.fakes.provider import FakeProvider
    fake = FakeProvider("openai", models=["local-model"])
    try:
        base = f'[[providers]]\nid = "lm"\nkind = "openai"\nbase_url = "{fake.base_url}"\n'
        priced = parse_config(base + "prompt_price_per_mtok = 1.0\ncompletion_price_per_mtok = 2.0\n", "t")
        result = await chat(priced, request={**ASK, "model": "local-model"})
        assert result.cost_source == "price-table"
        assert result.cost_usd == pytest.approx((result.usage["prompt_tokens"] + 2 * result.usage["completion_tokens"]) / 1e6)
        unpriced = parse_config(base + "paid = true\n", "t")
        result = await chat(unpriced, request={**ASK, "model": "local-model"})
        assert (result.cost_usd, result.cost_source) == (0.0, "estimated")
        assert "no price known" in caplog.text
    finally:
        fake.close()


async def test_missing_usage_is_estimated_from_text(make_config, ledger, exo, openrouter):
    config, _ = make_config()
    exo.stop()
    openrouter.omit_usage = True
    await chat(config, ledger)  # warms the OpenRouter price table
    result = await chat(config, ledger)
    assert result.usage_estimated and result.cost_source == "estimated"
    assert result.usage["completion_tokens"] > 0 and result.cost_usd > 0
    assert "usage-estimated" in rows(ledger, "outcome = 'ok'")[-1]["flags"]


async def test_reported_cost_10x_off_is_flagged_not_trusted_blindly(make_config, ledger, exo, openrouter):
    config, _ = make_config()
    exo.stop()
    events = []
    async with Router(config, ledger=ledger) as router:
        router.subscribe(events.append)
        await router.chat(ASK)  # fetches the price table
        await until(lambda: "openrouter" in router.pricer.tables)
        openrouter.reported_cost = 5.0  # dollars for a few tokens: a wrong unit
        result = await router.chat(ASK)
    assert "cost-anomaly" in result.flags and result.cost_usd == 5.0
    assert any(isinstance(e, CostAnomaly) and e.reported_usd == 5.0 and e.expected_usd < 0.01 for e in events)
    assert "cost-anomaly" in rows(ledger, "outcome = 'ok'")[-1]["flags"]
    day = datetime.now(UTC).date()
    assert {r.provider: r.anomalies for r in summary(ledger, day, day)} == {"exo": 0, "openrouter": 1}


async def test_savings_for_exo_answers(make_config, ledger, exo, openrouter):
    config, _ = make_config()
    async with Router(config, ledger=ledger) as router:
        await until(lambda: "openrouter" in router.pricer.tables)  # it arrives in the background
        result = await router.chat(ASK)
    expected = result.usage["prompt_tokens"] * 1e-7 + result.usage["completion_tokens"] * 2e-7
    assert rows(ledger)[0]["saved_usd"] == pytest.approx(expected)
    day = datetime.now(UTC).date()
    [row] = summary(ledger, day, day)
    assert row.saved_usd == pytest.approx(expected) and row.cost_usd == 0


async def test_budget_reservations_never_overshoot(make_config, exo, openrouter):
    config, _ = make_config(exo_extra="daily_request_limit = 10")
    exo.chunk_delay_s = 0.02  # keep them in flight together
    async with Router(config) as router:
        results = await asyncio.gather(*(router.chat(ASK) for _ in range(100)))
    assert len(exo.chat_requests) == 10
    served = [r.provider_used for r in results]
    assert served.count("exo") == 10 and served.count("openrouter") == 90
    skipped = [r.attempts[0] for r in results if r.provider_used != "exo"]
    assert all(a.outcome == "over-budget" and not a.called for a in skipped)
    assert "resets 00:00 UTC" in skipped[0].detail


async def test_token_budget_uses_worst_case_then_settles(make_config, exo, openrouter):
    config, _ = make_config(exo_extra="daily_token_limit = 100")
    async with Router(config) as router:
        too_big = await router.chat({**ASK, "max_tokens": 500})
        fits = await router.chat({**ASK, "max_tokens": 50})
        again = await router.chat({**ASK, "max_tokens": 50})
        assert router.budget.today("exo").tokens == 2 * fits.usage["total_tokens"]
    assert too_big.attempts[0].outcome == "over-budget"
    assert fits.provider_used == "exo" and again.provider_used == "exo"


async def test_budget_resets_at_utc_midnight(make_config, exo, openrouter):
    config, _ = make_config(exo_extra="daily_request_limit = 1")
    clock = [datetime(2026, 11, 22, 23, 59, 0, tzinfo=UTC)]
    events = []
    async with Router(config, timing=Timing(now=lambda: clock[0])) as router:
        router.subscribe(events.append)
        assert (await router.chat(ASK)).provider_used == "exo"
        blocked = await router.chat(ASK)
        assert blocked.attempts[0].outcome == "over-budget"
        assert "in 0h 01m" in blocked.attempts[0].detail
        status = {s.id: s for s in router.statuses()}["exo"]
        assert status.state == "degraded" and "resets 00:00 UTC" in status.detail
        clock[0] += timedelta(minutes=2)
        assert (await router.chat(ASK)).provider_used == "exo"
    # one alert a day: the first day's (deduplicated), then the new day's own
    assert [e.level for e in events if isinstance(e, BudgetAlert)] == ["exhausted", "exhausted"]


async def test_80_percent_alert(make_config, exo, openrouter):
    config, _ = make_config(exo_extra="daily_request_limit = 5")
    events = []
    async with Router(config) as router:
        router.subscribe(events.append)
        for _ in range(4):
            await router.chat(ASK)
    assert [(e.provider, e.level) for e in events if isinstance(e, BudgetAlert)] == [("exo", "80%")]


async def test_restart_keeps_todays_counts(make_config, tmp_path, exo, openrouter, hf):
    config, _ = make_config(or_extra="daily_cost_limit_usd = 1.0")
    config = parse_config(config_text([exo.origin], openrouter.base_url, hf.base_url,
                                      or_extra="daily_request_limit = 2").replace(
        "daily_request_limit = 1000\n", ""), "t")
    exo.stop()
    first = Ledger.in_dir(tmp_path / "d")
    for _ in range(2):
        assert (await chat(config, first)).provider_used == "openrouter"
    first.close()
    second = Ledger.in_dir(tmp_path / "d")
    try:
        result = await chat(config, second)
    finally:
        second.close()
    assert result.provider_used == "huggingface"
    assert result.attempts[1].outcome == "over-budget"


def test_schema_migration_from_version_1(tmp_path: Path):
    path = tmp_path / "usage.sqlite3"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0][1]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version=1")
    old = [(1763800000.0, "2025-11-22", "r1", "llama", "m", "exo", "refused", 1, 0, 0, 0, 0, 0.0, "free", 1.0, 1),
           (1763800000.0, "2025-11-22", "r1", "llama", "m2", "openrouter", "ok", 1, 0, 10, 5, 15, 0.002, "reported", 300.0, 1)]
    conn.executemany("INSERT INTO attempts (ts, day, request_id, logical_model, model, provider, outcome, called, "
                     "streamed, prompt_tokens, completion_tokens, total_tokens, cost_usd, cost_source, latency_ms, "
                     "failed_over) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", old)
    conn.commit()
    conn.close()
    ledger = Ledger(path)
    try:
        assert ledger.query("PRAGMA user_version")[0][0] == MIGRATIONS[-1][0]
        assert len(ledger.query("SELECT * FROM attempts")) == 2
        day = datetime(2025, 11, 22).date()
        by_provider = {r.provider: r for r in summary(ledger, day, day)}
        assert by_provider["openrouter"].requests == 1 and by_provider["openrouter"].failovers == 1
        assert by_provider["openrouter"].cost_usd == pytest.approx(0.002)
        assert by_provider["exo"].requests == 0
    finally:
        ledger.close()


def test_corrupt_ledger_is_moved_aside_never_deleted(tmp_path: Path):
    path = tmp_path / "usage.sqlite3"
    path.write_bytes(b"this is not a database at all" * 100)
    ledger = Ledger(path)
    try:
        assert ledger.notice and "moved to" in ledger.notice
        aside = list(tmp_path.glob("usage.sqlite3.corrupt-*"))
        assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")
    finally:
        ledger.close()


def test_unwritable_data_dir_names_the_path(tmp_path: Path, capsys, monkeypatch, make_config, exo):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    unusable = Ledger.in_dir(blocker / "sub")  # opens, says why it cannot record, never raises
    try:
        assert not unusable.can_record and str(blocker) in unusable.problem
    finally:
        unusable.close()
    monkeypatch.setenv("EXO_BRIDGE_DATA_DIR", str(blocker / "sub"))
    _, path = make_config()
    assert main(["ask", "hi", "--config", str(path)]) == 0  # still answers
    assert str(blocker / "sub") in capsys.readouterr().err
    assert main(["usage", "--config", str(path)]) == 2


async def test_locked_ledger_keeps_serving_and_writes_later(make_config, ledger, exo):
    config, _ = make_config()
    blocker = sqlite3.connect(ledger.path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    ledger._conn.execute("PRAGMA busy_timeout = 100")
    result = await asyncio.wait_for(chat(config, ledger), 10)
    assert result.provider_used == "exo"
    await until(lambda: ledger.error)
    assert "usage.sqlite3" in ledger.error
    blocker.rollback()
    blocker.close()
    await until(lambda: rows(ledger))
    assert [r["request_id"] for r in rows(ledger)] == [result.request_id]


def test_usage_cli_json_and_csv(capsys, make_config, exo, openrouter, tmp_path, monkeypatch):
    _, path = make_config()
    assert main(["ask", "hi", "--config", str(path)]) == 0
    exo.stop()
    assert main(["ask", "hi", "--config", str(path)]) == 0
    assert main(["ask", "hi", "--config", str(path)]) == 0
    capsys.readouterr()
    assert main(["usage", "--json", "--config", str(path)]) == 0
    report = json.loads(capsys.readouterr().out)
    by = {r["provider"]: r for r in report["rows"]}
    assert by["exo"]["requests"] == 1 and by["openrouter"]["requests"] == 2
    assert by["openrouter"]["failovers"] == 2  # exo refused, then exo's breaker open
    assert report["totals"]["requests"] == 3
    assert set(report["rows"][0]) == {"period", "provider", "requests", "prompt_tokens",
                                      "completion_tokens", "cost_usd", "failovers", "saved_usd"}
    assert report["totals"]["cost_usd"] == pytest.approx(by["openrouter"]["cost_usd"])
    assert main(["usage", "--csv", "--by", "month", "--config", str(path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "period,provider,requests,prompt_tokens,completion_tokens,cost_usd,failovers,saved_usd"
    assert lines[1].startswith(datetime.now(UTC).strftime("%Y-%m"))
    assert main(["status", "--json", "--config", str(path)]) == 0
    status = {p["id"]: p for p in json.loads(capsys.readouterr().out)["providers"]}
    assert status["openrouter"]["requests_today"] == 2 and status["openrouter"]["cost_today_usd"] > 0
    # one definition of "requests": `status` says what `usage` (and the cost window) says;
    # exo's refused attempt is a call, not a request
    assert status["exo"]["requests_today"] == by["exo"]["requests"] == 1
    assert status["exo"]["calls_today"] > 1
    assert status["openrouter"]["limits"]["requests"] == 1000


def test_usage_bad_arguments(capsys):
    for args in (["usage", "--days", "0"], ["usage", "--since", "yesterday"], ["usage", "--by", "year"]):
        with pytest.raises(SystemExit) as caught:
            main(args)
        assert caught.value.code == 2


def test_kill_9_loses_no_delivered_request(make_config, tmp_path: Path, exo):
    _, path = make_config()
    data = tmp_path / "kill"
    env = subprocess_env(OPENROUTER_API_KEY=OR_KEY)
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.ledger_load", str(path), str(data)],
                            stdout=subprocess.PIPE, text=True, env=env,
                            cwd=Path(__file__).resolve().parent.parent)
    delivered = []
    assert proc.stdout is not None
    while len(delivered) < 300:
        line = proc.stdout.readline()
        assert line, "the load process died"
        delivered.append(line.strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    reopened = Ledger.in_dir(data)  # replays what the killed process journaled
    try:
        stored = [r[0] for r in reopened.query("SELECT request_id FROM attempts WHERE outcome = 'ok'")]
    finally:
        reopened.close()
    assert set(delivered) <= set(stored)
    assert len(stored) == len(set(stored))  # nothing counted twice


async def test_a_cancelled_request_releases_its_reservation(make_config, exo):
    config, _ = make_config(exo_extra="daily_request_limit = 5\ndaily_token_limit = 100000")
    exo.chunk_delay_s = 0.05
    async with Router(config) as router:
        task = asyncio.ensure_future(router.chat(ASK))
        await until(lambda: exo.chat_requests)  # the answer is streaming
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        held = router.budget.reserved["exo"]
        used = router.budget.today("exo")
    assert (held.requests, held.tokens) == (0, 0)  # nothing stays reserved
    assert used.requests == 1 and used.tokens > 0  # the call was made: it counts, with its tokens
