"""How many requests one provider takes at once (``max_connections``); the rest wait their turn
in a bounded queue (``max_queued``), a wait counted in the provider's own first-token deadline.

So a burst beyond what a provider takes waits for that provider instead of spilling onto the next
one (a paid one, for exo); a request moves on only when the provider itself is slow to answer
(its first-token deadline passes) or the queue is full (``busy``).
"""

from __future__ import annotations

import asyncio

from router.config import ProviderConfig
from router.errors import Attempt, Outcome


class Slots:
    def __init__(self, limit: int, max_queued: int):
        self.limit = limit
        self.max_queued = max_queued
        self.waiting = 0
        self.in_use = 0  # requests holding a connection now
        self._free = asyncio.Semaphore(limit)

    @property
    def full(self) -> bool:
        """Every connection busy and the queue full: a new request would not even wait."""
        return self._free.locked() and self.waiting >= self.max_queued

    async def acquire(self, deadline: float) -> bool:
        """True once a connection is ours; False when none came free by ``deadline`` (loop
        time). Without a wait when one is free (the usual case)."""
        if not self._free.locked():
            await self._free.acquire()
            self.in_use += 1
            return True
        self.waiting += 1
        try:
            async with asyncio.timeout_at(deadline):
                await self._free.acquire()
            self.in_use += 1
            return True
        except TimeoutError:
            return False
        finally:
            self.waiting -= 1

    def release(self) -> None:
        self.in_use -= 1
        self._free.release()

    async def take(self, provider: ProviderConfig, since: float) -> Attempt | None:
        """Take a connection for a request to ``provider`` (waiting from ``since`` within its
        first-token deadline), or the Attempt that says why not. No call was made either way,
        so no breaker moves: the provider is answering, only not fast enough for this one."""
        if self.full:
            return Attempt(provider.id, Outcome.BUSY, f"{self.limit} requests in flight and "
                           f"{self.waiting} waiting (max_connections, max_queued)", called=False)
        if await self.acquire(since + provider.first_token_timeout_s):
            return None
        waited = (asyncio.get_running_loop().time() - since) * 1000
        return Attempt(provider.id, Outcome.TIMEOUT, f"no free connection within "
                       f"{provider.first_token_timeout_s:g}s ({self.limit} requests in flight, "
                       "max_connections)", waited, called=False)
