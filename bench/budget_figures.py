"""Issue 25's figures: upstream calls against a daily limit under rapid requests, hang-ups and
killed processes.

    .venv/bin/python -m bench.budget_figures [--asks 20] [--hang-ups 480]

1. 6 answers one after the other through the endpoint (openai SDK), each reporting
   usage.cost = $0.60, under daily_cost_limit_usd = 1.0, on an openai-kind provider with and
   without a price table: upstream calls (the one that crosses the limit may pass).
2. --hang-ups clients that go away at random moments, in waves of 48, after 1 answered request:
   under daily_request_limit = 30 with another connection holding the ledger's write lock
   during each wave (the hang-ups land while holds are decided): how many more are answered;
   and under a limit of 1000 without the lock: holds left over (hang-ups after their hold was
   granted were sent upstream and count as used).
3. --asks `exo-bridge ask` processes, each sent SIGTERM, SIGHUP or SIGKILL as soon as the
   provider has its request, under daily_request_limit = 5: upstream calls.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx  # noqa: F401  (loaded here first: the router loads it in a thread too)
import openai

from router import Router
from router.config import parse_config
from router.endpoint.server import EndpointServer
from router.errors import NoProviderAvailable
from router.keys import Secret
from router.ledger.ledger import Ledger
from tests.fakes.provider import FakeProvider

EXE = str(Path(sys.executable).with_name("exo-bridge"))
KEY = "sk-or-bench-0123456789abcdef"
TOKEN = "bench-token-" + "0" * 20
ASK = {"model": "llama-3.2-3b", "messages": [{"role": "user", "content": "hi"}]}


# -- 1 -----------------------------------------------------------------------------------------
async def rapid(directory: Path, priced: bool) -> tuple[int, list[int]]:
    fake = FakeProvider("openai", models=["m"], usage_override={"cost": 0.6})
    prices = "prompt_price_per_mtok = 0.5\ncompletion_price_per_mtok = 1.0\n" if priced else ""
    config = parse_config(f'[[providers]]\nid = "lm"\nkind = "openai"\nbase_url = "{fake.base_url}"\n'
                          f"paid = true\ndaily_cost_limit_usd = 1.0\n{prices}", "bench")
    ledger = Ledger.in_dir(directory)
    codes = []
    try:
        async with Router(config, ledger=ledger) as router:
            server = EndpointServer(router, token=Secret(TOKEN), port=0)
            await server.start()
            sdk = openai.AsyncOpenAI(base_url=server.url, api_key=TOKEN, max_retries=0)
            for _ in range(6):
                try:
                    await sdk.chat.completions.create(model="m", messages=[
                        {"role": "user", "content": "hi"}])
                    codes.append(200)
                except openai.APIStatusError as exc:
                    codes.append(exc.status_code)
            await sdk.close()
            await server.stop()
        return len(fake.chat_requests), codes
    finally:
        ledger.close()
        fake.close()


# -- 2 -----------------------------------------------------------------------------------------
def config_text(exo: FakeProvider, openrouter: FakeProvider, limit: int, exo_limit: str = "") -> str:
    return f"""\
[[providers]]
id = "exo"
kind = "exo"
base_urls = ["{exo.origin}"]
{exo_limit}

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
"""


async def hang_ups(directory: Path, count: int, seed: int, limit: int,
                   locked: bool) -> dict[str, int]:
    exo = FakeProvider("exo")
    openrouter = FakeProvider("openrouter", valid_keys={KEY})
    exo.stop()
    openrouter.chunk_delay_s = 0.01
    ledger = Ledger.in_dir(directory)
    rng = random.Random(seed)
    try:
        async with Router(parse_config(config_text(exo, openrouter, limit), "bench"),
                          ledger=ledger) as router:
            await router.chat(ASK)
            for _wave in range(count // 48):
                other = None
                if locked:  # another process writing: holds wait, hang-ups land meanwhile
                    other = sqlite3.connect(ledger.path, timeout=5, isolation_level=None)
                    other.execute("BEGIN IMMEDIATE")
                tasks = [asyncio.ensure_future(router.chat(ASK)) for _ in range(48)]
                for task in tasks:
                    await asyncio.sleep(rng.uniform(0, 0.001))
                    task.cancel()
                if other is not None:
                    other.execute("ROLLBACK")
                    other.close()
                await asyncio.gather(*tasks, return_exceptions=True)
            ledger.flush()
            used = ledger.query("SELECT coalesce(sum(calls), 0) FROM daily "
                                "WHERE provider = 'openrouter'")[0][0]
            left = ledger.query("SELECT count(*) FROM reservations")[0][0]
            answered = 0
            for _ in range(min(limit, 40)):
                try:
                    await router.chat(ASK)
                    answered += 1
                except NoProviderAvailable:
                    break
        return {"used after the hang-ups": used, "holds left by them": left,
                "answered after": answered, "upstream calls": len(openrouter.chat_requests)}
    finally:
        ledger.close()
        exo.close()
        openrouter.close()


# -- 3 -----------------------------------------------------------------------------------------
def killed_asks(directory: Path, signum: int, asks: int) -> tuple[int, list[int]]:
    exo = FakeProvider("exo")
    openrouter = FakeProvider("openrouter", valid_keys={KEY})
    exo.stop()
    openrouter.chunk_delay_s = 0.5
    config = directory / "config.toml"
    directory.mkdir(parents=True, exist_ok=True)
    config.write_text(config_text(exo, openrouter, 5))
    env = {**os.environ, "EXO_BRIDGE_DATA_DIR": str(directory / "data"), "OPENROUTER_API_KEY": KEY,
           "EXO_BRIDGE_STATE_DIR": str(directory / "state")}
    codes = []
    try:
        for _ in range(asks):
            before = len(openrouter.chat_requests)
            ask = subprocess.Popen([EXE, "ask", "hi", "--config", str(config)], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 30
            while len(openrouter.chat_requests) == before and ask.poll() is None \
                    and time.monotonic() < deadline:
                time.sleep(0.005)
            if ask.poll() is None:
                ask.send_signal(signum)
            codes.append(ask.wait(30))
        return len(openrouter.chat_requests), codes
    finally:
        exo.close()
        openrouter.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--asks", type=int, default=20)
    parser.add_argument("--hang-ups", type=int, default=480)
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    os.environ["OPENROUTER_API_KEY"] = KEY
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for priced in (False, True):
            calls, codes = asyncio.run(rapid(root / f"rapid-{priced}", priced))
            print(f"6 rapid answers at $0.60 under $1, {'with' if priced else 'no'} price table: "
                  f"{calls} upstream calls; statuses {codes}")
        for limit, locked in ((30, True), (1000, False)):
            figures = asyncio.run(hang_ups(root / f"hang-ups-{limit}", args.hang_ups, 25, limit,
                                           locked))
            print(f"{args.hang_ups} hang-ups{' while holds wait for a lock' if locked else ''}, "
                  f"limit {limit} (1 used before): "
                  + ", ".join(f"{k} {v}" for k, v in figures.items()))
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGKILL):
            calls, codes = killed_asks(root / f"ask-{signum.name}", signum, args.asks)
            print(f"{args.asks} asks killed by {signum.name} mid-answer, limit 5: {calls} upstream "
                  f"calls; exit statuses {sorted(set(codes))}")


if __name__ == "__main__":
    main()
