"""OpenRouter: OpenAI-shaped, billed cost in ``usage.cost``, errors with ``metadata.error_type``;
its key call and its limit errors are read in router/providers/openrouter_account.py."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from router.errors import Outcome, ProviderFailure
from router.money.figures import free_requests_text
from router.money.prices import Price, PriceTable, usable_price
from router.money.usage_guard import price_per_token
from router.providers.account import AccountReport
from router.providers.base import CostSource, Kind, Role, Snapshot
from router.providers.openai_compat import OpenAICompatible
from router.providers.openrouter_account import (
    error_metadata,
    limit_cause,
    limit_wait,
    read_key,
    reset_seconds,
)

if TYPE_CHECKING:
    import httpx

    from router.http.client import Fetched
    from router.keys import Secret
    from router.provider_settings import ProviderSettings

_QUOTA_HINTS = ("per-day", "per day", "daily", "quota")


class OpenRouter(OpenAICompatible):
    kind: ClassVar[Kind] = Kind(
        "openrouter", Role.CLOUD, takes_key=True, needs_key=True, bills=True,
        default_base_url="https://openrouter.ai/api/v1", deadlines=(5.0, 30.0, 60.0),
        several_nodes=False, cost=CostSource.REPORTED, price_list="/models",
        reports_account=True, free_suffix=":free")

    def parse_prices(self, listing: Any, now: float) -> PriceTable:
        return parse_openrouter_models(listing, now)

    def headers(self, key: Secret | None) -> dict[str, str]:
        return {**super().headers(key), "http-referer": "https://github.com/exo-bridge",
                "x-openrouter-title": "Exo Bridge"}

    def classify(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderFailure:
        failure = super().classify(status, body, headers)
        meta = error_metadata(body)
        cause = limit_cause(status, meta, failure.detail)
        if cause is not None:  # a limit of the account: the policy decides what it means
            outcome = Outcome.RATE_LIMITED if status == 429 else Outcome.OUT_OF_CREDITS
            return ProviderFailure(outcome, failure.detail, status=status, limit=cause,
                                   retry_after_s=limit_wait(cause, headers, meta))
        error_type = meta.get("error_type")
        if status == 403 and error_type != "unauthorized":
            # 403 is moderation: the request's own content, no other provider should see it.
            return ProviderFailure(Outcome.BAD_REQUEST, failure.detail, status=status)
        if status == 429 and (error_type == "quota_exceeded"
                              or any(h in failure.detail.lower() for h in _QUOTA_HINTS)):
            return ProviderFailure(Outcome.RATE_LIMITED, failure.detail, status=status,
                                   retry_after_s=reset_seconds(headers))
        return failure

    async def probe(self, http: httpx.AsyncClient, provider: ProviderSettings,
                    key: Secret | None) -> Snapshot:
        return await self.authenticated_get(http, provider, f"{provider.base_url}/key", key)

    def describe_ok(self, response: Fetched) -> str:
        report = self.read_account(response)
        if report is None:  # an answer of another shape
            return "key OK"
        left = report.remaining_usd
        text = "key OK · " + ("unlimited credit" if left is None else f"${left:.2f} credit left")
        if report.free_tier:
            text += " (free tier)"
        free = report.free_requests
        if free is not None:
            text += f" · {free_requests_text(free.used, free.limit)}"
        return text

    def read_account(self, response: Fetched) -> AccountReport | None:
        try:
            return read_key(response.json(), datetime.now(UTC))
        except ValueError:
            return None


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
        price = usable_price(price_per_token(pricing.get("prompt")),
                       price_per_token(pricing.get("completion")))
        if price is not None:
            prices[str(model["id"])] = {"*": price}
    return PriceTable(prices, now)
