"""The tray app as a user runs it (offscreen Qt, the endpoint on), for hours compressed.

    .venv/bin/python -m bench.tray_soak [--requests 10000] [--probe-hours 24] [--quick]

1. Requests: the tray app against a fake exo cluster and a fake OpenRouter (each in its own process),
   ``--requests`` through its endpoint: sequential, streamed, concurrent (16 at once) and a
   failover stretch (exo killed, then back on the same port). Every request must be answered
   (exo, or OpenRouter while exo is down); the ledger must hold one answered request per answer.
2. Idle: a second tray app with ``[health] exo_probe_interval_s`` shortened so that
   ``--probe-hours`` of 5-second probes happen in a few minutes, nothing else to do.

For each: requests or probes, RSS and open files at start and end. Exits 1 when the app died,
a request went unanswered, RSS grew by 20 MiB or more, or the open-file count grew.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import ROOT, compile_sources

EXE = str(Path(sys.executable).with_name("exo-bridge"))
TOKEN = "soak-endpoint-token-0000000000000"
OR_KEY = "sk-or-soak-0123456789abcdef"
MODEL = "llama-3.2-3b"
ASK = {"model": MODEL, "messages": [{"role": "user", "content": "say hello"}]}
RSS_GROWTH_LIMIT_MIB = 20.0
PROBE_INTERVAL_S = 5.0  # the default; the idle run compresses hours of these
POOL_SLACK = 4  # keep-alive connections a probe may hold open at the moment of a sample


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Fake:
    """A fake provider in its own process (tests.fakes.serve), restartable on its port."""

    def __init__(self, flavor: str, *extra: str):
        self.flavor, self.extra, self.port = flavor, extra, free_port()
        self.proc: subprocess.Popen[str] | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.serve", self.flavor, "--port", str(self.port),
             "--no-record", *self.extra], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True)
        assert self.proc.stdout is not None
        self.proc.stdout.readline()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hits(self, path: str) -> int:
        stats = httpx.get(f"{self.url}/_fake/stats", timeout=10).json()
        return int(stats["hits"].get(path, 0))


@dataclass
class Sample:
    rss_mib: float
    fds: int
    sockets: int  # of fds: pooled keep-alive connections come and go with the traffic


def sample(pid: int) -> Sample:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    targets = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
    return Sample(rss / 1024, len(targets), sum(t.startswith("socket:") for t in targets))


def write_config(directory: Path, exo: Fake, openrouter: Fake, port: int,
                 probe_interval_s: float) -> Path:
    path = directory / "config.toml"
    path.write_text(f"""\
[[providers]]
id = "exo"
kind = "exo"
base_urls = ["{exo.url}"]

[[providers]]
id = "openrouter"
kind = "openrouter"
base_url = "{openrouter.url}/api/v1"
priority = 1
paid = true
api_key_env = "OPENROUTER_API_KEY"

[models."{MODEL}"]
exo = "mlx-community/Llama-3.2-3B-Instruct-4bit"
openrouter = "meta-llama/llama-3.2-3b-instruct"

[server]
port = {port}

[health]
exo_probe_interval_s = {probe_interval_s}
""")
    return path


class TrayApp:
    def __init__(self, directory: Path, config: Path):
        self.directory = directory
        self.env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "EXO_BRIDGE_CONFIG": str(config),
                    "EXO_BRIDGE_DATA_DIR": str(directory / "data"),
                    "EXO_BRIDGE_STATE_DIR": str(directory / "state"), "EXO_BRIDGE_TOKEN": TOKEN,
                    "OPENROUTER_API_KEY": OR_KEY, "XDG_RUNTIME_DIR": str(directory),
                    "XDG_CONFIG_HOME": str(directory / "xdg"), "TMPDIR": str(directory)}
        self.log = open(directory / "tray.log", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen([EXE], env=self.env, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("ready in"), f"the tray did not start: {line!r}"

    def wait_for_endpoint(self, port: int) -> None:
        """"Ready" is the icon; the endpoint listens a moment later."""
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError("the endpoint did not come up")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(30)
        self.log.close()
        return code

    def answered_in_ledger(self) -> int:
        done = subprocess.run([EXE, "usage", "--json", "--days", "2"], env=self.env,
                              capture_output=True, text=True, check=True)
        return int(json.loads(done.stdout)["totals"]["requests"])


@dataclass
class Tally:
    sent: int = 0
    answered: int = 0
    by: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)


class Client:
    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/v1/chat/completions"
        self.headers = {"Authorization": f"Bearer {TOKEN}"}
        self.tally = Tally()

    async def one(self, http: httpx.AsyncClient, streamed: bool) -> None:
        self.tally.sent += 1
        try:
            if streamed:
                await self._streamed(http)
            else:
                response = await http.post(self.url, json=ASK, headers=self.headers)
                response.raise_for_status()
                assert response.json()["choices"][0]["message"]["content"]
                self.tally.by[response.headers["x-exo-bridge-provider"]] += 1
            self.tally.answered += 1
        except (httpx.HTTPError, AssertionError, KeyError, ValueError) as exc:
            self.tally.failures[type(exc).__name__] += 1

    async def _streamed(self, http: httpx.AsyncClient) -> None:
        body = {**ASK, "stream": True}
        async with http.stream("POST", self.url, json=body, headers=self.headers) as response:
            response.raise_for_status()
            text = "".join([line async for line in response.aiter_lines()])
        assert text.endswith("data: [DONE]"), text[-200:]
        self.tally.by[response.headers["x-exo-bridge-provider"]] += 1

    async def until_served_by(self, provider: str, timeout_s: float) -> bool:
        """Ask once a tenth of a second until ``provider`` answers (fail-back)."""
        before, end = self.tally.by[provider], time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=30) as http:
            while self.tally.by[provider] == before and time.monotonic() < end:
                await self.one(http, streamed=False)
                await asyncio.sleep(0.1)
        return self.tally.by[provider] > before

    async def run(self, n: int, *, streamed: bool = False, concurrency: int = 1) -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(timeout=30, limits=limits) as http:
            async def worker(count: int) -> None:
                for _ in range(count):
                    await self.one(http, streamed)
            await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))


async def request_soak(directory: Path, total: int) -> dict[str, object]:
    exo, openrouter = Fake("exo", "--cluster"), Fake("openrouter", "--key", OR_KEY)
    port = free_port()
    app = TrayApp(directory, write_config(directory, exo, openrouter, port, PROBE_INTERVAL_S))
    client = Client(port)
    try:
        app.wait_for_endpoint(port)
        await client.run(200)  # warm-up: every path taken once, pools and caches filled
        start = await quiet_sample(app)
        started = time.perf_counter()
        share = total // 10
        await client.run(3 * share)
        await client.run(2 * share, streamed=True)
        await client.run(3 * share, concurrency=16)
        exo.stop()  # exo goes down: failover, then back on the same port: fail-back
        await client.run(share)
        exo.start()
        back = await client.until_served_by("exo", 3 * PROBE_INTERVAL_S)
        await client.run(total - 9 * share, streamed=True, concurrency=8)
        seconds = time.perf_counter() - started
        end = await quiet_sample(app)
        alive = app.alive()
    finally:
        code = app.stop()
        exo.stop()
        openrouter.stop()
    return {"phase": "requests", "sent": client.tally.sent - 200, "answered":
            client.tally.answered - 200, "by": dict(client.tally.by),
            "failures": dict(client.tally.failures), "seconds": round(seconds, 1),
            "failed_back": back, "alive": alive, "exit": code, "start": start, "end": end,
            "ledger": app.answered_in_ledger(), "total_sent": client.tally.sent}


async def quiet_sample(app: TrayApp) -> Sample:
    """RSS and open files once pooled connections have expired (keep-alive 5 s, closed at the
    pool's next sweep) and a collection has run: what stays, not what is passing through."""
    await asyncio.sleep(12)
    return sample(app.proc.pid)


async def idle_soak(directory: Path, probe_hours: float, interval_s: float) -> dict[str, object]:
    # a cluster in use: its whole /state ~450 KB (the probes read three small parts of it)
    exo, openrouter = Fake("exo", "--cluster", "--busy-tasks", "30"), Fake("openrouter", "--key", OR_KEY)
    wanted = int(probe_hours * 3600 / PROBE_INTERVAL_S)
    app = TrayApp(directory, write_config(directory, exo, openrouter, free_port(), interval_s))
    try:
        start, probes_before = await quiet_sample(app), exo.hits("/node_id")
        started = time.perf_counter()
        samples = [start]
        while exo.hits("/node_id") - probes_before < wanted and app.alive():
            await asyncio.sleep(5)
            samples.append(sample(app.proc.pid))
        seconds = time.perf_counter() - started
        probes = exo.hits("/node_id") - probes_before
        end = await quiet_sample(app)
        alive = app.alive()
    finally:
        code = app.stop()
        exo.stop()
        openrouter.stop()
    return {"phase": "idle", "probes": probes, "hours_covered": round(probes * PROBE_INTERVAL_S
                                                                       / 3600, 1),
            "seconds": round(seconds, 1), "alive": alive, "exit": code, "start": start,
            "end": end, "peak_rss_mib": round(max(s.rss_mib for s in samples), 1)}


def verdict(result: dict[str, object]) -> list[str]:
    start, end = result["start"], result["end"]
    assert isinstance(start, Sample) and isinstance(end, Sample)
    problems = []
    if not result["alive"] or result["exit"] != 0:
        problems.append(f"the app died or did not quit cleanly (exit {result['exit']})")
    if result["phase"] == "requests":
        if result["answered"] != result["sent"]:
            problems.append(f"{result['sent']} sent, {result['answered']} answered")
        if result["ledger"] != result["total_sent"]:
            problems.append(f"the ledger holds {result['ledger']} answers of {result['total_sent']}")
    if end.rss_mib - start.rss_mib >= RSS_GROWTH_LIMIT_MIB:
        problems.append(f"RSS grew {end.rss_mib - start.rss_mib:.1f} MiB")
    if end.fds - end.sockets > start.fds - start.sockets or end.sockets > start.sockets + POOL_SLACK:
        problems.append(f"open files {start.fds} -> {end.fds} (sockets {start.sockets} -> "
                        f"{end.sockets})")
    return problems


def report(result: dict[str, object]) -> None:
    start, end = result["start"], result["end"]
    assert isinstance(start, Sample) and isinstance(end, Sample)
    if result["phase"] == "requests":
        print(f"requests: {result['answered']:,} answered of {result['sent']:,} sent in "
              f"{result['seconds']} s (served by {result['by']}; failures {result['failures']}; "
              f"fail-back {'yes' if result['failed_back'] else 'NO'}); the ledger holds "
              f"{result['ledger']:,} answers of {result['total_sent']:,} (warm-up included)")
    else:
        print(f"idle: {result['probes']:,} exo probes = {result['hours_covered']} h of 5-second "
              f"probes, in {result['seconds']} s; peak RSS {result['peak_rss_mib']} MiB")
    print(f"  RSS {start.rss_mib:.1f} -> {end.rss_mib:.1f} MiB "
          f"({end.rss_mib - start.rss_mib:+.1f}); open files {start.fds} -> {end.fds} "
          f"(of them sockets {start.sockets} -> {end.sockets}); "
          f"alive to the end: {result['alive']}, exit {result['exit']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--probe-hours", type=float, default=24.0)
    parser.add_argument("--probe-interval", type=float, default=0.005,
                        help="the idle run's exo_probe_interval_s (seconds)")
    parser.add_argument("--quick", action="store_true", help="1,000 requests, 1 hour of probes")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.probe_hours = 1_000, 1.0
    compile_sources()
    failed = False
    with tempfile.TemporaryDirectory(prefix="exo-bridge-soak-") as tmp:
        for name, soak in (("requests", lambda d: request_soak(d, args.requests)),
                           ("idle", lambda d: idle_soak(d, args.probe_hours, args.probe_interval))):
            directory = Path(tmp) / name
            directory.mkdir()
            result = asyncio.run(soak(directory))
            report(result)
            for problem in verdict(result):
                failed = True
                print(f"  FAILED: {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
