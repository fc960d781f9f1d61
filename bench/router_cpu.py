"""CPU of the router's own code on the chat hot path, in one process, from an in-memory wire:
no sockets, no aiohttp server or client, no other process to add noise. Each round runs 200
answers of 35 chunks (each chunk in its own read, as a streaming provider sends them); the
figure is CPU per answer (best and median of 40 rounds) for:

  parse    router.streaming.Attempt alone: SSE lines, JSON, the adapter, the chunk check
  chat     Router.chat: parse + route, admit, hold, assemble, account (no ledger)
  ledger   Router.chat with a usage ledger in a temporary directory (holds, journal, rows)
  stream   Router.stream with the ledger, read to the end as the endpoint relays it

    .venv/bin/python -m bench.router_cpu [--rounds 40]

To compare with another commit: `git archive COMMIT | tar -x -C /tmp/base`, then run this file
with PYTHONPATH=/tmp/base.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from router import Router
from router.config import parse_config
from router.keys import KeyStore
from router.ledger.ledger import Ledger
from router.providers import adapter_for
from router.streaming import Attempt, Deadlines

ANSWERS_PER_ROUND = 200
ASK = {"model": "bench-model", "messages": [{"role": "user", "content": "say hello"}]}
CONFIG = """
[[providers]]
id = "primary"
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "BENCH_KEY"

[models."bench-model"]
primary = "fake-model"
"""


def _chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
    data = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": choices, **extra}
    return b"data: " + json.dumps(data).encode() + b"\n\n"


PARTS = [*(_chunk([{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}])
           for i in range(32)),
         _chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
         _chunk([], usage={"prompt_tokens": 5, "completion_tokens": 32, "total_tokens": 37}),
         b"data: [DONE]\n\n"]


class _Response:
    def __init__(self) -> None:
        self.status = 200
        self.headers = {"content-type": "text/event-stream"}

    async def _parts(self) -> AsyncIterator[bytes]:
        for part in PARTS:
            yield part

    def parts(self) -> AsyncIterator[bytes]:
        return self._parts()

    async def close(self) -> None:
        pass


class MemoryWire:
    """router.http.wire.Wire answering every POST with PARTS."""

    failures: tuple[type[BaseException], ...] = (OSError,)
    timeouts: tuple[type[BaseException], ...] = (TimeoutError,)

    async def post(self, url: str, body: bytes, headers: Any, **timeouts: float) -> _Response:
        return _Response()

    def classify(self, exc: BaseException) -> tuple[str, str]:
        return "server-error", ""

    async def close(self) -> None:
        pass


async def _rounds(rounds: int, answer: Callable[[], Awaitable[None]]) -> list[float]:
    for _ in range(20):
        await answer()
    per_answer = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(ANSWERS_PER_ROUND):
            await answer()
        per_answer.append((time.process_time() - start) / ANSWERS_PER_ROUND * 1e6)
    return per_answer


def _router(ledger: Ledger | None) -> Router:
    router = Router(parse_config(CONFIG, "bench"), keys=KeyStore({"BENCH_KEY": "sk-bench"}),
                    ledger=ledger)
    router._stack._wire = MemoryWire()  # type: ignore[assignment]  # no sockets: the code alone
    return router


async def main(rounds: int) -> None:
    wire, adapter = MemoryWire(), adapter_for("openai")

    async def parse() -> None:
        attempt = Attempt(wire, adapter, "http://x/chat/completions",  # type: ignore[arg-type]
                          {"model": "m", "messages": []}, None, Deadlines(1, 30, 30))
        async for _batch in attempt.batches():
            pass

    results = {"parse": await _rounds(rounds, parse)}
    with tempfile.TemporaryDirectory() as data:
        ledger = Ledger.in_dir(Path(data))
        async with _router(None) as plain, _router(ledger) as kept:
            async def chat() -> None:
                await plain.chat(ASK)

            async def with_ledger() -> None:
                await kept.chat(ASK)

            async def stream() -> None:
                async with kept.stream(ASK) as answer:
                    async for _batch in answer.batches():
                        pass

            results["chat"] = await _rounds(rounds, chat)
            results["ledger"] = await _rounds(rounds, with_ledger)
            results["stream"] = await _rounds(rounds, stream)
        ledger.close()
    print(f"CPU per 35-chunk answer, µs (best / median of {rounds} rounds of "
          f"{ANSWERS_PER_ROUND}), pid {os.getpid()}")
    for name, samples in results.items():
        print(f"  {name:7s} {min(samples):7.1f} / {statistics.median(samples):7.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    asyncio.run(main(parser.parse_args().rounds))
