"""OpenRouter's account as its API shows it: the key call (``GET /api/v1/key``) and the limit a
402 (or a budget 403, or a free-model 429) names. ``error.metadata.error_type`` is the stable
switch; ``limit_source`` says whose limit it is (the in-flight budget, the key's cap, the
account's credits). Everything here is read defensively: a field of the wrong shape is None."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from router.errors import LimitCause
from router.numbers import number, whole
from router.providers.account import AccountReport, FreeRequests
from router.providers.openai_compat import retry_after_seconds, seconds_to_utc_midnight

PERIODS = ("daily", "weekly", "monthly")
_MAX_USD = 10_000_000.0
_MAX_COUNT = 1_000_000_000
_MAX_EPOCH_MS = 1e15  # the year 33658 in milliseconds


def read_key(data: Any, now: datetime) -> AccountReport | None:
    """``GET /key``'s ``data`` as an AccountReport (None: not the shape of a key answer)."""
    info = data.get("data") if isinstance(data, dict) else None
    if not isinstance(info, dict):
        return None
    reset = info.get("limit_reset")
    period = reset if reset in PERIODS else None
    free_tier = info.get("is_free_tier")
    return AccountReport(
        limit_usd=usd(info.get("limit")), remaining_usd=usd(info.get("limit_remaining"), signed=True),
        limit_reset=period, limit_resets_at=next_reset(period, now) if period else None,
        usage_usd=usd(info.get("usage")), usage_daily_usd=usd(info.get("usage_daily")),
        usage_weekly_usd=usd(info.get("usage_weekly")),
        usage_monthly_usd=usd(info.get("usage_monthly")),
        free_tier=free_tier if isinstance(free_tier, bool) else None,
        free_requests=_free_requests(info.get("free_model_daily_requests")),
        expires_at=moment(info.get("expires_at")))


def next_reset(period: str, now: datetime) -> datetime:
    """When a daily, weekly (from Monday) or monthly cap next resets: 00:00 UTC."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        return today + timedelta(days=1)
    if period == "weekly":
        return today + timedelta(days=7 - today.weekday())
    return (today.replace(day=28) + timedelta(days=4)).replace(day=1)


def usd(value: Any, *, signed: bool = False) -> float | None:
    return number(value, -_MAX_USD if signed else 0.0, _MAX_USD)


def _count(value: Any) -> int | None:
    return whole(value, 0, _MAX_COUNT)


def _free_requests(value: Any) -> FreeRequests | None:
    if not isinstance(value, dict):
        return None
    used, limit = _count(value.get("used")), _count(value.get("limit"))
    if used is None or limit is None:
        return None
    remaining = _count(value.get("remaining"))
    return FreeRequests(used, limit, max(0, limit - used) if remaining is None else remaining)


def moment(value: Any) -> datetime | None:
    """An ISO 8601 time (``Z`` or an offset; naive is UTC) or epoch seconds/milliseconds."""
    epoch = number(value, -_MAX_EPOCH_MS, _MAX_EPOCH_MS)
    if epoch is not None:
        seconds = epoch / 1000 if epoch > 1e11 else epoch
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def error_metadata(body: bytes) -> dict[str, Any]:
    """``error.metadata`` of an error body ({} when there is none)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    error = data.get("error") if isinstance(data, dict) else None
    meta = error.get("metadata") if isinstance(error, dict) else None
    return meta if isinstance(meta, dict) else {}


def limit_cause(status: int, meta: Mapping[str, Any], message: str) -> LimitCause | None:
    """Which limit refused the request, if one did."""
    error_type = str(meta.get("error_type") or "")
    source = str(meta.get("limit_source") or "")
    if status == 429:
        return LimitCause.FREE_QUOTA if "free-models-per-day" in message.lower() else None
    if status not in (402, 403):
        return None
    if error_type == "in_flight_budget_exhausted" or source == "openrouter_in_flight_budget":
        return LimitCause.IN_FLIGHT
    if error_type == "weight_exceeds_budget":
        return LimitCause.REQUEST_COST
    if source == "openrouter_key_limit" or source.endswith("_budget"):  # also a guardrail's
        return LimitCause.KEY_LIMIT
    return LimitCause.CREDITS if status == 402 else None  # a bare 403: moderation, permission


def reset_seconds(headers: Mapping[str, str], now: datetime | None = None) -> float:
    """Seconds until ``X-RateLimit-Reset`` (epoch milliseconds), else until 00:00 UTC."""
    reset = number(headers.get("x-ratelimit-reset"), 0, _MAX_EPOCH_MS, text=True)
    if reset is not None:
        return max(0.0, reset / 1000 - time.time())
    return seconds_to_utc_midnight(now)


def limit_wait(cause: LimitCause, headers: Mapping[str, str], meta: Mapping[str, Any],
               now: datetime | None = None) -> float | None:
    """Seconds until the limit lifts, when the answer says (None: it does not)."""
    now = now or datetime.now(UTC)
    if cause is LimitCause.IN_FLIGHT:
        return retry_after_seconds(headers)
    if cause is LimitCause.FREE_QUOTA:
        return reset_seconds(headers, now)
    if cause is LimitCause.KEY_LIMIT:
        ends = moment(meta.get("resets_at"))
        period = meta.get("limit_reset")
        if ends is None and period in PERIODS:
            ends = next_reset(str(period), now)
        return None if ends is None else max(0.0, (ends - now).total_seconds())
    return None
