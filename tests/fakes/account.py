"""The account behind a fake cloud provider's key, kept the way the real service keeps it.

OpenRouter (docs late 2026; see the README's "Cloud accounts" for what was and was not verified):
``GET /api/v1/key`` with every field; a 402 names its cause in ``error.metadata`` —
``error_type`` (``payment_required``, ``in_flight_budget_exhausted``, ``weight_exceeds_budget``)
and ``limit_source`` (``openrouter_credits``, ``openrouter_key_limit``,
``openrouter_in_flight_budget``) —, the in-flight one with ``Retry-After``, the key's cap with its
``limit_reset`` (and when it resets); a negative balance refuses even ``:free`` models; the
free-model requests of the UTC day are counted and, once used up, refused with a 429
(``free-models-per-day``, ``X-RateLimit-*``). Every answer's billed cost (its ``usage.cost``)
moves the balance and ``usage_daily`` / ``_weekly`` / ``_monthly``, so the ledger can be
reconciled against it; ``bill_elsewhere`` spends with the key outside the router (a drift).

Hugging Face: out of balance is a 402 (free accounts get no monthly credit now; the body's text
is the one users reported, the status is what counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

Refusal = tuple[int, dict[str, Any], dict[str, str]]  # status, body, headers

HF_OUT_OF_CREDIT = ("You have exceeded your monthly included credits for Inference Providers. "
                    "Purchase pre-paid credits to continue.")


def _midnight(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def next_reset(period: str, now: datetime) -> datetime:
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        return today + timedelta(days=1)
    if period == "weekly":
        return today + timedelta(days=7 - today.weekday())
    return (today.replace(day=28) + timedelta(days=4)).replace(day=1)


def _or_error(status: int, message: str, **metadata: Any) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "metadata": metadata}}


@dataclass
class FakeAccount:
    balance_usd: float = 25.0  # below 0: OpenRouter refuses even free models
    key_limit_usd: float | None = None  # the key's spending cap
    key_limit_reset: str | None = None  # daily | weekly | monthly | None: never
    key_limit_status: int = 402  # 403 is how a guardrail's budget answers
    reset_in_error: bool = True  # the cap's 402 says when it resets (False: it does not)
    is_free_tier: bool = False
    free_daily_limit: int = 1000  # 50 for accounts that bought under $10 of credit
    free_used_today: int = 0
    usage_usd: float = 0.0
    usage_daily_usd: float = 0.0
    usage_weekly_usd: float = 0.0
    usage_monthly_usd: float = 0.0
    in_flight_budget_usd: float | None = None  # None: no in-flight budget enforced
    in_flight_usd: float = 0.0  # the estimated cost of paid requests running now (others' too)
    in_flight_retry_after: str = "2"
    expires_at: str | None = "2027-12-31T23:59:59Z"
    label: str = "sk-or-v1-abc...def"

    # -- what the key call shows ---------------------------------------------------------
    def period_usage(self) -> float:
        return {"daily": self.usage_daily_usd, "weekly": self.usage_weekly_usd,
                "monthly": self.usage_monthly_usd}.get(self.key_limit_reset or "", self.usage_usd)

    def limit_remaining(self) -> float | None:
        if self.key_limit_usd is None:
            return None
        return round(self.key_limit_usd - self.period_usage(), 12)

    def key_data(self) -> dict[str, Any]:
        """``GET /api/v1/key``, every field."""
        return {"data": {
            "label": self.label, "limit": self.key_limit_usd,
            "limit_reset": self.key_limit_reset, "limit_remaining": self.limit_remaining(),
            "include_byok_in_limit": False, "usage": self.usage_usd,
            "usage_daily": self.usage_daily_usd, "usage_weekly": self.usage_weekly_usd,
            "usage_monthly": self.usage_monthly_usd, "byok_usage": 0, "byok_usage_daily": 0,
            "byok_usage_weekly": 0, "byok_usage_monthly": 0, "is_free_tier": self.is_free_tier,
            "is_management_key": False, "is_provisioning_key": False,
            "creator_user_id": "user_fake0000000000000000000",
            "free_model_daily_requests": {
                "used": self.free_used_today, "limit": self.free_daily_limit,
                "remaining": max(0, self.free_daily_limit - self.free_used_today)},
            "expires_at": self.expires_at,
            "rate_limit": {"requests": -1, "interval": "10s",
                           "note": "This field is deprecated and safe to ignore."}}}

    # -- what a request meets --------------------------------------------------------------
    def openrouter_refusal(self, model: str, estimate_usd: float) -> Refusal | None:
        """The answer OpenRouter gives before any provider sees the request, if it refuses."""
        now = datetime.now(UTC)
        if self.balance_usd < 0:  # even free models
            return 402, _or_error(402, "Insufficient credits. Your account has a negative "
                                  "balance; add credits to continue.",
                                  error_type="payment_required",
                                  limit_source="openrouter_credits"), {}
        if model.endswith(":free"):
            return self._free_refusal(now)
        remaining = self.limit_remaining()
        if remaining is not None and remaining <= 0:
            return self._key_limit_refusal(now)
        if self.in_flight_budget_usd is not None:
            refused = self._in_flight_refusal(estimate_usd)
            if refused is not None:
                return refused
        if self.balance_usd < estimate_usd:
            return 402, _or_error(402, "Insufficient credits. Add more using "
                                  "https://openrouter.ai/credits", error_type="payment_required",
                                  limit_source="openrouter_credits"), {}
        return None

    def _free_refusal(self, now: datetime) -> Refusal | None:
        if self.free_used_today < self.free_daily_limit:
            return None
        reset = int(_midnight(now).timestamp() * 1000)
        return 429, _or_error(429, "Rate limit exceeded: free-models-per-day. Add 10 credits to "
                              "unlock 1000 free model requests per day",
                              error_type="rate_limit_exceeded"), {
            "X-RateLimit-Limit": str(self.free_daily_limit), "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(reset)}

    def _key_limit_refusal(self, now: datetime) -> Refusal:
        status = self.key_limit_status
        meta: dict[str, Any] = {"error_type": "payment_required",
                                "limit_source": "openrouter_key_limit"}
        if self.reset_in_error:
            meta["limit_reset"] = self.key_limit_reset
            if self.key_limit_reset:
                meta["resets_at"] = next_reset(self.key_limit_reset, now).isoformat()
        return status, _or_error(status, "Key limit exceeded. Raise it or wait for it to reset: "
                                 "https://openrouter.ai/settings/keys", **meta), {}

    def _in_flight_refusal(self, estimate_usd: float) -> Refusal | None:
        budget = self.in_flight_budget_usd
        assert budget is not None
        if estimate_usd > budget:
            return 402, _or_error(402, "This request's estimated cost exceeds your in-flight "
                                  "spending budget; lower max_tokens or add credits.",
                                  error_type="weight_exceeds_budget",
                                  limit_source="openrouter_credits"), {}
        if self.in_flight_usd + estimate_usd > budget:
            return 402, _or_error(402, "Too many paid requests in flight for your balance; "
                                  "retry shortly.", error_type="in_flight_budget_exhausted",
                                  limit_source="openrouter_in_flight_budget"), {
                "Retry-After": self.in_flight_retry_after}
        return None

    def huggingface_refusal(self) -> Refusal | None:
        if self.balance_usd > 0:
            return None
        return 402, {"error": HF_OUT_OF_CREDIT}, {}

    # -- what an answer costs ----------------------------------------------------------------
    def accepted(self, model: str) -> None:
        if model.endswith(":free"):
            self.free_used_today += 1

    def bill(self, cost_usd: float) -> None:
        """An answer's billed cost (its ``usage.cost``), as the key call will show it."""
        self.balance_usd -= cost_usd
        self.usage_usd += cost_usd
        self.usage_daily_usd += cost_usd
        self.usage_weekly_usd += cost_usd
        self.usage_monthly_usd += cost_usd

    def bill_elsewhere(self, cost_usd: float) -> None:
        """Spending with the key outside the router (another app): the bill drifts from the
        ledger."""
        self.bill(cost_usd)


def account_check(fake: Any, body: dict[str, Any]) -> tuple[Any, float]:
    """(the refusal to send, or None; the estimated cost it holds in flight) for a fake
    provider's chat request."""
    from aiohttp import web

    model = str(body.get("model", ""))
    refused: Refusal | None = None
    estimate = 0.0
    if fake.flavor == "huggingface":
        refused = fake.account.huggingface_refusal()
    elif fake.flavor == "openrouter":
        if not model.endswith(":free"):
            prompt = sum(len(str(m.get("content", ""))) for m in body["messages"]) // 4 + 5
            cap = body.get("max_tokens")
            estimate = (prompt + (cap if isinstance(cap, int) and cap > 0 else 1000)) * 2e-7
        refused = fake.account.openrouter_refusal(model, estimate)
        if refused is None:
            fake.account.accepted(model)
    if refused is None:
        return None, estimate
    status, answer, headers = refused
    return web.json_response(answer, status=status, headers=headers), 0.0


def bill_reported(account: FakeAccount, usage: dict[str, Any]) -> None:
    cost = usage.get("cost")
    if isinstance(cost, int | float) and not isinstance(cost, bool) and 0 <= cost <= 1000:
        account.bill(float(cost))
