"""The tray app's start-up and idle cost (offscreen Qt, no display needed).

    .venv/bin/python -m bench.desktop_startup [--runs 10] [--idle 60]

1. `exo-bridge --quit-after-ready`: the app's own "ready in N ms" (process start to icon shown
   and router running; aiohttp and httpx are still loading in a worker thread), the moment the
   endpoint was up and every provider checked (the HTTP stack in use), and the wall time of the
   whole process, medians of N runs, beside a bare `python -c pass` in the same run.
2. RSS after start-up (before any window), in up to 5 fresh processes; then one app left
   running: CPU used over --idle seconds of idleness (exo probes every 5 s against a fake exo).
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

from bench import compile_sources, cpu_seconds
from bench.endpoint_bench import start_fake

EXE = str(Path(sys.executable).with_name("exo-bridge"))


def environment(tmp: Path, exo_url: str) -> dict[str, str]:
    config = tmp / "config.toml"
    config.write_text(f'[[providers]]\nid = "exo"\nkind = "exo"\nbase_urls = ["{exo_url}"]\n'
                      '\n[server]\nport = 0\n')
    return {**os.environ, "QT_QPA_PLATFORM": "offscreen", "EXO_BRIDGE_CONFIG": str(config),
            "EXO_BRIDGE_DATA_DIR": str(tmp / "data"), "EXO_BRIDGE_TOKEN": "b" * 32,
            "XDG_RUNTIME_DIR": str(tmp), "XDG_CONFIG_HOME": str(tmp / "config")}


def ready_times(env: dict[str, str], runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"ready": [], "checked": [], "wall": [], "bare": []}
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times["bare"].append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        done = subprocess.run([EXE, "--quit-after-ready"], env=env, capture_output=True, text=True,
                              check=True)
        times["wall"].append((time.perf_counter() - start) * 1000)
        times["ready"].append(float(done.stdout.split()[2]))
        checked = next(line for line in done.stderr.splitlines() if "providers checked at" in line)
        times["checked"].append(float(checked.split(" at ")[1].split()[0]))
    return times


def idle_rss(env: dict[str, str], runs: int) -> list[float]:
    """RSS 3 s after start-up (first probes done), no window open, in fresh processes."""
    found = []
    for _ in range(runs):
        proc = subprocess.Popen([EXE], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
        try:
            assert proc.stdout is not None
            proc.stdout.readline()  # ready
            time.sleep(3)
            found.append(proc_figures(proc.pid)[0])
        finally:
            proc.terminate()
            proc.wait(10)
    return found


def proc_figures(pid: int) -> tuple[float, float]:
    """(RSS MiB, CPU seconds so far)."""
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:")) / 1024
    return rss, cpu_seconds(pid)


def idle_cpu(env: dict[str, str], seconds: float) -> float:
    proc = subprocess.Popen([EXE], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # ready
        time.sleep(3)  # first probes, key checks, price lists
        cpu_before = proc_figures(proc.pid)[1]
        time.sleep(seconds)
        return (proc_figures(proc.pid)[1] - cpu_before) / seconds * 100
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--idle", type=float, default=60.0)
    args = parser.parse_args()
    compile_sources()
    exo, exo_url = start_fake("exo")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = environment(Path(tmp), exo_url)
            times = ready_times(env, args.runs)
            rss = idle_rss(env, min(args.runs, 5))
            cpu = idle_cpu(env, args.idle)
    finally:
        exo.terminate()
        exo.wait(5)
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"medians of {args.runs} runs")
    print(f"  ready (process start -> icon shown, router running)  {median['ready']:7.0f} ms")
    print(f"  endpoint up, providers checked (HTTP stack loaded)    {median['checked']:7.0f} ms")
    print(f"  whole --quit-after-ready process                      {median['wall']:7.0f} ms")
    print(f"  bare `python -c pass`, same run                       {median['bare']:7.0f} ms")
    print(f"  RSS after start-up, no window open (median of {len(rss)})     "
          f"{statistics.median(rss):7.1f} MiB (range {min(rss):.1f}-{max(rss):.1f})")
    print(f"  CPU while idle for {args.idle:.0f} s (exo probed every 5 s)       {cpu:7.2f} % of one core")


if __name__ == "__main__":
    main()
