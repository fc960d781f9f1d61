"""The local endpoint (`exo-bridge serve`) against a fake OpenRouter, side by side with calling
the fake directly, all on loopback, each in its own process.

    .venv/bin/python -m bench.endpoint_bench [--requests 1000] [--runs 3]

Reports medians of the runs: added latency p50/p99 at concurrency 1 (non-streaming), added time
to first token (streaming), requests/s and the endpoint's CPU per request at concurrency 16,
its CPU per 32-chunk streamed reply, what a refused or 503-answering exo adds once its breaker is
open, start-up to ready, and peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from bench.router_overhead import KEY, dead_port

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-endpoint-token-000000000000"
MODEL = "meta-llama/llama-3.2-3b-instruct"
ASK = {"model": MODEL, "messages": [{"role": "user", "content": "say hello"}]}
TICKS = os.sysconf("SC_CLK_TCK")


def start_fake(*extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.serve", *extra, "--key", KEY],
                            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, f"http://127.0.0.1:{proc.stdout.readline().split()[1]}"


def write_config(directory: Path, or_url: str, exo_url: str | None) -> Path:
    exo = (f'[[providers]]\nid = "exo"\nkind = "exo"\nbase_urls = ["{exo_url}"]\npriority = 0\n\n'
           if exo_url else "")
    path = directory / f"config-{len(list(directory.glob('config-*')))}.toml"
    path.write_text(exo + f'[[providers]]\nid = "openrouter"\nkind = "openrouter"\n'
                    f'base_url = "{or_url}"\npriority = 1\npaid = true\n'
                    'api_key_env = "BENCH_OR_KEY"\n')
    return path


class Endpoint:
    """`exo-bridge serve` in its own process."""

    def __init__(self, config: Path, data: Path):
        self.port = dead_port()
        env = {**os.environ, "EXO_BRIDGE_TOKEN": TOKEN, "BENCH_OR_KEY": KEY,
               "EXO_BRIDGE_DATA_DIR": str(data)}
        exe = str(Path(sys.executable).with_name("exo-bridge"))
        start = time.perf_counter()
        self.proc = subprocess.Popen([exe, "serve", "--port", str(self.port), "--config", str(config)],
                                     stderr=subprocess.PIPE, text=True, env=env)
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        self.startup_ms = (time.perf_counter() - start) * 1000
        assert "serving" in line, line
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


async def latencies(n: int, call: Callable[[], Awaitable[float | None]]) -> list[float]:
    for _ in range(min(50, n)):
        await call()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        first = await call()
        samples.append(first if first is not None else (time.perf_counter() - start) * 1000)
    return samples


async def throughput(n: int, concurrency: int, call: Callable[[], Awaitable[object]]) -> float:
    async def worker() -> None:
        for _ in range(n // concurrency):
            await call()
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (n // concurrency * concurrency) / (time.perf_counter() - start)


def pct(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100)[q - 1]


class Calls:
    def __init__(self, http: httpx.AsyncClient, url: str, auth: str):
        self.http, self.url, self.headers = http, url, {"authorization": f"Bearer {auth}"}

    async def json(self) -> None:
        response = await self.http.post(f"{self.url}/chat/completions", json=ASK, headers=self.headers)
        assert response.status_code == 200, response.text
        response.json()

    async def streamed(self) -> None:
        """The same answer fetched as a stream and assembled: the exchange the router makes."""
        text = []
        async with self.http.stream("POST", f"{self.url}/chat/completions",
                                    json={**ASK, "stream": True}, headers=self.headers) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: {"):
                    for choice in json.loads(line[6:])["choices"]:
                        text.append(choice["delta"].get("content") or "")

    async def ttft(self) -> float | None:
        """Milliseconds to the first content chunk (the rest is read to the end)."""
        start = time.perf_counter()
        first = None
        async with self.http.stream("POST", f"{self.url}/chat/completions",
                                    json={**ASK, "stream": True}, headers=self.headers) as response:
            async for line in response.aiter_lines():
                if first is None and '"content": "w' in line.replace('":"', '": "'):
                    first = (time.perf_counter() - start) * 1000
        return first


async def measure(n: int, tmp: Path, or_url: str, long_url: str, fake_exo_503: str) -> dict[str, float]:
    figures: dict[str, float] = {}
    endpoint = Endpoint(write_config(tmp, or_url, None), tmp / "data")
    figures["start-up to ready (ms)"] = endpoint.startup_ms
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        direct = Calls(http, or_url, KEY)
        ours = Calls(http, endpoint.url, TOKEN)
        d = await latencies(n, direct.json)
        o = await latencies(n, ours.json)
        s = await latencies(n, direct.streamed)
        figures |= {"direct p50 (ms)": pct(d, 50), "endpoint p50 (ms)": pct(o, 50),
                    "added p50, concurrency 1 (ms)": pct(o, 50) - pct(d, 50),
                    "added p99, concurrency 1 (ms)": pct(o, 99) - pct(d, 99),
                    "added p50 vs the same exchange streamed directly (ms)": pct(o, 50) - pct(s, 50)}
        d = await latencies(n // 2, direct.ttft)
        o = await latencies(n // 2, ours.ttft)
        figures["added time to first token p50 (ms)"] = pct(o, 50) - pct(d, 50)
        figures["direct requests/s, concurrency 16"] = await throughput(n, 16, direct.json)
        cpu = endpoint.cpu_s()
        figures["endpoint requests/s, concurrency 16"] = await throughput(n, 16, ours.json)
        figures["endpoint CPU per request, concurrency 16 (ms)"] = (endpoint.cpu_s() - cpu) / n * 1000
        figures["peak RSS (MiB)"] = endpoint.peak_rss_mib()
        endpoint.close()
        long = Endpoint(write_config(tmp, long_url, None), tmp / "data")
        calls = Calls(http, long.url, TOKEN)
        await latencies(20, calls.ttft)
        cpu = long.cpu_s()
        await latencies(n // 4, calls.ttft)
        figures["endpoint CPU per 32-chunk streamed reply (ms)"] = (
            (long.cpu_s() - cpu) / (n // 4 + min(50, n // 4)) * 1000)
        long.close()
        for name, exo_url in (("exo refused", f"http://127.0.0.1:{dead_port()}"),
                              ("exo answering 503", fake_exo_503)):
            failing = Endpoint(write_config(tmp, or_url, exo_url), tmp / "data")
            calls = Calls(http, failing.url, TOKEN)
            first = await latencies(1, calls.json)  # warm-up trips the breaker
            steady = await latencies(n // 2, calls.json)
            figures[f"{name}: added p50 once the breaker is open (ms)"] = pct(steady, 50) - figures[
                "endpoint p50 (ms)"]
            del first
            failing.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    upstream, or_base = start_fake("openrouter", "--words", "5")
    long_upstream, long_base = start_fake("openrouter", "--words", "32")
    exo_503, exo_url = start_fake("exo", "--fault", "status", "--fault-status", "503")
    runs = []
    try:
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                runs.append(asyncio.run(measure(args.requests, Path(tmp), f"{or_base}/api/v1",
                                                f"{long_base}/api/v1", exo_url)))
    finally:
        for proc in (upstream, long_upstream, exo_503):
            proc.terminate()
            proc.wait(5)
    print(f"medians of {len(runs)} runs, {args.requests} requests each")
    for name in runs[0]:
        print(f"  {name:<58} {statistics.median(r[name] for r in runs):9.3f}")


if __name__ == "__main__":
    main()
