"""Hugging Face Inference Providers: the OpenAI-compatible router; no cost in the answer."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from router.errors import LimitCause, Outcome, ProviderFailure
from router.money.prices import Price, PriceTable, per_million, usable_price
from router.providers.base import CostSource, Kind, Role, Snapshot
from router.providers.openai_compat import OpenAICompatible

if TYPE_CHECKING:
    import httpx

    from router.http.client import Fetched
    from router.keys import Secret
    from router.provider_settings import ProviderSettings

_WHOAMI_CACHE_S = 600.0


def whoami_url(base_url: str) -> str:
    """``whoami-v2`` lives on the Hub, beside the router (or on a test server's origin)."""
    parts = urlsplit(base_url)
    host = "huggingface.co" if parts.hostname == "router.huggingface.co" else parts.netloc
    return f"{parts.scheme}://{host}/api/whoami-v2"


class HuggingFace(OpenAICompatible):
    kind: ClassVar[Kind] = Kind(
        "huggingface", Role.CLOUD, takes_key=True, needs_key=True, bills=True,
        default_base_url="https://router.huggingface.co/v1", deadlines=(5.0, 30.0, 60.0),
        several_nodes=False, cost=CostSource.PRICE_TABLE, price_list="/models")

    def parse_prices(self, listing: Any, now: float) -> PriceTable:
        return parse_hf_models(listing, now)

    def __init__(self) -> None:
        self._whoami: dict[tuple[str, int], tuple[float, Snapshot]] = {}

    def classify(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderFailure:
        failure = super().classify(status, body, headers)
        lowered = failure.detail.lower()
        if status == 403 and ("gated" in lowered or "access to model" in lowered):
            return ProviderFailure(Outcome.MODEL_UNAVAILABLE, failure.detail, status=status)
        if status == 410:
            return ProviderFailure(Outcome.MODEL_UNAVAILABLE, failure.detail, status=status)
        if status == 402:  # out of balance (free accounts buy credit; no monthly credit now)
            return ProviderFailure(Outcome.OUT_OF_CREDITS, failure.detail, status=status,
                                   limit=LimitCause.CREDITS)
        return failure

    async def probe(self, http: httpx.AsyncClient, provider: ProviderSettings,
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


def parse_hf_models(listing: Any, now: float) -> PriceTable:
    """Hugging Face router ``/v1/models``: ``pricing.input/output`` in USD per million tokens."""
    prices: dict[str, dict[str, Price]] = {}
    for model in listing.get("data", []) if isinstance(listing, dict) else []:
        if not isinstance(model, dict) or "id" not in model:
            continue
        prices.setdefault(str(model["id"]), {})  # listed even without a usable price
        for offer in model.get("providers") or []:
            pricing = offer.get("pricing") if isinstance(offer, dict) else None
            if not isinstance(pricing, dict):
                continue
            price = usable_price(per_million(pricing.get("input")), per_million(pricing.get("output")))
            if price is not None:
                prices.setdefault(str(model["id"]), {})[str(offer.get("provider", "*"))] = price
    return PriceTable(prices, now)
