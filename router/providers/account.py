"""What a provider's key call says about the account behind the key (no wire format here: each
adapter reads its own answer into these)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class FreeRequests:
    """The day's (UTC) requests to free model variants: used, allowed, left."""

    used: int
    limit: int
    remaining: int


@dataclass(frozen=True, slots=True)
class AccountReport:
    """The key's credit, spending cap and spend, and the day's free-model requests. A figure the
    provider did not give (or gave in a shape we cannot trust) is None."""

    limit_usd: float | None = None  # the key's spending cap; None: no cap
    remaining_usd: float | None = None  # what the cap leaves
    limit_reset: str | None = None  # how the cap resets: daily, weekly, monthly; None: never
    limit_resets_at: datetime | None = None  # the next reset (UTC)
    usage_usd: float | None = None  # spent with this key, all time
    usage_daily_usd: float | None = None  # ... the current UTC day
    usage_weekly_usd: float | None = None  # ... the current UTC week (from Monday)
    usage_monthly_usd: float | None = None  # ... the current UTC month
    free_tier: bool | None = None  # the account never bought credit
    free_requests: FreeRequests | None = None
    expires_at: datetime | None = None  # the key stops working then

    def as_json(self) -> dict[str, object]:
        free = self.free_requests
        return {
            "limit_usd": self.limit_usd, "remaining_usd": self.remaining_usd,
            "limit_reset": self.limit_reset,
            "limit_resets_at": _iso(self.limit_resets_at),
            "usage_usd": self.usage_usd, "usage_daily_usd": self.usage_daily_usd,
            "usage_weekly_usd": self.usage_weekly_usd,
            "usage_monthly_usd": self.usage_monthly_usd, "free_tier": self.free_tier,
            "free_model_daily_requests": None if free is None else {
                "used": free.used, "limit": free.limit, "remaining": free.remaining},
            "expires_at": _iso(self.expires_at),
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
