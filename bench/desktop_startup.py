"""The tray app's start-up and idle cost (offscreen Qt, no display needed).

    .venv/bin/python -m bench.desktop_startup [--runs 10] [--idle 60]

1. `exo-bridge --quit-after-ready`: the app's own "ready in N ms" (process start to icon shown
   and router running), and the wall time of the whole process, median of N runs, beside a bare
   `python -c pass` in the same run.
2. One app left running: RSS after start-up (before any window), and CPU used over --idle
   seconds of idleness (exo probes every 5 s against a local fake exo).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.endpoint_bench import TICKS, start_fake

EXE = str(Path(sys.executable).with_name("exo-bridge"))


def environment(tmp: Path, exo_url: str) -> dict[str, str]:
    config = tmp / "config.toml"
    config.write_text(f'[[providers]]\nid = "exo"\nkind = "exo"\nbase_urls = ["{exo_url}"]\n'
                      '\n[server]\nport = 0\n')
    return {**os.environ, "QT_QPA_PLATFORM": "offscreen", "EXO_BRIDGE_CONFIG": str(config),
            "EXO_BRIDGE_DATA_DIR": str(tmp / "data"), "EXO_BRIDGE_TOKEN": "b" * 32,
            "XDG_RUNTIME_DIR": str(tmp), "XDG_CONFIG_HOME": str(tmp / "config")}


def ready_times(env: dict[str, str], runs: int) -> tuple[list[float], list[float], list[float]]:
    ready, wall, bare = [], [], []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        out = subprocess.run([EXE, "--quit-after-ready"], env=env, capture_output=True, text=True,
                             check=True).stdout
        wall.append((time.perf_counter() - start) * 1000)
        ready.append(float(out.split()[2]))
    return ready, wall, bare


def proc_figures(pid: int) -> tuple[float, float]:
    """(RSS MiB, CPU seconds so far)."""
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:")) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return rss, (int(fields[11]) + int(fields[12])) / TICKS


def idle(env: dict[str, str], seconds: float) -> tuple[float, float]:
    proc = subprocess.Popen([EXE], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # ready
        time.sleep(3)  # first probes, key checks, price lists
        rss, cpu_before = proc_figures(proc.pid)
        time.sleep(seconds)
        _, cpu_after = proc_figures(proc.pid)
        return rss, (cpu_after - cpu_before) / seconds * 100
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--idle", type=float, default=60.0)
    args = parser.parse_args()
    exo, exo_url = start_fake("exo")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = environment(Path(tmp), exo_url)
            ready, wall, bare = ready_times(env, args.runs)
            rss, cpu = idle(env, args.idle)
    finally:
        exo.terminate()
        exo.wait(5)
    print(f"medians of {args.runs} runs")
    print(f"  ready (process start -> icon shown, router running)  {statistics.median(ready):7.0f} ms")
    print(f"  whole --quit-after-ready process                      {statistics.median(wall):7.0f} ms")
    print(f"  bare `python -c pass`, same run                       {statistics.median(bare):7.0f} ms")
    print(f"  RSS after start-up, no window open                    {rss:7.1f} MiB")
    print(f"  CPU while idle for {args.idle:.0f} s (exo probed every 5 s)       {cpu:7.2f} % of one core")


if __name__ == "__main__":
    main()
