"""Money is never overspent (issue 25): one rule for a passed limit, the real cost counted at
once, holds that never leak when clients hang up, a writer that never dies, a damaged or
read-only ledger that still enforces today's totals."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from router import Router
from router.cli.main import main
from router.config import parse_config
from router.endpoint.server import EndpointServer
from router.errors import NoProviderAvailable
from router.events import LedgerProblem
from router.keys import Secret
from router.ledger import ledger as ledger_module
from router.ledger import store as ledger_store
from router.ledger.journal import Journal
from router.ledger.ledger import Ledger, Row
from router.money.budget_rule import passed
from tests.conftest import config_text
from tests.fakes.provider import FakeProvider

pytestmark = pytest.mark.usefixtures("keys_in_env")
ASK = {"model": "llama-3.2-3b", "messages": [{"role": "user", "content": "hi there"}]}
TOKEN = "test-endpoint-token-0123456789"


# -- 1: one rule for a passed limit ------------------------------------------------------------
@given(limit=st.floats(0, 1e6), used=st.floats(0, 2e6), want=st.floats(0, 1e6),
       growth=st.booleans(), unit=st.sampled_from(["request", "token", "USD"]))
def test_a_limit_at_or_past_its_use_refuses_whatever_is_wanted(limit, used, want, growth, unit):
    over = passed([(limit, used, want, unit)], growth=growth)
    if growth and unit == "request":  # a growing answer asks no new request
        assert over is None
    elif used >= limit or used + want > limit:
        assert over == (unit, used, limit)
    else:
        assert over is None and used + want <= limit
    assert passed([(None, used, want, unit)], growth=growth) is None


# -- 1 and 2: 6 rapid answers at $0.60 under a $1 limit --------------------------------------
@pytest.fixture
def priced_fake():
    fake = FakeProvider("openai", models=["m"], usage_override={"cost": 0.6})
    yield fake
    fake.close()


def cost_limited(fake: FakeProvider, priced: bool):
    prices = "prompt_price_per_mtok = 0.5\ncompletion_price_per_mtok = 1.0\n" if priced else ""
    return parse_config(f'[[providers]]\nid = "lm"\nkind = "openai"\nbase_url = "{fake.base_url}"\n'
                        f'paid = true\ndaily_cost_limit_usd = 1.0\n{prices}', "t")


async def rapid_answers(config, ledger: Ledger | None, count: int = 6) -> list[int]:
    """``count`` requests one after the other through the endpoint, with the openai SDK."""
    async with Router(config, ledger=ledger) as router:
        server = EndpointServer(router, token=Secret(TOKEN), port=0)
        await server.start()
        sdk = openai.AsyncOpenAI(base_url=server.url, api_key=TOKEN, max_retries=0)
        codes = []
        try:
            for _ in range(count):
                try:
                    await sdk.chat.completions.create(model="m", messages=[
                        {"role": "user", "content": "hi"}])
                    codes.append(200)
                except openai.APIStatusError as exc:
                    codes.append(exc.status_code)
        finally:
            await sdk.close()
            await server.stop()
    return codes


@pytest.mark.parametrize("priced", [False, True], ids=["no-price-table", "price-table"])
@pytest.mark.parametrize("with_ledger", [True, False], ids=["ledger", "in-process"])
async def test_rapid_answers_dearer_than_their_hold_stop_at_the_usd_limit(
        tmp_path, priced_fake, priced, with_ledger):
    ledger = Ledger.in_dir(tmp_path / "data") if with_ledger else None
    try:
        codes = await rapid_answers(cost_limited(priced_fake, priced), ledger)
    finally:
        if ledger is not None:
            ledger.close()
    # $0.60, then $1.20 (the one that crosses the limit may pass), then none: 6 of 6 before
    # without a price table, 6 of 6 back to back with one
    assert len(priced_fake.chat_requests) == 2
    assert codes == [200, 200, 429, 429, 429, 429]


async def test_a_new_process_sees_the_real_cost_of_the_last_one(tmp_path, priced_fake):
    """The settled hold is in SQLite at once: another process (here: another Ledger on the same
    data dir) sees $0.60, not the $0 estimate, before the row is even written."""
    config = cost_limited(priced_fake, priced=False)
    first = Ledger.in_dir(tmp_path / "data")
    gate = threading.Event()
    original = first._write_pending
    first._write_pending = lambda: gate.wait(5) and original()  # type: ignore[method-assign]
    second = Ledger.in_dir(tmp_path / "data")
    try:
        async with Router(config, ledger=first) as router:
            await router.chat({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
            async with Router(config, ledger=second) as other:
                for _ in range(100):  # the settle is decided by the first ledger's budget thread
                    held = second.query("SELECT sum(cost_usd) FROM reservations")[0][0]
                    if held:
                        break
                    await asyncio.sleep(0.02)
                assert held == pytest.approx(0.6)
                assert (await other.chat({"model": "m", "messages": [
                    {"role": "user", "content": "hi"}]})).cost_usd == pytest.approx(0.6)
                with pytest.raises(NoProviderAvailable, match="USD limit"):
                    await other.chat({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    finally:
        gate.set()
        second.close()
        first.close()
    assert len(priced_fake.chat_requests) == 2


# -- 3: hang-ups while a hold is decided -------------------------------------------------------
def limited_config(exo, openrouter, hf, limit: int):
    text = config_text([exo.origin], openrouter.base_url, hf.base_url).replace(
        "daily_request_limit = 1000", f"daily_request_limit = {limit}")
    return parse_config(text, "t")


async def hang_ups(router: Router, ledger: Ledger, count: int, seed: int, *,
                   locked: bool = True) -> None:
    """``count`` clients that go away at random moments, in waves of 48; ``locked``: while
    another process holds the ledger's write lock, so all land while their holds are decided
    (as next to a busy `serve`)."""
    rng = random.Random(seed)
    for _wave in range(count // 48):
        other = sqlite3.connect(ledger.path, timeout=5, isolation_level=None)
        if locked:
            other.execute("BEGIN IMMEDIATE")
        tasks = [asyncio.ensure_future(router.chat(ASK)) for _ in range(48)]
        for delay in sorted(rng.uniform(0, 0.04) for _ in tasks):
            await asyncio.sleep(delay / len(tasks))
            rng.choice([t for t in tasks if not t.done()] or tasks).cancel()
        for task in tasks:
            task.cancel()
        if locked:
            other.execute("ROLLBACK")
        other.close()
        await asyncio.gather(*tasks, return_exceptions=True)


def todays_calls(ledger: Ledger, provider: str) -> tuple[int, int]:
    """(calls written, holds left) for ``provider`` today."""
    ledger.flush()
    written = ledger.query("SELECT coalesce(sum(calls), 0) FROM daily WHERE provider = ?", (provider,))
    held = ledger.query("SELECT count(*) FROM reservations WHERE provider = ?", (provider,))
    return written[0][0], held[0][0]


async def test_480_hang_ups_leave_the_full_days_limit(tmp_path, exo, openrouter, hf):
    exo.stop()
    hf.stop()
    openrouter.chunk_delay_s = 0.01
    ledger = Ledger.in_dir(tmp_path / "data")
    try:
        async with Router(limited_config(exo, openrouter, hf, 30), ledger=ledger) as router:
            await router.chat(ASK)
            await hang_ups(router, ledger, 480, seed=25)
            used, _ = todays_calls(ledger, "openrouter")
            answered = 0
            for _ in range(40):
                try:
                    await router.chat(ASK)
                    answered += 1
                except NoProviderAvailable as exc:
                    assert "request limit 30 reached" in str(exc)
                    break
            written, held = todays_calls(ledger, "openrouter")
    finally:
        ledger.close()
    assert used == 1  # none of the hang-ups reached the provider
    assert answered == 29  # 0 before: the holds granted after the hang-ups stayed
    assert (written, held) == (30, 0)
    assert len(openrouter.chat_requests) == 30


async def test_hang_ups_at_any_moment_leave_no_hold(tmp_path, exo, openrouter, hf):
    exo.stop()
    hf.stop()
    ledger = Ledger.in_dir(tmp_path / "data")
    try:
        async with Router(limited_config(exo, openrouter, hf, 1000), ledger=ledger) as router:
            await hang_ups(router, ledger, 480, seed=26, locked=False)
            used, held = todays_calls(ledger, "openrouter")
    finally:
        ledger.close()
    assert held == 0  # 6 before (each counted until the process ended, then all day)
    # a hang-up after its hold counts as a call (it may have reached the provider), once
    assert len(openrouter.chat_requests) <= used <= 480


# -- 5: the writer never dies silently ---------------------------------------------------------
class FlakyClock:
    """``time`` as the ledger sees it, whose sleep fails ``failures`` times (a clock tool)."""

    def __init__(self, failures: int):
        self.failures = failures

    def sleep(self, seconds: float) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise OSError(22, "Invalid argument")
        time.sleep(seconds)

    monotonic = staticmethod(time.monotonic)
    time = staticmethod(time.time)


async def test_the_writer_survives_an_unexpected_error_and_loses_nothing(
        make_config, tmp_path, exo, monkeypatch, caplog):
    monkeypatch.setattr(ledger_module, "time", FlakyClock(failures=2))
    monkeypatch.setattr(ledger_module, "_FAULT_BACKOFF_S", (0.01, 0.05))
    config, _ = make_config()
    ledger = Ledger.in_dir(tmp_path / "data")
    try:
        async with Router(config, ledger=ledger) as router:
            delivered = {(await router.chat(ASK)).request_id for _ in range(5)}
        ledger.flush(5)
        stored = {r[0] for r in ledger.query("SELECT request_id FROM attempts")}
        assert ledger._writer.is_alive() and ledger.can_record
    finally:
        ledger.close()
    assert delivered <= stored  # the writer died at the first sleep before: nothing written
    assert "unexpected error (OSError" in caplog.text


async def test_a_writer_that_keeps_failing_closes_paid_providers_and_says_so(
        make_config, tmp_path, exo, openrouter, monkeypatch):
    monkeypatch.setattr(ledger_module, "_FAULT_BACKOFF_S", (0.01, 0.05))
    real_insert = ledger_store.insert
    broken = threading.Event()
    broken.set()

    def insert(*args, **kw):
        if broken.is_set():
            raise RuntimeError("injected fault")
        return real_insert(*args, **kw)

    monkeypatch.setattr(ledger_store, "insert", insert)
    config, _ = make_config()
    ledger = Ledger.in_dir(tmp_path / "data")
    events: list[LedgerProblem] = []
    try:
        async with Router(config, ledger=ledger) as router:
            router.subscribe(lambda e: events.append(e) if isinstance(e, LedgerProblem) else None)
            server = EndpointServer(router, token=Secret(TOKEN), port=0)
            await server.start()
            try:
                delivered = {(await router.chat(ASK)).request_id}  # exo: free
                for _ in range(200):
                    if not ledger.can_record:
                        break
                    await asyncio.sleep(0.02)
                async with httpx.AsyncClient() as http:
                    health = (await http.get(server.url.removesuffix("/v1") + "/health")).json()
                assert health["status"] == "degraded"
                assert "writer keeps failing" in health["ledger"]["problem"]
                assert "RuntimeError: injected fault" in health["ledger"]["problem"]
                exo.stop()
                with pytest.raises(NoProviderAvailable) as refused:
                    await router.chat(ASK)
                assert "openrouter: not-allowed" in str(refused.value)
                assert openrouter.chat_requests == []  # fail closed for money
                broken.clear()  # the fault goes away: the rows kept in memory are written
                for _ in range(200):
                    if ledger.can_record:
                        break
                    await asyncio.sleep(0.02)
                assert ledger.can_record
            finally:
                await server.stop()
        ledger.flush(5)
        stored = {r[0] for r in ledger.query("SELECT request_id FROM attempts")}
    finally:
        ledger.close()
    assert delivered <= stored
    assert [e.problem is None for e in events] == [False, True]  # the tray's notifications
    assert "writer keeps failing" in (events[0].problem or "")


class Stopped(BaseException):
    """What no loop catches (as an interpreter shutting the thread down)."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_writer_that_stopped_is_said_by_status(make_config, monkeypatch, capsys):
    def dies(self):
        raise Stopped

    monkeypatch.setattr(Ledger, "_turn", dies)
    _, path = make_config()
    assert main(["status", "--config", str(path)]) in (0, 1, 2)
    out = capsys.readouterr().out
    assert "usage ledger: cannot record" in out and "writer stopped" in out


# -- 6: a damaged ledger is found by every process at start ------------------------------------
def damaged_ledger(data: Path) -> None:
    ledger = Ledger.in_dir(data)
    ledger.write_now([(time.time(), time.strftime("%Y-%m-%d", time.gmtime()), f"r{i}", "llama",
                       "m", "openrouter", "ok", 1, 0, 10, 20, 30, 0.001, "reported", 5.0, 1.0, 0,
                       0, "", 0.0, 10, f"u{i}", None) for i in range(3000)])
    ledger.close()
    conn = sqlite3.connect(data / "usage.sqlite3")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    path = data / "usage.sqlite3"
    conn = sqlite3.connect(path)
    kept = {1, *(page for (page,) in conn.execute(  # today's totals: read by every start
        "SELECT rootpage FROM sqlite_master WHERE tbl_name IN ('daily', 'reservations', "
        "'latency_hist') AND rootpage > 0"))}
    conn.close()
    raw = bytearray(path.read_bytes())
    rng = random.Random(6)
    for page in range(2, len(raw) // 4096 + 1):  # random bytes in every other page
        if page not in kept:
            start = (page - 1) * 4096
            raw[start:start + 4096] = rng.randbytes(min(4096, len(raw) - start))
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("command", ["ask", "status"])
def test_every_process_moves_a_damaged_ledger_aside_at_start(
        make_config, tmp_path, exo, capsys, command):
    data = tmp_path / "data"
    damaged_ledger(data)
    _, path = make_config()
    args = ["ask", "hi", "--config", str(path)] if command == "ask" else ["status", "--config",
                                                                           str(path)]
    main(args)
    err = capsys.readouterr().err
    assert "damaged" in err and "moved to" in err  # said at start, before anything is answered
    aside = [p for p in data.glob("usage.sqlite3.corrupt-*") if not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1 and aside[0].stat().st_size > 0


# -- 7: a read-only ledger still enforces today's totals -------------------------------------
def _read_only_probe(real):
    def open_checked(path):
        conn = real(path)
        conn.close()  # the file is sound; writing it is what fails (as on a read-only disk)
        raise ledger_store.classify(path, sqlite3.OperationalError(
            "attempt to write a readonly database"))
    return open_checked


async def test_a_read_only_ledger_keeps_todays_request_limit(make_config, tmp_path, exo, monkeypatch):
    config, _ = make_config(exo_extra="daily_request_limit = 3")
    data = tmp_path / "data"
    ledger = Ledger.in_dir(data)
    try:
        async with Router(config, ledger=ledger) as router:
            for _ in range(2):
                await router.chat(ASK)
    finally:
        ledger.close()
    # the third, by a process killed before its row reached SQLite: only in its journal
    killed = Journal(data, "999999999-1")
    killed.append([Row(time.time(), "killed", "llama-3.2-3b", "m", "exo", "ok", True, False, 5, 7,
                       0.0, "free", 9.0, 3.0, False, 0, "", 0.0, "killed/0").values()])
    killed.close(remove=False)
    monkeypatch.setattr(ledger_store, "open_checked", _read_only_probe(ledger_store.open_checked))
    again = Ledger.in_dir(data)  # "restart" on a read-only data dir
    try:
        assert not again.can_record
        assert "readonly" in again.problem and "nothing new can be recorded" in again.problem
        assert "today's use so far still counts" in again.problem
        async with Router(config, ledger=again) as router:
            with pytest.raises(NoProviderAvailable, match="request limit 3 reached"):
                await router.chat(ASK)  # 3 more were answered before
            assert router.budget.today("exo").requests == 3  # what status shows
    finally:
        again.close()
    assert len(exo.chat_requests) == 2
