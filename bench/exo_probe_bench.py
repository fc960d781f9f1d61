"""exo's probes, before and after issue 16, and warming a model on exo until "back to free".

    .venv/bin/python -m bench.exo_probe_bench [--probes 200] [--busy-tasks 30] [--idle 60]
                                              [--warm-runs 3] [--before 9aaf3c0]

1. Bytes and CPU per probe against a fake exo cluster (its own process) whose whole ``/state``
   weighs hundreds of KB (``--busy-tasks`` requests in flight, each with its conversation):
   the probe as it was at ``--before`` (``/node_id``, ``/v1/models`` and the whole ``/state``
   every time; its code taken from git) against today's (``/node_id`` and three small parts).
   CPU is this process's (the client's) per probe, the fake's excluded.
2. The tray app's CPU while idle (offscreen, exo probed every 5 s) against the same cluster, for
   the code at ``--before`` and today's (``--idle`` seconds each; 0 skips it).
3. A request for a model exo can run but has not loaded (``warm_on_exo = "always"``): the cloud
   answers; the model is placed, downloaded and loaded in the fake cluster; the time until the
   companion announces it ready ("back to free") and the next request is answered by exo; and
   how much of it came after the fake's runners were ready (the companion's own delay).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import types
from io import BytesIO
from pathlib import Path
from typing import Any

from bench import ROOT, compile_sources
from bench.desktop_startup import EXE, proc_figures

BEFORE = "9aaf3c0"  # main when issue 16 began


def start_cluster(busy_tasks: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.serve", "exo", "--cluster",
                             "--busy-tasks", str(busy_tasks)], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, f"http://127.0.0.1:{proc.stdout.readline().split()[1]}"


def old_adapter(commit: str) -> Any:
    """The exo adapter as it was at ``commit`` (its module's text from git)."""
    source = subprocess.run(["git", "show", f"{commit}:router/providers/exo.py"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    module = types.ModuleType("bench_exo_before")
    exec(compile(source, "exo.py@" + commit, "exec"), module.__dict__)
    return module.Exo()


async def stats(http: Any, url: str) -> dict[str, Any]:
    return dict((await http.get(f"{url}/_fake/stats")).json())


async def probe_cost(url: str, probes: int, commit: str) -> dict[str, dict[str, float]]:
    from router import Router, parse_config
    from router.providers.exo import Exo

    config = parse_config(f'[[providers]]\nid = "exo"\nkind = "exo"\nbase_urls = ["{url}"]\n', "b")
    provider = config.provider("exo")
    figures = {}
    async with Router(config) as router:
        http = await router.http()
        for name, adapter in (("before", old_adapter(commit)), ("after", Exo())):
            await adapter.probe(http, provider, None)  # the first look (catalogue, names, ...)
            before = await stats(http, url)
            cpu = time.process_time()
            for _ in range(probes):
                snapshot = await adapter.probe(http, provider, None)
            cpu = time.process_time() - cpu
            after = await stats(http, url)
            assert snapshot.ready, snapshot.detail
            sent = sum(after["served_bytes"].values()) - sum(before["served_bytes"].values())
            calls = sum(after["hits"].values()) - sum(before["hits"].values()) - 1
            figures[name] = {"bytes": sent / probes, "cpu_ms": cpu / probes * 1000,
                             "requests": calls / probes}
        whole = (await http.get(f"{url}/state")).content
        figures["state"] = {"bytes": len(whole)}
    return figures


def tray_idle_cpu(url: str, seconds: float, pythonpath: str | None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text(f'[[providers]]\nid = "exo"\nkind = "exo"\nbase_urls = ["{url}"]\n'
                          '\n[server]\nport = 0\n')
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "EXO_BRIDGE_CONFIG": str(config),
               "EXO_BRIDGE_DATA_DIR": str(Path(tmp) / "data"), "EXO_BRIDGE_TOKEN": "b" * 32,
               "EXO_BRIDGE_STATE_DIR": str(Path(tmp) / "state"),
               "XDG_RUNTIME_DIR": tmp, "XDG_CONFIG_HOME": str(Path(tmp) / "config")}
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        proc = subprocess.Popen([EXE], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
        try:
            assert proc.stdout is not None
            proc.stdout.readline()  # ready
            time.sleep(3)
            before = proc_figures(proc.pid)[1]
            time.sleep(seconds)
            return (proc_figures(proc.pid)[1] - before) / seconds * 100
        finally:
            proc.terminate()
            proc.wait(10)


def old_tree(commit: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", commit, "router", "desktop"], cwd=ROOT,
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


async def warm_once(download_bytes_s: float) -> dict[str, float]:
    """One request for an unplaced model until exo answers it (fakes in this process)."""
    from router import ModelWarming, Router, Stage, parse_config
    from tests.fakes.exo_cluster import LLAMA, FakeCluster
    from tests.fakes.provider import FakeProvider

    cluster = FakeCluster(download_speed=download_bytes_s, layers_per_s=28.0, warmup_s=0.5)
    exo, cloud = FakeProvider("exo", cluster=cluster), FakeProvider("openrouter")
    text = (f'[[providers]]\nid = "exo"\nkind = "exo"\nbase_urls = ["{exo.origin}"]\n\n'
            f'[[providers]]\nid = "openrouter"\nkind = "openrouter"\nbase_url = "{cloud.base_url}"\n'
            f'priority = 1\npaid = true\napi_key_env = "BENCH_OR_KEY"\n\n'
            f'[models."llama-3.2-3b"]\nexo = "{LLAMA}"\nopenrouter = "meta-llama/llama-3.2-3b-instruct"\n'
            'warm_on_exo = "always"\n')
    os.environ["BENCH_OR_KEY"] = "sk-or-bench"
    ask = {"model": "llama-3.2-3b", "messages": [{"role": "user", "content": "hi"}]}
    ready = asyncio.Event()
    try:
        async with Router(parse_config(text, "bench")) as router:
            router.companion.start()
            router.subscribe(lambda e: ready.set() if isinstance(e, ModelWarming)
                             and e.stage is Stage.READY else None)
            await router.check_all()
            start = time.monotonic()
            first = await router.chat(ask)
            cloud_at = time.monotonic()
            await asyncio.wait_for(ready.wait(), 300)
            ready_at = time.monotonic()
            free = await router.chat(ask)
            free_at = time.monotonic()
    finally:
        exo.close()
        cloud.close()
    assert (first.provider_used, free.provider_used) == ("openrouter", "exo")
    return {"cloud": cloud_at - start, "ready": ready_at - start, "free": free_at - start,
            "exo_ready": cluster.ready_at[LLAMA] - start, "after_exo": ready_at - cluster.ready_at[LLAMA]}


def report_probes(figures: dict[str, dict[str, float]], probes: int) -> None:
    print(f"exo probe, steady state, mean of {probes} (the whole /state: "
          f"{figures['state']['bytes'] / 1024:.0f} KB)")
    for name in ("before", "after"):
        f = figures[name]
        print(f"  {name:<7} {f['bytes'] / 1024:9.1f} KB  {f['cpu_ms']:6.2f} ms CPU  "
              f"{f['requests']:.1f} requests per probe")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--busy-tasks", type=int, default=30)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--warm-runs", type=int, default=3)
    parser.add_argument("--download-mb-s", type=float, default=500.0)
    parser.add_argument("--before", default=BEFORE)
    args = parser.parse_args()
    compile_sources()
    sys.path.insert(0, str(ROOT))
    proc, url = start_cluster(args.busy_tasks)
    try:
        report_probes(asyncio.run(probe_cost(url, args.probes, args.before)), args.probes)
        if args.idle:
            with tempfile.TemporaryDirectory() as tmp:
                old = str(old_tree(args.before, Path(tmp)))
                cpu = {"before": tray_idle_cpu(url, args.idle, old),
                       "after": tray_idle_cpu(url, args.idle, None)}
            print(f"tray app idle CPU over {args.idle:.0f} s (exo probed every 5 s): before "
                  f"{cpu['before']:.2f} %, after {cpu['after']:.2f} % of one core")
    finally:
        proc.terminate()
        proc.wait(10)
    runs = [asyncio.run(warm_once(args.download_mb_s * 1e6)) for _ in range(args.warm_runs)]
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(f"an unplaced model (Llama 3.2 3B, 1.9 GB at {args.download_mb_s:g} MB/s, 28 layers/s), "
          f"medians of {args.warm_runs}:")
    print(f"  request -> the cloud's answer            {median['cloud'] * 1000:6.0f} ms")
    print(f"  request -> the fake's runners all ready  {median['exo_ready']:6.2f} s")
    print(f"  request -> \"ready on exo — back to free\" {median['ready']:6.2f} s "
          f"({median['after_exo']:.2f} s after the runners were ready)")
    print(f"  request -> the next request answered by exo {median['free']:6.2f} s")


if __name__ == "__main__":
    main()
