"""How long ``/health`` waits while ``serve`` takes in a probe of a very large exo cluster (issue 25:
12,000 nodes stalled every ``/health`` for 4.4 s per probe).

    .venv/bin/python -m bench.exo_nodes_bench [--nodes 12000] [--seconds 20] [--tree DIR]

An exo with ``--nodes`` nodes (its state parts built once from tests/fakes/exo_state.py's shapes,
Llama 3.2 3B ready on the first node, and served as they are: the simulated cluster of
tests/fakes/exo_cluster.py is not made for thousands of nodes) runs in its own process;
``exo-bridge serve`` (from this
tree, or ``--tree DIR``: another checkout, e.g. ``git archive <commit> | tar -x -C DIR``) probes it
every second; this process asks ``/health`` every 20 ms for ``--seconds`` and prints the
latencies (median, 99th percentile, worst). A probe that holds the event loop shows as the worst.
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
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from bench import ROOT
from tests.fakes import exo_state as shapes
from tests.fakes.exo_cluster import LLAMA, GiB

TOKEN = "bench-token-exo-nodes"


def exo_parts(nodes: int) -> dict[str, Any]:
    """What ``GET /<path>`` answers on an exo of ``nodes`` 16 GiB machines."""
    ids = [f"12D3KooWNode{i:036d}" for i in range(nodes)]
    llama = shapes.card(LLAMA, int(1.74 * GiB), 28, "Llama 3.2 3B")
    listing = {"object": "list", "data": [{"id": LLAMA, "object": "model", "base_model": "Llama 3.2 3B",
                                           "storage_size_megabytes": 1782}]}
    return {"node_id": ids[0], "v1/models": listing,
            "state/instances": {"i-1": shapes.instance("i-1", llama, {ids[0]: "r-1"})},
            "state/runners": {"r-1": {"RunnerReady": {"prefillServerPort": None}}},
            "state/nodeMemory": {n: shapes.node_memory(16 * GiB, 12 * GiB) for n in ids},
            "state/downloads": {n: [] for n in ids},
            "state/nodeIdentities": {n: shapes.identity(f"node {i}") for i, n in enumerate(ids)}}


def serve_exo(nodes: int) -> None:
    """Serve the parts until standard input closes; print ``port N`` once listening."""
    bodies = {f"/{path}": json.dumps(value).encode() for path, value in exo_parts(nodes).items()}

    async def answer(request: web.Request) -> web.Response:
        body = bodies.get(request.path)
        if body is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=body, content_type="application/json")

    async def run() -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(f"port {site._server.sockets[0].getsockname()[1]}", flush=True)  # type: ignore[union-attr]
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(run())


def start_cluster(nodes: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "bench.exo_nodes_bench", "--serve-exo",
                             str(nodes)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    return proc, f"http://127.0.0.1:{proc.stdout.readline().split()[1]}"


def start_serve(tree: Path, exo_url: str, directory: Path) -> tuple[subprocess.Popen[str], str]:
    config = directory / "config.toml"
    config.write_text(f'[health]\nexo_probe_interval_s = 1.0\n\n[[providers]]\nid = "exo"\n'
                      f'kind = "exo"\nbase_urls = ["{exo_url}"]\n')
    env = {**os.environ, "EXO_BRIDGE_TOKEN": TOKEN, "EXO_BRIDGE_DATA_DIR": str(directory / "data"),
           "EXO_BRIDGE_STATE_DIR": str(directory / "state"), "PYTHONPATH": str(tree)}
    proc = subprocess.Popen([sys.executable, "-m", "router", "serve", "--port", "0", "--config",
                             str(config)], cwd=tree, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "serving" in line, line
    url = line.split("serving ", 1)[1].split()[0].rstrip(";").removesuffix("/v1")
    return proc, url


def health_latencies(url: str, seconds: float) -> list[float]:
    samples: list[float] = []
    with httpx.Client(timeout=60) as http:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            start = time.perf_counter()
            http.get(f"{url}/health").raise_for_status()
            samples.append((time.perf_counter() - start) * 1000)
            time.sleep(0.02)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=12_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the source tree of `serve`")
    parser.add_argument("--serve-exo", type=int, help=argparse.SUPPRESS)  # the exo's process
    args = parser.parse_args()
    if args.serve_exo:
        serve_exo(args.serve_exo)
        return
    cluster, exo_url = start_cluster(args.nodes)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            serve, url = start_serve(args.tree.resolve(), exo_url, Path(tmp))
            try:
                samples = health_latencies(url, args.seconds)
            finally:
                serve.kill()
                serve.wait(30)
    finally:
        cluster.kill()
        cluster.wait(30)
    ordered = sorted(samples)
    print(f"/health with {args.nodes} exo nodes, probed every second, {len(samples)} asks over "
          f"{args.seconds:g} s ({args.tree}):")
    print(f"  median {statistics.median(ordered):.1f} ms · p99 "
          f"{ordered[int(len(ordered) * 0.99) - 1]:.1f} ms · worst {ordered[-1]:.1f} ms")


if __name__ == "__main__":
    main()
