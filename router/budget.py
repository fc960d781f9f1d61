"""Daily budgets per provider: requests, tokens and USD, reset at 00:00 UTC.

A request reserves its worst case (1 request, prompt estimate + max_tokens, and their cost)
before it is sent, and the reservation is settled to the real figures when it ends. Checks and
reservations happen in one synchronous step on the event loop, so 100 concurrent requests
against a limit of 10 dispatch at most 10. Today's counts come from the ledger at start-up, so a
restart keeps them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from router.config import Config, ProviderConfig
from router.errors import Attempt
from router.events import BudgetAlert, EventHub
from router.pricing import Price
from router.result import estimate_tokens, text_length

# Worst-case completion for a request that sets no max_tokens.
DEFAULT_COMPLETION_RESERVE = 1024
ALERT_AT = 0.8


@dataclass(slots=True)
class DayCounts:
    requests: int = 0  # calls made to the provider
    tokens: int = 0
    cost_usd: float = 0.0

    def add(self, requests: int, tokens: int, cost: float, sign: int = 1) -> None:
        self.requests += sign * requests
        self.tokens += sign * tokens
        self.cost_usd += sign * cost


@dataclass(frozen=True, slots=True)
class Reservation:
    provider: str
    day: date
    tokens: int
    cost_usd: float


def utc_now() -> datetime:
    return datetime.now(UTC)


def worst_case_tokens(request: Mapping[str, Any]) -> tuple[int, int]:
    """(prompt estimate, completion cap) for a reservation."""
    cap = request.get("max_completion_tokens") or request.get("max_tokens")
    completion = int(cap) if isinstance(cap, int) and cap > 0 else DEFAULT_COMPLETION_RESERVE
    return estimate_tokens(text_length(request.get("messages"))), completion


@dataclass
class Budget:
    config: Config
    events: EventHub
    now: Callable[[], datetime] = utc_now
    used: dict[str, DayCounts] = field(default_factory=dict)
    reserved: dict[str, DayCounts] = field(default_factory=dict)
    day: date | None = None
    _alerted: set[tuple[str, str]] = field(default_factory=set)

    def load(self, counts: Mapping[str, DayCounts], day: date) -> None:
        """Today's counts from the ledger (start-up)."""
        self._roll()
        if day == self.day:
            for provider, found in counts.items():
                self.used[provider] = DayCounts(found.requests, found.tokens, found.cost_usd)

    def _roll(self) -> date:
        today = self.now().date()
        if today != self.day:
            self.day = today
            self.used, self.reserved, self._alerted = {}, {}, set()
        return today

    def resets_at(self) -> datetime:
        today = self._roll()
        return datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)

    def _counts(self, provider_id: str) -> tuple[DayCounts, DayCounts]:
        return (self.used.setdefault(provider_id, DayCounts()),
                self.reserved.setdefault(provider_id, DayCounts()))

    def reserve(self, provider: ProviderConfig, request: Mapping[str, Any],
                price: Price | None = None) -> Reservation | str:
        """A reservation, or why the provider's budget cannot take this request."""
        day = self._roll()
        used, held = self._counts(provider.id)
        prompt, completion = worst_case_tokens(request)
        tokens = prompt + completion
        cost = price.cost({"prompt_tokens": prompt, "completion_tokens": completion}) if price else 0.0
        for limit, spent, want, unit in self._limits(provider, used, held, tokens, cost):
            if spent + want > limit:
                self._alert(provider, "exhausted", f"{unit} {spent:g}/{limit:g} today")
                return (f"daily {unit} limit {limit:g} reached ({spent:g} used or reserved); "
                        f"resets {self._reset_text()}")
        held.add(1, tokens, cost)
        return Reservation(provider.id, day, tokens, cost)

    @staticmethod
    def _limits(provider: ProviderConfig, used: DayCounts, held: DayCounts, tokens: int,
                cost: float) -> list[tuple[float, float, float, str]]:
        checks: list[tuple[float, float, float, str]] = []
        if provider.daily_request_limit is not None:
            checks.append((provider.daily_request_limit, used.requests + held.requests, 1, "request"))
        if provider.daily_token_limit is not None:
            checks.append((provider.daily_token_limit, used.tokens + held.tokens, tokens, "token"))
        if provider.daily_cost_limit_usd is not None:
            checks.append((provider.daily_cost_limit_usd, used.cost_usd + held.cost_usd, cost, "USD"))
        return checks

    def settle(self, reservation: Reservation, attempt: Attempt, provider: ProviderConfig) -> None:
        """Replace the reservation by what the attempt really used."""
        today = self._roll()
        usage = attempt.usage or {}
        tokens = int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)
        if reservation.day == today:
            used, held = self._counts(reservation.provider)
            held.add(1, reservation.tokens, reservation.cost_usd, sign=-1)
            used.add(1, tokens, attempt.cost_usd)
        self._check_alerts(provider)

    def _check_alerts(self, provider: ProviderConfig) -> None:
        used, _ = self._counts(provider.id)
        for limit, spent, _want, unit in self._limits(provider, used, DayCounts(), 0, 0.0):
            if limit and spent >= limit:
                self._alert(provider, "exhausted", f"{unit} {spent:g}/{limit:g} today")
            elif limit and spent >= ALERT_AT * limit:
                self._alert(provider, "80%", f"{unit} {spent:g}/{limit:g} today")

    def _alert(self, provider: ProviderConfig, level: str, detail: str) -> None:
        if (provider.id, level) in self._alerted:
            return
        self._alerted.add((provider.id, level))
        self.events.emit(BudgetAlert(provider.id, level, f"{provider.name}: {detail}; resets "
                                     f"{self._reset_text()}"))

    def exhausted(self, provider: ProviderConfig) -> str | None:
        """Why the provider is over budget right now, or None."""
        used, _ = self._counts(provider.id)
        for limit, spent, _want, unit in self._limits(provider, used, DayCounts(), 0, 0.0):
            if spent >= limit:
                return f"over budget: {unit}s {spent:g}/{limit:g}; resets {self._reset_text()}"
        return None

    def today(self, provider_id: str) -> DayCounts:
        self._roll()
        return self._counts(provider_id)[0]

    def _reset_text(self) -> str:
        left = self.resets_at() - self.now()
        hours, rest = divmod(int(left.total_seconds()), 3600)
        return f"00:00 UTC (in {hours}h {rest // 60:02d}m)"
