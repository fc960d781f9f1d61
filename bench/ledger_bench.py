"""Ledger costs: recording on vs off, raw write rate, and summaries over 1,000,000 rows.

    .venv/bin/python bench/ledger_bench.py [--requests 2000] [--rows 1000000]

1. Router.chat against a fake OpenRouter in another process, ledger off vs on, at
   concurrency 1 (latency) and 16 (throughput), same run, alternating.
2. Raw ledger write rate (rows/s through the writer thread, committed).
3. A year of heavy use (1,000,000 rows): per-day-per-provider summary from the rollup, and
   the same summary computed straight from the attempts table for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

from bench.router_overhead import ASK, KEY, config, start_fake
from router import Router
from router.config import parse_config
from router.keys import KeyStore
from router.ledger.ledger import Hold, HoldAsk, Ledger, Limits, Row
from router.ledger.usage import summary


async def requests_per_second(router: Router, n: int, concurrency: int) -> tuple[float, float]:
    """(requests/s, median ms per request)."""
    samples: list[float] = []

    async def worker(count: int) -> None:
        for _ in range(count):
            start = time.perf_counter()
            await router.chat(ASK)
            samples.append((time.perf_counter() - start) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
    return len(samples) / (time.perf_counter() - start), statistics.median(samples)


async def recording_cost(or_url: str, n: int, data: Path) -> dict[str, list[tuple[float, float]]]:
    """The ledger off, on, and on with daily limits (each request then holds its budget in
    SQLite, counted across every process on the data dir: the cross-process design's cost)."""
    cfg = parse_config(config(or_url, None), "bench")
    limited = parse_config(config(or_url, None) + "daily_request_limit = 1000000000\n"
                           "daily_token_limit = 1000000000000\n", "bench")
    keys = KeyStore({"BENCH_OR_KEY": KEY})
    results: dict[str, list[tuple[float, float]]] = {}
    ledger = Ledger.in_dir(data)
    async with httpx.AsyncClient() as http, Router(cfg, keys=keys, http=http) as off, \
            Router(cfg, keys=keys, http=http, ledger=ledger) as on, \
            Router(limited, keys=keys, http=http, ledger=ledger) as held:
        for router in (off, on, held):
            await requests_per_second(router, 100, 4)  # warm up
        for _ in range(3):
            for name, router in (("off", off), ("on", on), ("on + limits", held)):
                for concurrency in (1, 16):
                    key = f"ledger {name}, concurrency {concurrency}"
                    results.setdefault(key, []).append(
                        await requests_per_second(router, n, concurrency))
    ledger.close()
    return results


def hold_round_trip(data: Path, count: int = 2000) -> float:
    """Median ms of one budget hold as a request takes it: a thread hop and one SQLite write
    transaction that counts every process's rows and holds."""
    ledger = Ledger.in_dir(data)
    ask = HoldAsk("openrouter", datetime.now(UTC).date().isoformat(), Hold(1, 1030, 0.0),
                  Limits(1e12, 1e15, None))

    async def holds() -> list[float]:
        samples = []
        for _ in range(count):
            start = time.perf_counter()
            await ledger.hold(ask)
            samples.append((time.perf_counter() - start) * 1000)
        return samples

    try:
        return statistics.median(asyncio.run(holds()))
    finally:
        ledger.close()


def write_rate(data: Path, count: int) -> float:
    ledger = Ledger.in_dir(data)
    rows = [Row(time.time(), uuid.uuid4().hex, "llama", "m", "openrouter", "ok", True, False, 20, 30,
                0.0001, "reported", 300.0, 50.0, False, 0, "", 0.0) for _ in range(count)]
    start = time.perf_counter()
    for i in range(0, count, 10):
        ledger.record(rows[i:i + 10])
    ledger.flush(120)
    elapsed = time.perf_counter() - start
    ledger.close()
    return count / elapsed


def fill_year(data: Path, count: int) -> Ledger:
    ledger = Ledger.in_dir(data)
    rng = random.Random(7)
    start = datetime(2025, 11, 23, tzinfo=UTC).timestamp()
    providers = ("exo", "exo", "exo", "openrouter", "huggingface")
    batch = []
    for i in range(count):
        ts = start + i * (365 * 86400 / count)
        provider = rng.choice(providers)
        outcome = "ok" if rng.random() > 0.05 else "refused"
        row = Row(ts, f"r{i}", "llama", "m", provider, outcome, True, rng.random() < 0.5,
                  rng.randint(10, 500), rng.randint(10, 800), 0.0 if provider == "exo" else 0.0002,
                  "free" if provider == "exo" else "reported", rng.uniform(50, 3000), 40.0,
                  False, 0, "", 0.0001 if provider == "exo" else 0.0)
        batch.append(row.values())
        if len(batch) == 50_000:
            ledger.write_now(batch)
            batch = []
    if batch:
        ledger.write_now(batch)
    return ledger


def aggregation(ledger: Ledger) -> dict[str, float]:
    since, until = date(2025, 11, 23), date(2026, 11, 22)
    timings: dict[str, list[float]] = {"rollup, year by day": [], "rollup, year by month": [],
                                       "rollup, last 30 days by day": [],
                                       "raw GROUP BY over attempts, year by day": []}
    for _ in range(5):
        for name, call in (
                ("rollup, year by day", lambda: summary(ledger, since, until, "day")),
                ("rollup, year by month", lambda: summary(ledger, since, until, "month")),
                ("rollup, last 30 days by day",
                 lambda: summary(ledger, until - timedelta(days=29), until, "day")),
                ("raw GROUP BY over attempts, year by day", lambda: ledger.query(
                    "SELECT day, provider, sum(outcome = 'ok'), sum(prompt_tokens), "
                    "sum(completion_tokens), sum(cost_usd), sum(failovers), sum(saved_usd) "
                    "FROM attempts GROUP BY 1, 2"))):
            start = time.perf_counter()
            call()
            timings[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_fake("openrouter")
        try:
            cost = asyncio.run(recording_cost(f"http://127.0.0.1:{port}/api/v1", args.requests,
                                              Path(tmp) / "on"))
        finally:
            proc.terminate()
            proc.wait(5)
        print("Router.chat, medians of 3 alternating runs")
        for name, runs in cost.items():
            rate = statistics.median(r[0] for r in runs)
            latency = statistics.median(r[1] for r in runs)
            print(f"  {name:<28} {rate:8.0f} req/s   p50 {latency:6.3f} ms")
        for c in (1, 16):
            off = statistics.median(r[1] for r in cost[f"ledger off, concurrency {c}"])
            on = statistics.median(r[1] for r in cost[f"ledger on, concurrency {c}"])
            held = statistics.median(r[1] for r in cost[f"ledger on + limits, concurrency {c}"])
            print(f"  recording adds at concurrency {c}: {on - off:+.3f} ms p50 "
                  f"({(on / off - 1) * 100:+.1f}%); a budget hold in SQLite adds "
                  f"{held - on:+.3f} ms more ({(held / on - 1) * 100:+.1f}%)")
        print(f"a budget hold alone (one SQLite write transaction on the ledger's budget thread): "
              f"{hold_round_trip(Path(tmp) / 'hold'):.3f} ms p50")
        print(f"raw ledger write rate: {write_rate(Path(tmp) / 'rate', 200_000):,.0f} rows/s committed")
        start = time.perf_counter()
        ledger = fill_year(Path(tmp) / "year", args.rows)
        print(f"filled {args.rows:,} rows in {time.perf_counter() - start:.1f} s")
        for name, ms in aggregation(ledger).items():
            print(f"  {name:<42} {ms:8.2f} ms (median of 5)")
        ledger.close()


if __name__ == "__main__":
    main()
