"""CPU of the chat hot path's parsing layer alone: one provider's 35-chunk streamed answer
(each chunk in its own network read) through router.streaming.Attempt, from an in-memory wire,
so no network or other process adds noise. The best of 40 rounds of 200 answers.

    .venv/bin/python -m bench.stream_parse_bench

To compare with another commit: `git archive COMMIT | tar -x -C /tmp/base`, then run this file
with PYTHONPATH=/tmp/base (an older Attempt takes the same arguments).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

from router.providers import adapter_for
from router.streaming import Attempt, Deadlines


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


class _Wire:
    failures: tuple[type[BaseException], ...] = (OSError,)
    timeouts: tuple[type[BaseException], ...] = (TimeoutError,)

    async def post(self, url: str, body: bytes, headers: Any, **timeouts: float) -> _Response:
        return _Response()

    def classify(self, exc: BaseException) -> tuple[str, str]:
        return "server-error", ""

    async def close(self) -> None:
        pass


async def main() -> None:
    wire, adapter = _Wire(), adapter_for("openrouter")
    rounds = []
    for _ in range(40):
        start = time.process_time()
        for _ in range(200):
            attempt = Attempt(wire, adapter, "http://x/chat/completions",  # type: ignore[arg-type]
                              {"model": "m", "messages": []}, None, Deadlines(1, 30, 30))
            async for _batch in attempt.batches():
                pass
        rounds.append((time.process_time() - start) / 200 * 1e6)
    print(f"CPU per 35-chunk answer: best {min(rounds):.1f} us, median {statistics.median(rounds):.1f} us")


if __name__ == "__main__":
    asyncio.run(main())
