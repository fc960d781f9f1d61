"""The ledger is the truth (issue 12): absurd numbers from a provider, journals of the wrong
shape, corrupt pages, a ledger that cannot record, max_tokens ignored, midnight."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router import Router, Timing
from router.cli.main import main
from router.ledger.journal import QUARANTINE, read_rows
from router.ledger.ledger import Ledger
from router.ledger.rows import Row, checked_values
from router.money.usage_guard import MAX_TOKENS, checked_usage, cost_usd, token_count
from tests.conftest import until

pytestmark = pytest.mark.usefixtures("keys_in_env")
ASK = {"model": "llama-3.2-3b", "messages": [{"role": "user", "content": "hi there"}]}


def with_limits(config, provider: str, **limits):
    """The config with other daily limits for one provider."""
    return dataclasses.replace(config, providers=tuple(
        dataclasses.replace(p, **limits) if p.id == provider else p for p in config.providers))


def stored(ledger: Ledger, where: str = "1") -> list[dict]:
    ledger.flush()
    conn = sqlite3.connect(ledger.path)
    conn.row_factory = sqlite3.Row
    found = [dict(r) for r in conn.execute(f"SELECT * FROM attempts WHERE {where} ORDER BY id")]
    conn.close()
    return found


@pytest.fixture
def ledger(tmp_path: Path):
    book = Ledger.in_dir(tmp_path / "data")
    yield book
    book.close()


# -- 1 and 3: numbers from a provider --------------------------------------------------------
@pytest.mark.parametrize(("override", "flag"), [
    ({"prompt_tokens": 1e30}, "usage-invalid"),
    ({"prompt_tokens": -1_000_000}, "usage-invalid"),
    ({"completion_tokens": float("nan")}, "usage-invalid"),
    ({"completion_tokens": "12"}, "usage-invalid"),
    ({"cost": float("nan")}, "usage-invalid"),
    ({"cost": -5}, "usage-invalid"),
    ({"cost": 1e9}, "usage-invalid"),
    ({"cost": float("inf")}, "usage-invalid"),
])
@pytest.mark.parametrize("stream", [False, True])
async def test_absurd_usage_is_replaced_flagged_and_never_reaches_sqlite(
        make_config, ledger, exo, openrouter, override, flag, stream):
    config, _ = make_config()
    exo.stop()
    openrouter.usage_override = override
    events = []
    async with Router(config, ledger=ledger) as router:
        router.subscribe(events.append)
        for _ in range(2):
            if stream:
                async with router.stream(ASK) as s:
                    chunks = [c async for c in s]
                result = s.result
                json.dumps(chunks, allow_nan=False)  # what a client sees is JSON
            else:
                result = await router.chat(ASK)
    assert result is not None and flag in result.flags
    json.dumps(result.response, allow_nan=False)
    usage = result.usage
    assert all(token_count(usage[k]) is not None for k in ("prompt_tokens", "completion_tokens"))
    assert cost_usd(result.cost_usd) is not None
    rows = stored(ledger, "outcome = 'ok'")
    assert len(rows) == 2 and all(flag in r["flags"] for r in rows)  # the writer lives on
    assert all(0 <= r["prompt_tokens"] <= MAX_TOKENS and math.isfinite(r["cost_usd"]) for r in rows)
    assert sum(type(e).__name__ == "UsageInvalid" for e in events) == 1  # announced once


async def test_negative_tokens_cannot_buy_past_a_token_limit(make_config, ledger, exo, openrouter):
    config = with_limits(make_config()[0], "openrouter", daily_token_limit=3000)
    exo.stop()
    openrouter.reply = " ".join(f"w{i}" for i in range(1000))
    openrouter.usage_override = {"prompt_tokens": -1_000_000}
    async with Router(config, ledger=ledger) as router:
        for _ in range(12):
            await router.chat({**ASK, "max_tokens": 1010})
    assert len(openrouter.chat_requests) <= 2  # 12 got through before
    total = sum(r["prompt_tokens"] + r["completion_tokens"] for r in stored(ledger, "provider = 'openrouter'"))
    assert total <= 3000


async def test_a_nan_cost_is_costed_from_the_price_table_and_holds_the_limit(
        make_config, ledger, exo, openrouter):
    config = with_limits(make_config()[0], "openrouter", daily_cost_limit_usd=1.0)
    exo.stop()
    openrouter.or_prices = {"meta-llama/llama-3.2-3b-instruct": ("0.005", "0.005")}
    openrouter.reply = " ".join(f"w{i}" for i in range(40))  # ~$0.25 an answer
    openrouter.usage_override = {"cost": float("nan")}
    async with Router(config, ledger=ledger) as router:
        await until(lambda: "openrouter" in router.pricer.tables)  # the price list arrives
        results = [await router.chat({**ASK, "max_tokens": 100}) for _ in range(8)]
    paid = [r for r in results if r.provider_used == "openrouter"]
    assert 1 <= len(paid) <= 3 and all(r.cost_source == "price-table" for r in paid)  # 8 before
    assert sum(r["cost_usd"] for r in stored(ledger, "provider = 'openrouter'")) <= 1.0


def test_usage_guard_properties():
    @given(st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(),
                     st.none(), st.booleans()))
    def tokens(value):
        found = token_count(value)
        assert found is None or (isinstance(found, int) and 0 <= found <= MAX_TOKENS)

    @given(st.dictionaries(st.sampled_from(["prompt_tokens", "completion_tokens", "cost", "x"]),
                           st.one_of(st.integers(), st.floats(), st.text(), st.none())),
           st.integers(0, 10**6), st.integers(0, 10**6))
    def usage(raw, prompt_chars, completion_chars):
        checked, _flags = checked_usage(raw, prompt_chars, completion_chars)
        json.dumps(checked, allow_nan=False)
        assert checked["total_tokens"] == checked["prompt_tokens"] + checked["completion_tokens"]
        assert token_count(checked["prompt_tokens"]) is not None

    tokens()
    usage()


# -- 2: journals of the wrong shape ----------------------------------------------------------
def _good(uid: str, day: str | None = None) -> list:
    return list(Row(1763800000.0, uid, "llama", "m", "exo", "ok", True, False, 3, 4, 0.0, "free",
                    10.0, 2.0, False, 0, "", 0.0, uid, day).values())


BAD_LINES = [b"null", b"42", b"[]", b"{}", b'"text"', b"[1, 2, 3]", b'{"ts": 1}', b"NaN",
             b"not json at all", b'[1763800000.0, "2025-11-22"',]


def test_a_journal_of_the_wrong_shape_is_quarantined_and_the_good_rows_replayed(tmp_path, capsys):
    data = tmp_path / "data"
    (data / "journals").mkdir(parents=True)
    bad_row = _good("bad")
    bad_row[9] = "many"  # a string where a number belongs
    lines = [json.dumps(_good("g1")).encode(), *BAD_LINES, json.dumps(bad_row).encode(),
             json.dumps(_good("g2")).encode()]
    (data / "journals" / "999999-1.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    ledger = Ledger.in_dir(data)  # a process that is gone left this: replayed at open
    try:
        assert ledger.can_record
        uids = {r[0] for r in ledger.query("SELECT uid FROM attempts")}
        assert uids == {"g1", "g2"}
        assert ledger.quarantined() == len(BAD_LINES) + 1
    finally:
        ledger.close()
    kept = [json.loads(line) for line in (data / QUARANTINE).read_text().splitlines()]
    assert {k["line"] for k in kept} >= {"null", "42", "{}"}
    assert not (data / "journals" / "999999-1.jsonl").exists()
    assert main(["usage", "--json", "--since", "2025-11-01"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["totals"]["requests"] == 2 and report["quarantined"] == len(BAD_LINES) + 1
    assert "quarantine" in captured.err


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text()),
                    lambda inner: st.lists(inner, max_size=24) | st.dictionaries(st.text(), inner),
                    max_leaves=40))
def test_any_json_is_a_row_or_a_reason(value):
    checked = checked_values(value)
    assert isinstance(checked, str) or (isinstance(checked, tuple) and len(checked) == 23)


def test_read_rows_never_raises(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(b"\n".join([*BAD_LINES, b"\xff\xfe", json.dumps(_good("ok")).encode()]))
    items = list(read_rows(path))
    assert sum(isinstance(i, tuple) and len(i) == 23 for i in items) == 1


# -- 6: a ledger that cannot record ----------------------------------------------------------
async def test_fail_closed_for_money_open_for_exo(make_config, tmp_path, exo, openrouter):
    config, _ = make_config()
    blocked = tmp_path / "data"
    blocked.mkdir()
    (blocked / "usage.sqlite3").mkdir()  # a directory where the ledger should be
    ledger = Ledger.in_dir(blocked)
    events = []
    try:
        assert not ledger.can_record and "is a directory" in ledger.problem
        async with Router(config, ledger=ledger) as router:
            router.subscribe(events.append)
            assert (await router.chat(ASK)).provider_used == "exo"  # exo keeps answering
            exo.stop()
            with pytest.raises(Exception) as failed:
                await router.chat(ASK)
            statuses = {s.id: s for s in router.statuses()}
        attempts = {a.provider: a for a in failed.value.attempts}
        assert attempts["openrouter"].outcome == "not-allowed"
        assert "usage ledger cannot record" in attempts["openrouter"].detail
        assert "is a directory" in attempts["openrouter"].detail  # names the path and the fix
        assert statuses["openrouter"].state == "degraded"
        assert openrouter.chat_requests == []  # not one paid call
    finally:
        ledger.close()
    (blocked / "usage.sqlite3").rmdir()  # fixed: the rows waiting in memory are written
    again = Ledger.in_dir(blocked)
    try:
        assert again.can_record
    finally:
        again.close()


async def test_rows_wait_in_memory_until_the_ledger_can_record(make_config, tmp_path, exo):
    config, _ = make_config()
    data = tmp_path / "data"
    ledger = Ledger.in_dir(data)
    changes = []
    try:
        async with Router(config, ledger=ledger) as router:
            router.subscribe(lambda e: changes.append(e) if type(e).__name__ == "LedgerProblem" else None)
            blocker = sqlite3.connect(ledger.path, timeout=0)
            blocker.execute("BEGIN EXCLUSIVE")  # another program holds it: writes fail
            ledger._conn.execute("PRAGMA busy_timeout = 50")
            delivered = [(await router.chat(ASK)).request_id for _ in range(5)]
            await until(lambda: not ledger.can_record)
            assert "locked" in ledger.problem
            blocker.rollback()
            blocker.close()
            await until(lambda: ledger.can_record)
            await until(lambda: len(changes) == 2)  # the change reaches the loop as an event
        assert [c.problem is None for c in changes] == [False, True]
        assert {r["request_id"] for r in stored(ledger)} == set(delivered)
    finally:
        ledger.close()


# -- 7: corrupt pages ------------------------------------------------------------------------
def _damage(path: Path) -> None:
    """Overwrite pages past the header, as a disk or another program might."""
    raw = bytearray(path.read_bytes())
    page = 4096
    for start in range(2 * page, len(raw), 3 * page):
        raw[start:start + page] = b"\xa5" * min(page, len(raw) - start)
    path.write_bytes(bytes(raw))


def test_corrupt_pages_are_found_moved_aside_and_todays_counts_kept(tmp_path, capsys):
    data = tmp_path / "data"
    ledger = Ledger.in_dir(data)
    today = datetime.now(UTC).date().isoformat()
    rows = [Row(1763800000.0 + i, f"r{i}", "llama", "m", "openrouter", "ok", True, False, 10, 20,
                0.001, "reported", 5.0, 1.0, False, 0, "", 0.0, f"u{i}",
                today if i % 2 else "2025-11-22").values() for i in range(3000)]
    ledger.write_now(rows)
    ledger.close()
    conn = sqlite3.connect(data / "usage.sqlite3")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    _damage(data / "usage.sqlite3")
    assert main(["usage", "--json", "--days", "1"]) == 0
    captured = capsys.readouterr()
    assert "damaged" in captured.err and "moved to" in captured.err
    aside = [p for p in data.glob("usage.sqlite3.corrupt-*") if p.name[-4:] not in ("-wal", "-shm")]
    assert len(aside) == 1 and aside[0].stat().st_size > 0  # never deleted
    report = json.loads(captured.out)
    assert 500 < report["totals"]["requests"] <= 1500  # what was readable of today


# -- 8: reservations are a cap ---------------------------------------------------------------
async def test_a_provider_that_ignores_max_tokens_is_cut_there(make_config, ledger, exo):
    config, _ = make_config(exo_extra="daily_token_limit = 2000")
    exo.reply = " ".join(f"w{i}" for i in range(100))  # 100 tokens whatever max_tokens says
    async with Router(config, ledger=ledger) as router:
        results = await asyncio.gather(*(router.chat({**ASK, "max_tokens": 1}) for _ in range(40)),
                                       return_exceptions=True)
        async with router.stream({**ASK, "max_tokens": 3}) as s:
            chunks = [c async for c in s]
    answered = [r for r in results if not isinstance(r, BaseException) and r.provider_used == "exo"]
    assert answered and all(r.response["choices"][0]["finish_reason"] == "length" for r in answered)
    assert all(r.text.strip() == "w0" for r in answered)
    recorded = stored(ledger, "provider = 'exo' AND outcome = 'ok'")
    assert sum(r["prompt_tokens"] + r["completion_tokens"] for r in recorded) <= 2000  # 4,440 before
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text.split() == ["w0", "w1", "w2"]
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "length"


async def test_without_max_tokens_an_answer_grows_until_the_limit(make_config, exo):
    config, _ = make_config(exo_extra="daily_token_limit = 1500")
    exo.reply = " ".join(f"w{i}" for i in range(3000))
    async with Router(config) as router:
        result = await router.chat(ASK)
    assert result.response["choices"][0]["finish_reason"] == "length"
    assert 1024 <= result.usage["completion_tokens"] <= 1500  # the first step, not the whole


# -- 9: midnight -----------------------------------------------------------------------------
async def test_a_request_counts_on_the_day_it_was_reserved(make_config, ledger, exo):
    config, _ = make_config(exo_extra="daily_request_limit = 5")
    clock = [datetime(2026, 11, 29, 23, 59, 56, tzinfo=UTC)]
    exo.chunk_delay_s = 0.1
    async with Router(config, ledger=ledger, timing=Timing(now=lambda: clock[0])) as router:
        task = asyncio.ensure_future(router.chat(ASK))
        await asyncio.sleep(0.25)  # reserved at 23:59:56, still streaming
        clock[0] += timedelta(seconds=8)  # answered at 00:00:04
        await task
    [row] = stored(ledger)
    assert row["day"] == "2026-11-29"


# -- files are the user's alone --------------------------------------------------------------
async def test_data_files_are_0600(make_config, ledger, exo):
    config, _ = make_config()
    async with Router(config, ledger=ledger) as router:
        await router.chat(ASK)
    ledger.flush()
    data = ledger.directory
    for path in [data / "usage.sqlite3", data / "usage.sqlite3-wal", *(data / "journals").iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((data / "journals").stat().st_mode) == 0o700
