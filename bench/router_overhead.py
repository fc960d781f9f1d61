"""Router overhead and failover cost, against a fake provider in another process on loopback.

    .venv/bin/python bench/router_overhead.py [--requests 1000] [--runs 3]

Measures, side by side in one run:
  * direct:          httpx straight to the fake OpenRouter (streamed, read to [DONE])
  * router:          Router.chat with OpenRouter as the only provider
  * exo refused:     Router.chat, exo first but refusing (fresh health each request)
  * breaker open:    Router.chat, exo's breaker already open
Prints medians (p50) and p99 in ms, and what each adds over its baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from router import Router
from router.config import parse_config
from router.keys import KeyStore

ROOT = Path(__file__).resolve().parent.parent

KEY = "sk-or-bench-0000000000000000"
ASK = {"model": "meta-llama/llama-3.2-3b-instruct",
       "messages": [{"role": "user", "content": "say hello"}]}


def start_fake(flavor: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.serve", flavor, "--key", KEY],
                            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline().split()[1])
    return proc, port


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(or_url: str, exo_url: str | None) -> str:
    exo = f"""
[[providers]]
id = "exo"
kind = "exo"
base_urls = ["{exo_url}"]
priority = 0
""" if exo_url else ""
    return exo + f"""
[[providers]]
id = "openrouter"
kind = "openrouter"
base_url = "{or_url}"
priority = 1
paid = true
api_key_env = "BENCH_OR_KEY"
"""


async def timed(n: int, call: Callable[[], Awaitable[object]]) -> list[float]:
    for _ in range(min(50, n)):  # warm up connections and caches
        await call()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def p(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[int(q) - 1] if q < 100 else max(samples)


async def run_once(n: int, or_url: str) -> dict[str, list[float]]:
    keys = KeyStore({"BENCH_OR_KEY": KEY})
    body = {**ASK, "stream": True, "stream_options": {"include_usage": True}}
    headers = {"authorization": f"Bearer {KEY}"}
    dead = f"http://127.0.0.1:{dead_port()}"
    async with httpx.AsyncClient() as http:
        async def direct() -> None:
            async with http.stream("POST", f"{or_url}/chat/completions", json=body,
                                   headers=headers) as response:
                async for _line in response.aiter_lines():
                    pass

        async def direct_parsed() -> None:
            """What a client does to get the answer: parse every chunk, join the text."""
            text = []
            async with http.stream("POST", f"{or_url}/chat/completions", json=body,
                                   headers=headers) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data: {"):
                        for choice in json.loads(line[6:])["choices"]:
                            text.append(choice["delta"].get("content") or "")

        async def direct_json() -> None:
            response = await http.post(f"{or_url}/chat/completions", json=ASK, headers=headers)
            response.json()

        plain_cfg = parse_config(config(or_url, None), "bench")
        exo_cfg = parse_config(config(or_url, dead), "bench")
        async with Router(plain_cfg, keys=keys, http=http) as plain, \
                Router(exo_cfg, keys=keys, http=http) as failing:
            async def refused() -> None:
                failing.forget_health()
                result = await failing.chat(ASK)
                assert [a.outcome for a in result.attempts] == ["refused", "ok"], result.attempts

            async def breaker_open() -> None:
                result = await failing.chat(ASK)
                assert result.attempts[0].outcome == "circuit-open", result.attempts

            results = {"direct": await timed(n, direct),
                       "direct parsed": await timed(n, direct_parsed),
                       "direct json": await timed(n, direct_json),
                       "router": await timed(n, lambda: plain.chat(ASK)),
                       "exo refused": await timed(max(100, n // 5), refused)}
            failing.forget_health()
            await failing.chat(ASK)
            results["breaker open"] = await timed(n, breaker_open)
            results["router (again)"] = await timed(n, lambda: plain.chat(ASK))
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.pop("BENCH_OR_KEY", None)
    proc, port = start_fake("openrouter")
    try:
        runs = [asyncio.run(run_once(args.requests, f"http://127.0.0.1:{port}/api/v1"))
                for _ in range(args.runs)]
    finally:
        proc.terminate()
        proc.wait(5)
    report(runs, args.json)


def report(runs: list[dict[str, list[float]]], as_json: bool) -> None:
    def median_of(name: str, q: float) -> float:
        return statistics.median(p(run[name], q) for run in runs)

    table = {name: {"p50": median_of(name, 50), "p99": median_of(name, 99)} for name in runs[0]}
    router_p50 = statistics.median([table["router"]["p50"], table["router (again)"]["p50"]])
    added = {
        "router added p50 (vs direct, stream read, no parsing)": router_p50 - table["direct"]["p50"],
        "router added p50 (vs direct parsed stream)": router_p50 - table["direct parsed"]["p50"],
        "router added p50 (vs direct non-streamed JSON)": router_p50 - table["direct json"]["p50"],
        "router added p99 (vs direct)": table["router"]["p99"] - table["direct"]["p99"],
        "exo refused failover added p50 (vs router direct to OpenRouter)":
            table["exo refused"]["p50"] - router_p50,
        "breaker open added p50 (vs router direct to OpenRouter)":
            table["breaker open"]["p50"] - router_p50,
        "router/direct p50 ratio": router_p50 / table["direct"]["p50"],
    }
    if as_json:
        print(json.dumps({"latency_ms": table, "added_ms": added}, indent=2))
        return
    print(f"medians over {len(runs)} runs (ms)")
    for name, row in table.items():
        print(f"  {name:<16} p50 {row['p50']:7.3f}   p99 {row['p99']:7.3f}")
    for name, value in added.items():
        print(f"  {name:<66} {value:+.3f}")


if __name__ == "__main__":
    main()
