"""Run one fake provider in its own process (benchmarks, the desktop end-to-end scripts).

    python -m tests.fakes.serve FLAVOR [--port N] [--key KEY] [--fault F ...]
    python -m tests.fakes.serve exo --cluster [--busy-tasks N]   (a simulated exo cluster)

Prints ``port N`` once listening, then serves until standard input closes or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from tests.fakes.exo_cluster import LLAMA, FakeCluster
from tests.fakes.provider import FLAVORS, FakeProvider


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("flavor", choices=FLAVORS)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key", action="append")
    parser.add_argument("--words", type=int, default=0, help="answer with this many words")
    parser.add_argument("--fault", help="a fault mode (see tests/fakes/provider.py)")
    parser.add_argument("--fault-status", type=int, default=503)
    parser.add_argument("--fault-after-tokens", type=int, default=1)
    parser.add_argument("--hostile-mib", type=int, default=1024, help="the size of a bomb or huge body")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between chunks")
    parser.add_argument("--keep-alive", type=float, default=0.05, help="seconds between keep-alives")
    parser.add_argument("--no-record", action="store_true",
                        help="keep only per-path counts (GET /_fake/stats), for long soaks")
    parser.add_argument("--cluster", action="store_true",
                        help="exo: a simulated two-node cluster with Llama 3.2 3B loaded")
    parser.add_argument("--busy-tasks", type=int, default=0,
                        help="exo --cluster: requests in flight in its state (each ~9 KB of prompt)")
    args = parser.parse_args()
    cluster = None
    if args.cluster:
        cluster = FakeCluster()
        cluster.load_instance(LLAMA)
        cluster.add_busy_tasks(args.busy_tasks)
    fake = FakeProvider(args.flavor, valid_keys=set(args.key) if args.key else None, cluster=cluster,
                        fault=args.fault, fault_status=args.fault_status,
                        fault_after_tokens=args.fault_after_tokens,
                        hostile_bytes=args.hostile_mib << 20, chunk_delay_s=args.chunk_delay,
                        keep_alive_s=args.keep_alive, record=not args.no_record)
    if args.words:
        fake.reply = " ".join(f"w{i}" for i in range(args.words))
    if args.port:
        fake.stop()
        fake.port = args.port
        fake.start()
    print(f"port {fake.port}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait()
    fake.close()


if __name__ == "__main__":
    main()
