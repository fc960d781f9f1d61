"""The local endpoint (`exo-bridge serve`) against a fake OpenRouter, side by side with calling
the fake directly, all on loopback, each in its own process. Latency and throughput use nginx
as the upstream and wrk as the load generator when they are installed (Debian `nginx-light`,
`wrk`), so the harness is not the bottleneck; the paced Python fake gives time to first token,
CPU per streamed reply and failover.

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
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from bench import compile_sources, cpu_seconds
from bench.nginx_upstream import NginxUpstream
from bench.router_overhead import KEY, dead_port

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-endpoint-token-000000000000"
MODEL = "meta-llama/llama-3.2-3b-instruct"
ASK = {"model": MODEL, "messages": [{"role": "user", "content": "say hello"}]}


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


_running: list[subprocess.Popen[str]] = []  # stopped at exit, even when a figure fails


class Endpoint:
    """`exo-bridge serve` in its own process."""

    def __init__(self, config: Path, data: Path):
        self.port = dead_port()
        env = {**os.environ, "EXO_BRIDGE_TOKEN": TOKEN, "BENCH_OR_KEY": KEY,
               "EXO_BRIDGE_DATA_DIR": str(data)}
        exe = str(Path(sys.executable).with_name("exo-bridge"))
        start = time.perf_counter()
        self.proc = subprocess.Popen([exe, "serve", "--port", str(self.port), "--config", str(config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     env=env)
        _running.append(self.proc)
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        self.startup_ms = (time.perf_counter() - start) * 1000
        assert "serving" in line, line
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def cpu_s(self) -> float:
        return cpu_seconds(self.proc.pid)

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


def wrk(url: str, token: str, seconds: int = 8, connections: int = 16) -> tuple[float, int]:
    """(requests/s, requests done) from wrk (a C load generator), POSTing the ask."""
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text(f"wrk.method = 'POST'\nwrk.body = '{json.dumps(ASK)}'\n"
                      "wrk.headers['Content-Type'] = 'application/json'\n"
                      f"wrk.headers['Authorization'] = 'Bearer {token}'\n")
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script),
                          f"{url}/chat/completions"], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    rate = float(next(line for line in out.splitlines() if line.startswith("Requests/sec")).split()[1])
    done = int(next(line for line in out.splitlines() if "requests in" in line).split()[0])
    return rate, done


async def fast_figures(n: int, tmp: Path, fast: NginxUpstream | None, paced_url: str,
                       http: httpx.AsyncClient) -> dict[str, float]:
    """Latency, throughput and CPU per request against the fastest upstream available."""
    stream_base, json_base = (fast.stream_base, fast.json_base) if fast else (paced_url, paced_url)
    endpoint = Endpoint(write_config(tmp, stream_base, None), tmp / "data")
    figures = {"start-up to ready (ms)": endpoint.startup_ms}
    direct, streamed = Calls(http, json_base, KEY), Calls(http, stream_base, KEY)
    ours = Calls(http, endpoint.url, TOKEN)
    d = await latencies(n, direct.json)
    o = await latencies(n, ours.json)
    s = await latencies(n, streamed.streamed)
    figures |= {"direct p50 (ms)": pct(d, 50), "endpoint p50 (ms)": pct(o, 50),
                "added p50, concurrency 1 (ms)": pct(o, 50) - pct(d, 50),
                "added p99, concurrency 1 (ms)": pct(o, 99) - pct(d, 99),
                "added p50 vs the same exchange streamed directly (ms)": pct(o, 50) - pct(s, 50)}
    if fast is not None and shutil.which("wrk"):
        figures["direct requests/s, concurrency 16"] = wrk(json_base, KEY)[0]
        cpu = endpoint.cpu_s()
        rate, done = wrk(endpoint.url, TOKEN)
        figures["endpoint requests/s, concurrency 16"] = rate
        figures["endpoint CPU per request, concurrency 16 (ms)"] = (endpoint.cpu_s() - cpu) / done * 1000
    else:
        figures["direct requests/s, concurrency 16"] = await throughput(n, 16, direct.json)
        cpu = endpoint.cpu_s()
        figures["endpoint requests/s, concurrency 16"] = await throughput(n, 16, ours.json)
        figures["endpoint CPU per request, concurrency 16 (ms)"] = (endpoint.cpu_s() - cpu) / n * 1000
    figures["peak RSS (MiB)"] = endpoint.peak_rss_mib()
    endpoint.close()
    return figures


async def paced_figures(n: int, tmp: Path, paced_url: str, long_url: str, fake_exo_503: str,
                        http: httpx.AsyncClient) -> dict[str, float]:
    """Time to first token, CPU per streamed reply and failover, against the paced Python fake
    (one write per chunk, as a real provider streams)."""
    figures: dict[str, float] = {}
    endpoint = Endpoint(write_config(tmp, paced_url, None), tmp / "data")
    direct, ours = Calls(http, paced_url, KEY), Calls(http, endpoint.url, TOKEN)
    d = await latencies(n // 2, direct.ttft)
    o = await latencies(n // 2, ours.ttft)
    figures["added time to first token p50 (ms)"] = pct(o, 50) - pct(d, 50)
    base = pct(await latencies(n // 2, ours.json), 50)
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
        failing = Endpoint(write_config(tmp, paced_url, exo_url), tmp / "data")
        calls = Calls(http, failing.url, TOKEN)
        await latencies(1, calls.json)  # the warm-up trips the breaker
        steady = await latencies(n // 2, calls.json)
        figures[f"{name}: added p50 once the breaker is open (ms)"] = pct(steady, 50) - base
        failing.close()
    return figures


async def measure(n: int, tmp: Path, urls: tuple[str, str, str],
                  fast: NginxUpstream | None) -> dict[str, float]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        return (await fast_figures(n, tmp, fast, urls[0], http)
                | await paced_figures(n, tmp, *urls, http))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    compile_sources()
    upstream, or_base = start_fake("openrouter", "--words", "5")
    long_upstream, long_base = start_fake("openrouter", "--words", "32")
    exo_503, exo_url = start_fake("exo", "--fault", "status", "--fault-status", "503")
    runs = []
    try:
        fast: NginxUpstream | None = NginxUpstream()
        print("fast upstream: nginx; load generator for concurrency 16: "
              + ("wrk" if shutil.which("wrk") else "httpx"))
    except FileNotFoundError as exc:
        fast = None
        print(f"({exc}; using the Python fake for every figure)")
    try:
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                urls = (f"{or_base}/api/v1", f"{long_base}/api/v1", exo_url)
                runs.append(asyncio.run(measure(args.requests, Path(tmp), urls, fast)))
    finally:
        for proc in (upstream, long_upstream, exo_503, *_running):
            proc.terminate()
            proc.wait(5)
        if fast is not None:
            fast.close()
    print(f"medians of {len(runs)} runs, {args.requests} requests each")
    for name in runs[0]:
        print(f"  {name:<58} {statistics.median(r[name] for r in runs):9.3f}")


if __name__ == "__main__":
    main()
