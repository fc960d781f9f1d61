"""What an answer cost: $0 for exo, the billed ``usage.cost`` when a provider reports it,
else tokens × the price table (Hugging Face's ``/v1/models``, or prices from the config).

A reported cost more than 10x away from the price table is kept but flagged
(``cost-anomaly``): never silently trusted, never silently replaced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from router.config import ProviderConfig
from router.usage_guard import INVALID, cost_usd, price_per_token

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

ANOMALY_RATIO = 10.0
# A price list of an unexpected shape (a list where an object belongs, an entry without an id).
_SHAPE_ERRORS: tuple[type[BaseException], ...] = (TypeError, AttributeError, KeyError)
PRICE_TABLE_TTL_S = 6 * 3600.0


@dataclass(frozen=True, slots=True)
class Price:
    """USD per token."""

    prompt: float
    completion: float

    def cost(self, usage: Mapping[str, Any]) -> float:
        return (int(usage.get("prompt_tokens") or 0) * self.prompt
                + int(usage.get("completion_tokens") or 0) * self.completion)


@dataclass(frozen=True, slots=True)
class PriceTable:
    """model id -> serving provider (or ``*``) -> price; fetched at ``fetched_at`` (epoch s).
    Every model the list names is a key (with no offers when it has no usable price)."""

    prices: Mapping[str, Mapping[str, Price]]
    fetched_at: float

    def price(self, model_id: str, serving: str | None) -> Price | None:
        offers = self.prices.get(model_id.split(":", 1)[0])
        if not offers:
            return None
        if serving and serving in offers:
            return offers[serving]
        # Unknown server: the highest listed price, so that we never under-count.
        return max(offers.values(), key=lambda p: (p.completion, p.prompt))


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
            price = _price(_per_million(pricing.get("input")), _per_million(pricing.get("output")))
            if price is not None:
                prices.setdefault(str(model["id"]), {})[str(offer.get("provider", "*"))] = price
    return PriceTable(prices, now)


def parse_openrouter_models(listing: Any, now: float) -> PriceTable:
    """OpenRouter ``/models``: ``pricing.prompt/completion`` as strings of USD per token."""
    prices: dict[str, dict[str, Price]] = {}
    for model in listing.get("data", []) if isinstance(listing, dict) else []:
        if not isinstance(model, dict) or "id" not in model:
            continue
        prices[str(model["id"])] = {}  # listed even without a usable price
        pricing = model.get("pricing")
        if not isinstance(pricing, dict):
            continue
        price = _price(price_per_token(pricing.get("prompt")),
                       price_per_token(pricing.get("completion")))
        if price is not None:
            prices[str(model["id"])] = {"*": price}
    return PriceTable(prices, now)


def _per_million(value: object) -> float | None:
    try:
        return price_per_token(float(value) / 1e6)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _price(prompt: float | None, completion: float | None) -> Price | None:
    """A price when both halves are usable (NaN, negative or absurd entries are skipped)."""
    return Price(prompt, completion) if prompt is not None and completion is not None else None


_PARSERS = {"huggingface": ("/models", parse_hf_models),
            "openrouter": ("/models", parse_openrouter_models)}


class Pricer:
    """Holds the price tables (cached with their fetch time) and costs each attempt."""

    def __init__(self) -> None:
        self.tables: dict[str, PriceTable] = {}
        self._tried: dict[str, float] = {}  # last fetch attempt, so a failing list is not hammered

    async def refresh(self, http: httpx.AsyncClient, provider: ProviderConfig,
                      max_age_s: float = PRICE_TABLE_TTL_S) -> None:
        """Fetch the provider's price list if it has one and ours is missing or old."""
        from router.http_client import HTTP_OR_JSON_ERRORS, fetch  # loaded by now (Router.http_ready)

        if provider.kind not in _PARSERS:
            return
        table = self.tables.get(provider.id)
        if table is not None and time.time() - table.fetched_at < max_age_s:
            return
        if time.monotonic() - self._tried.get(provider.id, float("-inf")) < 60.0:
            return
        self._tried[provider.id] = time.monotonic()
        path, parse = _PARSERS[provider.kind]
        try:
            response = await fetch(http, provider.base_url + path, provider, seconds=30.0)
            if response.status_code >= 400:
                raise ValueError(f"HTTP {response.status_code}")
            self.tables[provider.id] = parse(response.json(), time.time())
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
             estimated: bool, headers: Mapping[str, str]) -> tuple[float, str, tuple[str, ...]]:
        """(USD, how it was obtained, flags) for one attempt's usage."""
        if provider.kind == "exo":
            return 0.0, "free", ()
        price = self.table_price(provider, model_id, headers)
        flags: tuple[str, ...] = ()
        if "cost" in usage and not estimated:
            reported = cost_usd(usage["cost"])
            if reported is not None:
                return reported, "reported", _anomaly(reported, price, usage)
            flags = (INVALID,)  # NaN, negative, absurd: the price table says instead
        if price is not None:
            return price.cost(usage), "estimated" if estimated else "price-table", flags
        if provider.paid or provider.kind != "openai":
            log.warning("no price known for %s on %s: cost recorded as estimated $0",
                        model_id, provider.id)
        return 0.0, "estimated", (*flags, "no-price")


def _anomaly(reported: float, price: Price | None, usage: Mapping[str, Any]) -> tuple[str, ...]:
    if price is None:
        return ()
    expected = price.cost(usage)
    if expected <= 0 and reported <= 0:
        return ()
    low, high = sorted((reported, expected))
    if low <= 0 or high / low > ANOMALY_RATIO:
        return ("cost-anomaly",)
    return ()
