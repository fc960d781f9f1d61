"""A process under load for the kill -9 durability test: prints each request id once its answer
has been delivered to the caller.  python -m tests.fakes.ledger_load CONFIG DATA_DIR"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from router import Router, load_config
from router.ledger.ledger import Ledger

ASK = {"model": "llama-3.2-3b", "messages": [{"role": "user", "content": "hi"}]}


async def worker(router: Router) -> None:
    while True:
        result = await router.chat(ASK)
        print(result.request_id, flush=True)


async def main() -> None:
    ledger = Ledger.in_dir(Path(sys.argv[2]))
    async with Router(load_config(sys.argv[1]), ledger=ledger) as router:
        await asyncio.gather(*(worker(router) for _ in range(8)))


if __name__ == "__main__":
    asyncio.run(main())
