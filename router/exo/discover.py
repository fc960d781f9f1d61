"""Finding exo on this machine: its current port (52415) and the old one (8000), on both
``localhost`` and ``127.0.0.1``, all at once with short timeouts; one server answering on both
names is one result.

Each address gets exo's own probe (router/providers/exo.py: ``/node_id`` for the current API,
``/healthcheck`` for the legacy one), so what is reported — which API generation, which models
it serves and has loaded — is what the router would see there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from router.config import ProviderConfig
from router.providers import HealthState, Snapshot, adapter_for
from router.providers.exo import Exo

if TYPE_CHECKING:
    import httpx

CANDIDATES = ("http://localhost:52415", "http://127.0.0.1:52415",
              "http://localhost:8000", "http://127.0.0.1:8000")
TIMEOUT_S = 1.5
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}


@dataclass(frozen=True, slots=True)
class Found:
    """What one address answered."""

    url: str
    reachable: bool  # an exo API answered there
    generation: str | None  # "current" (exo v1, /node_id) or "legacy" (/healthcheck); None: none
    models: tuple[str, ...] = ()  # what it serves (its catalogue)
    loaded: tuple[str, ...] = ()  # loaded and ready now
    busy: tuple[str, ...] = ()  # models on their way (downloading, loading: why)
    detail: str = ""  # the probe's own words (why not, when not reachable)
    latency_ms: float = 0.0

    @property
    def summary(self) -> str:
        if not self.reachable:
            return f"{self.url}: {self.detail or 'no exo here'}"
        loaded = ", ".join(self.loaded) if self.loaded else "no model loaded"
        return (f"{self.url}: exo ({self.generation} API) · {len(self.models)} model(s) served · "
                f"loaded: {loaded}")


async def discover(urls: Sequence[str] = CANDIDATES, *, http: httpx.AsyncClient | None = None,
                   timeout_s: float = TIMEOUT_S) -> list[Found]:
    """Probe every address at once; each within ``timeout_s``. Results in the order given.
    ``http``: the caller's client (a running router's); None opens one for the look."""
    if http is not None:
        return await _discover(urls, http, timeout_s)
    from router.http.stack import HttpStack

    tasks: set[asyncio.Task[Any]] = set()

    def spawn(coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        tasks.add(task)
        return task

    stack = HttpStack()
    stack.start(spawn)
    try:
        return await _discover(urls, await stack.http(), timeout_s)
    finally:
        await stack.aclose()


async def _discover(urls: Sequence[str], http: httpx.AsyncClient, timeout_s: float) -> list[Found]:
    return distinct(await asyncio.gather(*(_look(http, url.rstrip("/"), timeout_s) for url in urls)))


def distinct(found: Sequence[Found]) -> list[Found]:
    """One result per server: ``localhost`` and ``127.0.0.1`` on one port are the same exo,
    listed once (the address that answered, else the first given), in the order given."""
    kept: list[Found] = []
    for item in found:
        twin = next((i for i, k in enumerate(kept) if same_address(k.url, item.url)), None)
        if twin is None:
            kept.append(item)
        elif item.reachable and not kept[twin].reachable:
            kept[twin] = item
    return kept


async def _look(http: httpx.AsyncClient, url: str, timeout_s: float) -> Found:
    kind = Exo.kind.name
    provider = ProviderConfig(kind, kind, kind, (url,), connect_timeout_s=timeout_s)
    start = asyncio.get_running_loop().time()
    try:
        async with asyncio.timeout(timeout_s):
            snapshot = await adapter_for(kind).probe(http, provider, None)
    except TimeoutError:
        return Found(url, False, None, detail=f"no answer within {timeout_s:g} s",
                     latency_ms=(asyncio.get_running_loop().time() - start) * 1000)
    return found_from(url, snapshot)


def found_from(url: str, snapshot: Snapshot) -> Found:
    if snapshot.state is HealthState.DOWN:
        return Found(url, False, None, detail=snapshot.detail, latency_ms=snapshot.latency_ms)
    generation = "current" if snapshot.cluster is not None else "legacy"
    return Found(url, True, generation, tuple(sorted(snapshot.models or ())),
                 tuple(sorted(snapshot.ready or ())),
                 tuple(f"{model}: {why}" for model, why in sorted(snapshot.busy.items())),
                 snapshot.detail, snapshot.latency_ms)


def same_address(a: str, b: str) -> bool:
    """Whether two base URLs reach the same server here (``localhost`` is ``127.0.0.1``)."""
    pa, pb = urlsplit(a.rstrip("/")), urlsplit(b.rstrip("/"))
    host_a = "loopback" if (pa.hostname or "") in _LOOPBACK else pa.hostname
    host_b = "loopback" if (pb.hostname or "") in _LOOPBACK else pb.hostname
    return (pa.scheme, host_a, pa.port, pa.path) == (pb.scheme, host_b, pb.port, pb.path)


def configured(url: str, base_urls: Sequence[str]) -> bool:
    """Whether ``url`` is (the same address as) one of the config's ``base_urls``."""
    return any(same_address(url, known) for known in base_urls)
