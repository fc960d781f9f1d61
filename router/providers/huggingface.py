"""Hugging Face Inference Providers: the OpenAI-compatible router; no cost in the answer."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

from router.config import ProviderConfig
from router.errors import Outcome, ProviderFailure
from router.keys import Secret
from router.providers.base import Snapshot
from router.providers.openai_compat import OpenAICompatible

if TYPE_CHECKING:
    import httpx

    from router.http_client import Fetched

_WHOAMI_CACHE_S = 600.0


def whoami_url(base_url: str) -> str:
    """``whoami-v2`` lives on the Hub, beside the router (or on a test server's origin)."""
    parts = urlsplit(base_url)
    host = "huggingface.co" if parts.hostname == "router.huggingface.co" else parts.netloc
    return f"{parts.scheme}://{host}/api/whoami-v2"


class HuggingFace(OpenAICompatible):
    kind: ClassVar[str] = "huggingface"

    def __init__(self) -> None:
        self._whoami: dict[tuple[str, int], tuple[float, Snapshot]] = {}

    def classify(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderFailure:
        failure = super().classify(status, body, headers)
        lowered = failure.detail.lower()
        if status == 403 and ("gated" in lowered or "access to model" in lowered):
            return ProviderFailure(Outcome.MODEL_UNAVAILABLE, failure.detail, status=status)
        if status == 410:
            return ProviderFailure(Outcome.MODEL_UNAVAILABLE, failure.detail, status=status)
        return failure

    async def probe(self, http: httpx.AsyncClient, provider: ProviderConfig,
                    key: Secret | None) -> Snapshot:
        """whoami-v2 is strictly rate limited: one answer per key is reused for 10 minutes."""
        cache_key = (provider.base_url, hash(key))
        cached = self._whoami.get(cache_key)
        if cached and time.monotonic() - cached[0] < _WHOAMI_CACHE_S:
            return cached[1]
        snapshot = await self.authenticated_get(http, provider, whoami_url(provider.base_url), key)
        if snapshot.state != "down" or snapshot.invalid_key:
            self._whoami[cache_key] = (time.monotonic(), snapshot)
        return snapshot

    def describe_ok(self, response: Fetched) -> str:
        try:
            name = response.json().get("name")
        except (ValueError, AttributeError):
            name = None
        return f"key OK · {str(name)[:80]}" if name else "key OK"
