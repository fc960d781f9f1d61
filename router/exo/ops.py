"""Sending a local cluster's control requests (its adapter's ``cluster_api`` says which, and
what the answers mean): the placement's dry run, placing, unloading, and cancelling a
generation in flight when its caller stops it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from router.errors import ClusterActionFailed
from router.providers.base import Adapter, Call

if TYPE_CHECKING:
    import httpx

    from router.config import ProviderConfig
    from router.journey import Run
    from router.providers.base import Snapshot

Spawn = Callable[[Coroutine[Any, Any, Any]], object]
HttpClient = Callable[[], Awaitable["httpx.AsyncClient"]]

log = logging.getLogger(__name__)
CALL_S = 10.0


async def send(http: httpx.AsyncClient, provider: ProviderConfig, call: Call,
               seconds: float = CALL_S) -> tuple[int, bytes]:
    """(status, body) of one control request, read within the provider's limits; a transport
    failure is a ClusterActionFailed naming the provider."""
    from router.http.body import BodyLimits, read_all
    from router.http.client import HTTP_ERRORS, http_error_detail, timeout

    try:
        async with asyncio.timeout(seconds):
            async with http.stream(call.method, call.url, json=call.body,
                                   timeout=timeout(seconds, provider.connect_timeout_s)) as response:
                body = await read_all(response.aiter_raw(), response.headers, BodyLimits.of(provider))
                return response.status_code, body
    except TimeoutError:
        raise ClusterActionFailed(f"{provider.name} did not answer within {seconds:g}s") from None
    except ValueError as exc:  # over a limit, or a corrupt encoding (router.http.body)
        raise ClusterActionFailed(f"{provider.name}'s answer: {exc}") from None
    except HTTP_ERRORS as exc:
        raise ClusterActionFailed(f"{provider.name} could not be reached: "
                                  f"{http_error_detail(exc)}") from None


def cancel_upstream(adapter: Adapter, run: Run, snapshot: Snapshot | None, spawn: Spawn,
                    http: HttpClient) -> None:
    """The caller stopped a local generation: tell the cluster by the answer's id too (exo's
    ``POST /v1/cancel/{id}``), not only by the closed connection, which it may notice late.
    ``snapshot`` is the provider's last probe (which node answered it)."""
    api = adapter.cluster_api
    node = snapshot.node if snapshot is not None and snapshot.node else run.provider.base_url
    call = api.cancel(node, run.assembler.id) if api is not None and run.assembler.id else None
    if call is not None:
        spawn(_quietly(http, run.provider, call))


async def _quietly(http: HttpClient, provider: ProviderConfig, call: Call) -> None:
    try:
        status, _ = await send(await http(), provider, call, seconds=5.0)
    except ClusterActionFailed as exc:
        log.info("cancelling at %s: %s", provider.id, exc)
        return
    if status not in (200, 404):  # 404: it had already finished
        log.info("cancelling at %s: HTTP %s", provider.id, status)
