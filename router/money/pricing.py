"""What an answer cost: $0 on the user's own hardware, the billed ``usage.cost`` when a provider
reports it, else tokens × the price table (the provider's price list, parsed by its adapter, or
prices from the config).

A reported cost more than 10x away from the price table is kept but flagged
(``cost-anomaly``): never silently trusted, never silently replaced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from router.money.prices import Price, PriceTable
from router.money.terms import CostSource, Flag
from router.money.usage_guard import cost_usd
from router.providers import adapter_for

if TYPE_CHECKING:
    import httpx

    from router.config import ProviderConfig

log = logging.getLogger(__name__)

ANOMALY_RATIO = 10.0
# A price list of an unexpected shape (a list where an object belongs, an entry without an id).
_SHAPE_ERRORS: tuple[type[BaseException], ...] = (TypeError, AttributeError, KeyError)
PRICE_TABLE_TTL_S = 6 * 3600.0


class Pricer:
    """Holds the price tables (cached with their fetch time) and costs each attempt."""

    def __init__(self) -> None:
        self.tables: dict[str, PriceTable] = {}
        self._tried: dict[str, float] = {}  # last fetch attempt, so a failing list is not hammered

    async def refresh(self, http: httpx.AsyncClient, provider: ProviderConfig,
                      max_age_s: float = PRICE_TABLE_TTL_S) -> None:
        """Fetch the provider's price list if it has one and ours is missing or old."""
        from router.http.client import HTTP_OR_JSON_ERRORS, fetch  # loaded by now (Router.http_ready)

        adapter = adapter_for(provider.kind)
        path = adapter.kind.price_list
        if path is None:
            return
        table = self.tables.get(provider.id)
        if table is not None and time.time() - table.fetched_at < max_age_s:
            return
        if time.monotonic() - self._tried.get(provider.id, float("-inf")) < 60.0:
            return
        self._tried[provider.id] = time.monotonic()
        try:
            response = await fetch(http, provider.base_url + path, provider, seconds=30.0)
            if response.status_code >= 400:
                raise ValueError(f"HTTP {response.status_code}")
            self.tables[provider.id] = adapter.parse_prices(response.json(), time.time())
        except (*HTTP_OR_JSON_ERRORS, *_SHAPE_ERRORS) as exc:
            log.warning("could not fetch %s prices: %s", provider.id, exc.__class__.__name__)

    def table_price(self, provider: ProviderConfig, model_id: str,
                    headers: Mapping[str, str]) -> Price | None:
        if provider.prompt_price_per_mtok is not None or provider.completion_price_per_mtok is not None:
            return Price((provider.prompt_price_per_mtok or 0.0) / 1e6,
                         (provider.completion_price_per_mtok or 0.0) / 1e6)
        table = self.tables.get(provider.id)
        return table.price(model_id, headers.get("x-inference-provider")) if table else None

    def cost(self, provider: ProviderConfig, model_id: str, usage: Mapping[str, Any],
             estimated: bool, headers: Mapping[str, str]) -> tuple[float, CostSource, tuple[Flag, ...]]:
        """(USD, how it was obtained, flags) for one attempt's usage."""
        if provider.traits.cost is CostSource.FREE:
            return 0.0, CostSource.FREE, ()
        price = self.table_price(provider, model_id, headers)
        flags: tuple[Flag, ...] = ()
        if "cost" in usage and not estimated:
            reported = cost_usd(usage["cost"])
            if reported is not None:
                return reported, CostSource.REPORTED, _anomaly(reported, price, usage)
            flags = (Flag.USAGE_INVALID,)  # NaN, negative, absurd: the price table says instead
        if price is not None:
            return price.cost(usage), CostSource.ESTIMATED if estimated else CostSource.PRICE_TABLE, flags
        if provider.costs_money:
            log.warning("no price known for %s on %s: cost recorded as estimated $0",
                        model_id, provider.id)
        return 0.0, CostSource.ESTIMATED, (*flags, Flag.NO_PRICE)


def _anomaly(reported: float, price: Price | None, usage: Mapping[str, Any]) -> tuple[Flag, ...]:
    if price is None:
        return ()
    expected = price.cost(usage)
    if expected <= 0 and reported <= 0:
        return ()
    low, high = sorted((reported, expected))
    if low <= 0 or high / low > ANOMALY_RATIO:
        return (Flag.COST_ANOMALY,)
    return ()
