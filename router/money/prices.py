"""Prices as a price list gives them: USD per token, per model and serving provider; and what
makes a listed price usable (finite, non-negative, below any real price). The adapters parse
their kind's list into a PriceTable (router/providers/); router.money.pricing keeps and uses them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from router.money.usage_guard import MAX_PRICE_PER_TOKEN, price_per_token
from router.numbers import number


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


def per_million(value: object) -> float | None:
    """A price list's USD per million tokens, as USD per token we can use (or None)."""
    per_million_tokens = number(value, 0, MAX_PRICE_PER_TOKEN * 1e6, text=True)
    return None if per_million_tokens is None else price_per_token(per_million_tokens / 1e6)


def usable_price(prompt: float | None, completion: float | None) -> Price | None:
    """A price when both halves are usable (NaN, negative or absurd entries are skipped)."""
    return Price(prompt, completion) if prompt is not None and completion is not None else None
