"""One ledger, several processes: what kill -9 loses and whether limits hold across processes.

    .venv/bin/python -m bench.ledger_processes [--rounds 5] [--per-process 300]

1. kill -9 rounds: 2 (then 3) processes under load on one data dir (each: 8 requests at a time
   against a fake exo), all killed with SIGKILL after --per-process answers each; at the end,
   answers delivered vs rows recorded (after the journals of the killed processes are replayed).
2. Limits across processes: daily_request_limit = 10 on a fake OpenRouter, exo down; two
   `serve` on one data dir sent 30 requests at once, then one `serve` plus 5 `ask` at once:
   upstream calls vs the limit.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench import ROOT, compile_sources
from bench.tray_soak import free_port
from router.ledger.ledger import Ledger
from tests.fakes.provider import FakeProvider

EXE = str(Path(sys.executable).with_name("exo-bridge"))
KEY = "sk-or-bench-0123456789abcdef"
TOKEN = "bench-token-" + "0" * 20
ASK = {"model": "llama-3.2-3b", "messages": [{"role": "user", "content": "hi"}]}


def config(directory: Path, exo: FakeProvider, openrouter: FakeProvider, limit: int) -> Path:
    path = directory / "config.toml"
    path.write_text(f"""\
[[providers]]
id = "exo"
kind = "exo"
base_urls = ["{exo.origin}"]

[[providers]]
id = "openrouter"
kind = "openrouter"
base_url = "{openrouter.base_url}"
priority = 1
paid = true
daily_request_limit = {limit}
api_key_env = "OPENROUTER_API_KEY"

[models."llama-3.2-3b"]
exo = "mlx-community/Llama-3.2-3B-Instruct-4bit"
openrouter = "meta-llama/llama-3.2-3b-instruct"
""")
    return path


def env(data: Path) -> dict[str, str]:
    return {**os.environ, "EXO_BRIDGE_DATA_DIR": str(data), "EXO_BRIDGE_TOKEN": TOKEN,
            "OPENROUTER_API_KEY": KEY, "EXO_BRIDGE_STATE_DIR": str(data / "state")}


def kill_rounds(cfg: Path, data: Path, processes: int, rounds: int, each: int) -> tuple[int, int]:
    """(answers delivered, rows recorded among them) after ``rounds`` of kill -9."""
    delivered: set[str] = set()
    for _ in range(rounds):
        procs = [subprocess.Popen([sys.executable, "-m", "tests.fakes.ledger_load", str(cfg),
                                   str(data)], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                                  env=env(data)) for _ in range(processes)]
        for proc in procs:
            assert proc.stdout is not None
            for _ in range(each):
                delivered.add(proc.stdout.readline().strip())
        for proc in procs:
            os.kill(proc.pid, signal.SIGKILL)
        for proc in procs:
            assert proc.stdout is not None
            delivered.update(line.strip() for line in proc.stdout.read().splitlines() if line)
            proc.wait(10)
    ledger = Ledger.in_dir(data)
    try:
        stored = {r[0] for r in ledger.query("SELECT request_id FROM attempts WHERE outcome = 'ok'")}
    finally:
        ledger.close()
    delivered.discard("")
    return len(delivered), len(delivered & stored)


class Serve:
    def __init__(self, cfg: Path, data: Path):
        self.port = free_port()
        self.proc = subprocess.Popen([EXE, "serve", "--config", str(cfg), "--port", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     env=env(data))
        assert self.proc.stderr is not None
        while "serving" not in (line := self.proc.stderr.readline()):
            assert line, "serve did not start"

    def chat(self) -> int:
        return httpx.post(f"http://127.0.0.1:{self.port}/v1/chat/completions", json=ASK,
                          headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60).status_code

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(20)


def two_serves(cfg: Path, data: Path) -> None:
    serves = [Serve(cfg, data), Serve(cfg, data)]
    try:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: serves[i % 2].chat(), range(30)))
    finally:
        for serve in serves:
            serve.stop()


def serve_and_asks(cfg: Path, data: Path) -> None:
    serve = Serve(cfg, data)
    try:
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            answers = [pool.submit(serve.chat) for _ in range(12)]
            time.sleep(0.3)
            asks = [subprocess.Popen([EXE, "ask", "hi", "--config", str(cfg)], env=env(data),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    for _ in range(5)]
            for ask in asks:
                ask.wait(60)
            [answer.result() for answer in answers]
    finally:
        serve.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-process", type=int, default=300)
    args = parser.parse_args()
    compile_sources()
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # the killed clients' resets
    exo, openrouter = FakeProvider("exo", record=False), FakeProvider("openrouter", record=False,
                                                                      valid_keys={KEY})
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = config(Path(tmp), exo, openrouter, 10)
            for processes in (2, 3):
                sent, kept = kill_rounds(cfg, Path(tmp) / f"kill-{processes}", processes,
                                         args.rounds, args.per_process)
                print(f"kill -9, {processes} processes on one data dir, {args.rounds} rounds: "
                      f"{kept:,} of {sent:,} delivered answers recorded ({sent - kept} lost)")
            exo.stop()
            openrouter.chunk_delay_s = 0.4
            for name, scenario in (("two serves, 30 requests at once", two_serves),
                                   ("serve + 5 concurrent ask, 17 requests", serve_and_asks)):
                before = openrouter.hits.get("/api/v1/chat/completions", 0)
                scenario(cfg, Path(tmp) / name.split(",")[0].replace(" ", "-"))
                calls = openrouter.hits.get("/api/v1/chat/completions", 0) - before
                print(f"{name}: {calls} upstream calls against daily_request_limit = 10")
    finally:
        exo.close()
        openrouter.close()


if __name__ == "__main__":
    main()
