"""What the router needs of the wire under the chat hot path: one POST whose body streams.

Only the shapes live here (no HTTP library is imported), so the router's modules load without
aiohttp or httpx; router.http.transport and router.http.client implement them and are loaded in a
worker thread once the router has started (see Router.__aenter__).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol

from router.errors import Outcome


class WireResponse(Protocol):
    status: int
    headers: Mapping[str, str]

    def parts(self) -> AsyncIterator[bytes]:
        """The body as it was sent (not decompressed: router.http.body does that, within limits)."""
        ...

    async def close(self) -> None: ...


class Wire(Protocol):
    # The exceptions a post or a read may raise for a failure to reach or read the provider,
    # and the subset that are read timeouts (matched first).
    failures: tuple[type[BaseException], ...]
    timeouts: tuple[type[BaseException], ...]

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], *,
                   connect_s: float, read_s: float, total_s: float) -> WireResponse:
        """``read_s`` bounds each wait for bytes, ``total_s`` the whole exchange (where the
        library can do it at no cost; the reader also checks it at each read)."""
        ...

    def classify(self, exc: BaseException) -> tuple[Outcome, str]:
        """(outcome, short secret-free detail) for one of ``failures``."""
        ...

    async def close(self) -> None: ...
