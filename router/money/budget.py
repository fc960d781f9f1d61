"""Daily budgets per provider: requests, tokens and USD, reset at 00:00 UTC.

A request reserves its worst case (1 request, prompt estimate + max_tokens — or a first step of
DEFAULT_COMPLETION_RESERVE tokens, grown as the answer streams — and their cost) before it is
sent; the attempt's ledger row replaces the hold. With a ledger, holds live in SQLite and are
taken under a write transaction that counts the rows and holds of every process on the data
dir, so the tray, ``serve`` and any number of ``ask`` together never overshoot a limit. Without
one (tests, benchmarks) they live in this process. A request counts on the UTC day it was
reserved, even when its answer ends after midnight.

The reservation is also a cap: an answer is cut (finish_reason ``length``) where its hold ends —
at the caller's ``max_tokens``, or where the day's limit leaves no room to grow — so a provider
that ignores ``max_tokens`` cannot overshoot a token limit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from router.config import Config, ProviderConfig
from router.errors import Attempt, Outcome
from router.events import BudgetAlert, BudgetLevel, EventHub
from router.money.budget_rule import Check, passed
from router.money.prices import Price
from router.money.usage_guard import estimate_tokens
from router.result import text_length

if TYPE_CHECKING:
    from router.ledger.ledger import Ledger

# Completion tokens held for a request that sets no max_tokens, and each step it grows by.
DEFAULT_COMPLETION_RESERVE = 1024
ALERT_AT = 0.8


@dataclass(slots=True)
class DayCounts:
    requests: int = 0  # calls made to the provider (what a daily request limit counts)
    tokens: int = 0
    cost_usd: float = 0.0
    answered: int = 0  # requests it answered (router/money/figures.py: the "requests" shown)

    def add(self, requests: int, tokens: int, cost: float, sign: int = 1) -> None:
        self.requests += sign * requests
        self.tokens += sign * tokens
        self.cost_usd += sign * cost


@dataclass(slots=True)
class Reservation:
    provider: str
    day: date
    tokens: int  # held now: prompt estimate + completion allowance
    cost_usd: float
    completion: int = DEFAULT_COMPLETION_RESERVE  # completion tokens the hold covers
    capped: bool = True  # the answer is cut where the hold ends (else it may run on)
    growable: bool = False  # no max_tokens, but a limit: hold more as the answer streams
    price: Price | None = None
    id: str | None = None  # the ledger's hold, deleted with the attempt's row
    here: bool = False  # held in this process (no ledger, or one that cannot take holds now)


def utc_now() -> datetime:
    return datetime.now(UTC)


def worst_case_tokens(request: Mapping[str, Any]) -> tuple[int, int | None]:
    """(prompt estimate, the caller's completion cap or None)."""
    cap = request.get("max_completion_tokens") or request.get("max_tokens")
    completion = cap if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0 else None
    return estimate_tokens(text_length(request.get("messages"))), completion


def limited(provider: ProviderConfig) -> bool:
    return any(limit is not None for limit in (provider.daily_request_limit,
                                               provider.daily_token_limit,
                                               provider.daily_cost_limit_usd))


@dataclass
class Budget:
    config: Config
    events: EventHub
    now: Callable[[], datetime] = utc_now
    ledger: Ledger | None = None
    used: dict[str, DayCounts] = field(default_factory=dict)  # without a ledger
    reserved: dict[str, DayCounts] = field(default_factory=dict)  # without a ledger
    day: date | None = None
    _alerted: set[tuple[str, BudgetLevel]] = field(default_factory=set)

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

    # -- holding ----------------------------------------------------------------------------
    async def reserve(self, provider: ProviderConfig, request: Mapping[str, Any],
                      price: Price | None = None) -> Reservation | str:
        """A reservation, or why the provider cannot take this request now."""
        day = self._roll()
        prompt, cap = worst_case_tokens(request)
        completion = cap or DEFAULT_COMPLETION_RESERVE
        cost = price.cost({"prompt_tokens": prompt, "completion_tokens": completion}) if price else 0.0
        growable = cap is None and (provider.daily_token_limit is not None
                                    or provider.daily_cost_limit_usd is not None)
        reservation = Reservation(provider.id, day, prompt + completion, cost, completion,
                                  capped=cap is not None or growable, growable=growable,
                                  price=price)
        refused = await self._hold(provider, reservation, 1, reservation.tokens, cost)
        return refused if refused is not None else reservation

    async def extend(self, provider: ProviderConfig, reservation: Reservation) -> bool:
        """Hold one more step of completion tokens for a growing answer; False when the day's
        limits leave no room (the answer is then cut where it is)."""
        step = DEFAULT_COMPLETION_RESERVE
        cost = reservation.price.cost({"completion_tokens": step}) if reservation.price else 0.0
        if await self._hold(provider, reservation, 0, step, cost) is not None:
            return False
        reservation.tokens += step
        reservation.cost_usd += cost
        reservation.completion += step
        return True

    async def _hold(self, provider: ProviderConfig, reservation: Reservation, requests: int,
                    tokens: int, cost: float) -> str | None:
        """Hold more for ``reservation`` (a new hold when it has none): None, or why not."""
        if not limited(provider):
            return None
        if self.ledger is None:
            return self._hold_here(provider, reservation, requests, tokens, cost)
        from router.ledger.ledger import Hold, HoldAsk, LedgerUnavailable, Limits

        limits = Limits(provider.daily_request_limit, provider.daily_token_limit,
                        provider.daily_cost_limit_usd)
        try:
            held = await self.ledger.hold(HoldAsk(provider.id, reservation.day.isoformat(),
                                                  Hold(requests, tokens, cost), limits,
                                                  reservation.id))
        except LedgerUnavailable as exc:
            if provider.costs_money:  # its spending could not be enforced: closed for money
                return f"the usage ledger cannot hold its budget now: {exc}"
            return self._hold_here(provider, reservation, requests, tokens, cost)
        if isinstance(held, tuple):
            unit, spent, limit = held
            return self._over(provider, unit, spent, limit)
        reservation.id = held
        return None

    def _hold_here(self, provider: ProviderConfig, reservation: Reservation, requests: int,
                   tokens: int, cost: float) -> str | None:
        """A hold in this process: without a ledger, or while it cannot take one (it may be
        read-only); what the ledger last knew of today counts too."""
        over = passed(self._limits(provider, *self._used_or_held(provider.id), requests=requests,
                                   tokens=tokens, cost=cost), growth=requests == 0)
        if over is not None:
            return self._over(provider, *over)
        self._counts(provider.id)[1].add(requests, tokens, cost)
        reservation.here = True
        return None

    def _used_or_held(self, provider_id: str) -> tuple[DayCounts, DayCounts, DayCounts]:
        """Today's use as the limits see it: what the ledger last read (every process's rows
        and holds), and what this process used and holds itself."""
        return (self._ledger_knows(provider_id), *self._counts(provider_id))

    def _ledger_knows(self, provider_id: str) -> DayCounts:
        """Today's use by every process, as the ledger last read it (written and held)."""
        if self.ledger is None or self.ledger.today_day != self._roll().isoformat():
            return DayCounts()
        written, held, _ = self.ledger.today.get(provider_id) or (None, None, 0)
        counts = DayCounts()
        for part in (written, held):
            if part is not None:
                counts.add(part.requests, part.tokens, part.cost_usd)
        return counts

    def _over(self, provider: ProviderConfig, unit: str, spent: float, limit: float) -> str:
        self._alert(provider, BudgetLevel.EXHAUSTED, f"{unit} {spent:g}/{limit:g} today")
        return (f"daily {unit} limit {limit:g} reached ({spent:g} used or reserved); "
                f"resets {self._reset_text()}")

    @staticmethod
    def _limits(provider: ProviderConfig, *counts: DayCounts, requests: int = 0, tokens: int = 0,
                cost: float = 0.0) -> list[Check]:
        """Each limit the provider has, with today's use (the sum of ``counts``) and the want."""
        checks: list[Check] = []
        if provider.daily_request_limit is not None:
            checks.append((provider.daily_request_limit, sum(c.requests for c in counts),
                           requests, "request"))
        if provider.daily_token_limit is not None:
            checks.append((provider.daily_token_limit, sum(c.tokens for c in counts), tokens,
                           "token"))
        if provider.daily_cost_limit_usd is not None:
            checks.append((provider.daily_cost_limit_usd, sum(c.cost_usd for c in counts), cost,
                           "USD"))
        return checks

    def settle(self, reservation: Reservation, attempt: Attempt, provider: ProviderConfig) -> None:
        """Replace the reservation by what the attempt really used, at once: the next hold
        decided sees the real cost, not the estimate (in the ledger the hold takes it until
        the attempt's row, written soon after, replaces it)."""
        today = self._roll()
        usage = attempt.usage or {}
        tokens = int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)
        if reservation.id is not None and self.ledger is not None:
            from router.ledger.ledger import Hold

            self.ledger.settle(reservation.id, Hold(1, tokens, attempt.cost_usd))
        elif reservation.here and reservation.day == today:
            used, held = self._counts(reservation.provider)
            held.add(1, reservation.tokens, reservation.cost_usd, sign=-1)
            used.add(1, tokens, attempt.cost_usd)
            used.answered += attempt.outcome is Outcome.OK
        self._check_alerts(provider, attempt)

    def _check_alerts(self, provider: ProviderConfig, attempt: Attempt | None = None) -> None:
        spent = self.today(provider.id)
        if attempt is not None and self.ledger is not None:  # its row is not in the ledger yet
            usage = attempt.usage or {}
            spent = DayCounts(spent.requests + 1, spent.tokens + int(usage.get("total_tokens") or 0),
                              spent.cost_usd + attempt.cost_usd)
        for limit, total, _want, unit in self._limits(provider, spent):
            if limit and total >= limit:
                self._alert(provider, BudgetLevel.EXHAUSTED, f"{unit} {total:g}/{limit:g} today")
            elif limit and total >= ALERT_AT * limit:
                self._alert(provider, BudgetLevel.NEARLY, f"{unit} {total:g}/{limit:g} today")

    def _alert(self, provider: ProviderConfig, level: BudgetLevel, detail: str) -> None:
        if (provider.id, level) in self._alerted:
            return
        self._alerted.add((provider.id, level))
        self.events.emit(BudgetAlert(provider.id, level, f"{provider.name}: {detail}; resets "
                                     f"{self._reset_text()}"))

    # -- showing ----------------------------------------------------------------------------
    def exhausted(self, provider: ProviderConfig) -> str | None:
        """Why the provider is over budget right now (used or held, as a new request would be
        refused), or None."""
        for limit, total, _want, unit in self._limits(provider, *self._used_or_held(provider.id)):
            if limit is not None and total >= limit:
                return f"over budget: {unit}s {total:g}/{limit:g}; resets {self._reset_text()}"
        return None

    def today(self, provider_id: str) -> DayCounts:
        """What the provider was used for today (with a ledger: by every process)."""
        today = self._roll()
        if self.ledger is None:
            return self._counts(provider_id)[0]
        if self.ledger.today_day != today.isoformat():
            return DayCounts()
        written = self.ledger.today.get(provider_id)
        return DayCounts(written[0].requests, written[0].tokens, written[0].cost_usd,
                         written[2]) if written else DayCounts()

    def _reset_text(self) -> str:
        left = self.resets_at() - self.now()
        hours, rest = divmod(int(left.total_seconds()), 3600)
        return f"00:00 UTC (in {hours}h {rest // 60:02d}m)"
