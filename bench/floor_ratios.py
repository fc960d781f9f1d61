"""Issue 19's ratios from one interleaved run: the floor, the streaming floor, `serve` and the
tray app, each in turn against the shared harness's fake upstream and load generator.

    .venv/bin/python -m bench.floor_ratios [--rounds 3] [--requests 2000] [--warmup 300]
        [--harness ../shared/bench] [--targets direct,floor,stream-floor,serve,tray]

Each round starts, for each target in turn, a fresh fake upstream (`fake_upstream.py`, 32
content chunks per streamed answer) and the target, warms it up with the harness's
`loadgen.py`, then sends `--requests` sequential non-streamed requests, then as many again 16 at
a time, and reads the target's CPU time from /proc around each phase. Targets:

- direct: the fake upstream itself (the baseline for "added" latency; no CPU figure)
- floor: the harness's `floor_proxy.py`, a bare aiohttp pass-through (one upstream body)
- stream-floor: `bench/floor_stream.py`, the same but streaming from upstream and joining the
  chunks into one answer, as exo-bridge does
- serve: `exo-bridge serve` from this tree
- tray: the desktop app from this tree, offscreen, its endpoint on the Qt loop

Interleaving the targets round by round keeps a slow spell of the machine from landing on one
target only. Prints medians (and each round) plus the ratios issue 19 sets targets for.

To measure a change, name another source tree after `@`: `--targets tray,tray@/tmp/change`
runs the tray from this tree and from /tmp/change (on PYTHONPATH) in turn, round by round.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import ROOT, compile_sources, cpu_seconds
from bench.router_overhead import dead_port

TOKEN = "bench-token-not-secret"
UPSTREAM_MODEL = "fake-model"
EXE = str(Path(sys.executable).with_name("exo-bridge"))
TARGETS = ("direct", "floor", "stream-floor", "serve", "tray")

CONFIG = """[[providers]]
id = "primary"
kind = "openai"
base_url = "{primary}"
priority = 0
api_key_env = "BENCH_KEY"

[[providers]]
id = "fallback"
kind = "openai"
base_url = "http://127.0.0.1:{dead}/v1"
priority = 1
api_key_env = "BENCH_KEY"

[models."bench-model"]
primary = "fake-model"
fallback = "fake-model"
"""


@dataclass
class Figures:
    cpu_ms: list[float] = field(default_factory=list)  # per request, sequential
    cpu_c16_ms: list[float] = field(default_factory=list)  # per request, 16 at a time
    p50_ms: list[float] = field(default_factory=list)  # sequential
    added_ms: list[float] = field(default_factory=list)  # p50 over direct's, same round


@dataclass
class Measured:
    p50_ms: float
    cpu_ms: float | None = None  # None: direct (the fake upstream is not measured)
    cpu_c16_ms: float | None = None


def wait_ready(url: str, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args!r} ended with {proc.returncode} before it was ready")
        try:
            httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} was not ready within {seconds:g}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Run:
    def __init__(self, args: argparse.Namespace, tmp: Path):
        self.args, self.tmp = args, tmp
        self.harness = Path(args.harness)

    def loadgen(self, base_url: str, model: str, n: int, mode: str = "sequential") -> dict[str, object]:
        done = subprocess.run(
            [sys.executable, str(self.harness / "loadgen.py"), "--base-url", base_url, "--model",
             model, "--api-key", TOKEN, "--mode", mode, "--concurrency", "16", "--n", str(n),
             "--warmup", "0"],
            capture_output=True, text=True, check=True)
        result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
        if result["ok"] != n:
            raise SystemExit(f"{base_url}: {result['ok']} of {n} requests answered: "
                             f"{result.get('errors')}")
        return result

    def upstream(self) -> tuple[subprocess.Popen[bytes], str]:
        port = dead_port()
        proc = subprocess.Popen([sys.executable, str(self.harness / "fake_upstream.py"), "--port",
                                 str(port), "--name", "primary"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/health", proc)
        return proc, f"{url}/v1"

    def target(self, target: str, upstream: str) -> tuple[subprocess.Popen[bytes], str, str]:
        name, _, tree = target.partition("@")
        port = dead_port()
        home = self.tmp / f"{name}-{time.monotonic_ns()}"
        home.mkdir()
        config = home / "config.toml"
        config.write_text(CONFIG.format(primary=upstream, dead=dead_port()) + (
            f"\n[server]\nenabled = true\nport = {port}\n" if name == "tray" else ""))
        env = {**os.environ, "BENCH_KEY": "sk-fake-upstream", "EXO_BRIDGE_TOKEN": TOKEN,
               "HOME": str(home), "EXO_BRIDGE_DATA_DIR": str(home / "data"),
               "XDG_RUNTIME_DIR": str(home), "QT_QPA_PLATFORM": "offscreen",
               "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
        if tree:
            env["PYTHONPATH"] = tree
        commands = {
            "floor": [sys.executable, str(self.harness / "floor_proxy.py"), "--port", str(port),
                      "--upstream", upstream],
            "stream-floor": [sys.executable, "-m", "bench.floor_stream", "--port", str(port),
                             "--upstream", upstream],
            "serve": [EXE, "serve", "--port", str(port), "--config", str(config)],
            "tray": [EXE, "--config", str(config)],
        }
        proc = subprocess.Popen(commands[name], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}/v1"
        wait_ready(f"{url}/models", proc)
        model = "bench-model" if name in ("serve", "tray") else UPSTREAM_MODEL
        return proc, url, model

    def measure(self, name: str) -> Measured:
        upstream, upstream_url = self.upstream()
        try:
            if name == "direct":
                self.loadgen(upstream_url, UPSTREAM_MODEL, self.args.warmup)
                return Measured(self.p50(self.loadgen(upstream_url, UPSTREAM_MODEL,
                                                      self.args.requests)))
            proc, url, model = self.target(name, upstream_url)
            try:
                self.loadgen(url, model, self.args.warmup)
                before = cpu_seconds(proc.pid)
                result = self.loadgen(url, model, self.args.requests)
                middle = cpu_seconds(proc.pid)
                self.loadgen(url, model, self.args.requests, "concurrent")
                after = cpu_seconds(proc.pid)
                per_request = 1000 / self.args.requests
                return Measured(self.p50(result), (middle - before) * per_request,
                                (after - middle) * per_request)
            finally:
                stop(proc)
        finally:
            stop(upstream)

    @staticmethod
    def p50(result: dict[str, object]) -> float:
        latency = result["latency_ms"]
        assert isinstance(latency, dict)
        return float(latency["p50"])


def ratio(top: list[float], bottom: list[float]) -> str:
    if not top or not bottom:
        return "n/a"
    return f"{statistics.median(top) / statistics.median(bottom):.2f}x"


def median_of(values: list[float], sign: str = "") -> str:
    """The median, then each round's figure."""
    if not values:
        return "—"
    return (f"{statistics.median(values):{sign}.2f} "
            f"({', '.join(f'{v:{sign}.2f}' for v in values)})")


def report(figures: dict[str, Figures]) -> None:
    print("\n| median (rounds) | CPU per request, ms: sequential | concurrency 16 | p50, ms | "
          "added p50 over direct, ms |\n|---|---|---|---|---|")
    for name, f in figures.items():
        print(f"| {name} | {median_of(f.cpu_ms)} | {median_of(f.cpu_c16_ms)} | "
              f"{statistics.median(f.p50_ms):.2f} | {median_of(f.added_ms, '+')} |")
    pairs = [("serve", "floor"), ("serve", "stream-floor"), ("stream-floor", "floor"),
             ("tray", "serve")]
    print("\n| ratio of medians | CPU, sequential | CPU, concurrency 16 | added p50 |\n"
          "|---|---|---|---|")
    for top, bottom in pairs:
        if top in figures and bottom in figures:
            high, low = figures[top], figures[bottom]
            print(f"| {top} / {bottom} | {ratio(high.cpu_ms, low.cpu_ms)} | "
                  f"{ratio(high.cpu_c16_ms, low.cpu_c16_ms)} | {ratio(high.added_ms, low.added_ms)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--harness", default=str(ROOT.parent / "shared" / "bench"))
    parser.add_argument("--targets", default=",".join(TARGETS))
    args = parser.parse_args()
    names = [name for name in args.targets.split(",") if name]
    if unknown := {name.partition("@")[0] for name in names} - set(TARGETS):
        raise SystemExit(f"unknown targets {sorted(unknown)}; choose from {', '.join(TARGETS)}")
    if not (Path(args.harness) / "loadgen.py").is_file():
        raise SystemExit(f"{args.harness} has no loadgen.py: pass --harness (the shared bench)")
    compile_sources()
    tmp = Path(tempfile.mkdtemp(prefix="floor-ratios-"))
    figures = {name: Figures() for name in names}
    run = Run(args, tmp)
    try:
        for round_no in range(1, args.rounds + 1):
            direct_p50 = None
            for name in names:
                got, kept = run.measure(name), figures[name]
                kept.p50_ms.append(got.p50_ms)
                if got.cpu_ms is not None and got.cpu_c16_ms is not None:
                    kept.cpu_ms.append(got.cpu_ms)
                    kept.cpu_c16_ms.append(got.cpu_c16_ms)
                    print(f"round {round_no} {name}: p50 {got.p50_ms:.2f} ms, CPU per request "
                          f"{got.cpu_ms:.3f} ms sequential, {got.cpu_c16_ms:.3f} ms at 16",
                          flush=True)
                else:
                    print(f"round {round_no} {name}: p50 {got.p50_ms:.2f} ms", flush=True)
                if name == "direct":
                    direct_p50 = got.p50_ms
                elif direct_p50 is not None:
                    kept.added_ms.append(got.p50_ms - direct_p50)
        report(figures)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
