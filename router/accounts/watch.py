"""The cloud accounts behind the keys: warnings before the wall, and the ledger against the bill.

The cheap key call (each kind's probe, never a completion) says what a key has left: credit,
its spending cap and when that resets, the day's free-model requests. It runs when the app
starts, after traffic to the provider (at most every ACCOUNT_RECHECK_S, in ``serve`` and the
tray) and on demand (``Router.check_accounts``: the tray's "Check accounts now", ``status``).
What it shows becomes:

- warnings at 80% and 95% of the way to the key's cap, or to the user's ``credit_floor_usd``,
  and when it is reached; and when the day's free-model requests are nearly gone (CreditAlert,
  each level once, again only after the figure fell back);
- rests for what it shows spent (a cap, the free requests; router/policy.py decides how long
  and for which models) and the end of rests it shows over (a cap raised or reset, credit
  bought); credit the user added is taken on their word when they ask for a check;
- once a day in ``serve`` and the tray, the ledger's cost for the UTC day against the key's
  ``usage_daily`` (router/accounts/reconcile.py); a drift is announced once a day (BillDrift).

A limit a provider refused a request for is informed here before the policy reads it (a key cap
without a reset time in the answer gets the key call's), and announced (AccountLimited).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from router.accounts import reconcile
from router.accounts.reconcile import Reconciliation
from router.accounts.status import (
    AccountStatus,
    credit_level,
    credit_position,
    free_level,
    rises,
)
from router.errors import ExoBridgeError, LimitCause, Outcome, ProviderFailure
from router.events import (
    AccountLimited,
    BillDrift,
    CreditAlert,
    CreditLevel,
    CreditWall,
    Event,
    EventHub,
    RequestFinished,
)
from router.ledger.usage import recorded_cost
from router.policy import limit_rest
from router.providers import CostSource, HealthState, Snapshot
from router.providers.account import AccountReport, FreeRequests

if TYPE_CHECKING:
    from router.config import Config, ProviderConfig
    from router.health import HealthBook
    from router.ledger.ledger import Ledger

log = logging.getLogger(__name__)

ACCOUNT_RECHECK_S = 180.0  # after traffic, the key call at most this often
RECONCILE_EVERY_S = 86400.0  # the ledger against the bill, once a day


@dataclass(slots=True)
class _Account:
    report: AccountReport | None = None
    checked: float = -math.inf  # the clock of the key call
    checked_at: datetime | None = None  # the same, UTC
    free_used_since: int = 0  # our own answers by its free variants since the key call
    announced: dict[CreditWall, CreditLevel] = field(default_factory=dict)
    reconciled: float = -math.inf
    reconciliation: Reconciliation | None = None
    drift_days: set[str] = field(default_factory=set)  # days whose drift was announced
    checking: bool = False


@dataclass
class AccountWatch:
    """One Router's accounts (``watching``: ``serve`` and the tray, which check on their own)."""

    config: Config
    health: Callable[[], HealthBook]
    events: EventHub
    probe: Callable[[ProviderConfig], Awaitable[Snapshot]]
    spawn: Callable[[Coroutine[Any, Any, Any]], object]
    has_key: Callable[[ProviderConfig], bool]
    in_flight: Callable[[str], int]
    clock: Callable[[], float]
    now: Callable[[], datetime]
    ledger: Ledger | None = None
    watching: bool = False
    _accounts: dict[str, _Account] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._providers = {p.id: p for p in self.config.providers}
        self._accounts = {p.id: _Account() for p in self.config.providers}

    def take(self, config: Config) -> None:
        """A new config (Settings): its providers, each account's state kept."""
        self.config = config
        self._providers = {p.id: p for p in config.providers}
        for p in config.providers:
            self._accounts.setdefault(p.id, _Account())

    # -- what the key call said ------------------------------------------------------------
    def observe(self, provider: ProviderConfig, snapshot: Snapshot) -> None:
        """Every probe's result (the Prober calls this): a key call that tells of the account."""
        report = snapshot.account
        if report is None:
            return
        account = self._accounts[provider.id]
        before = account.report
        account.report, account.checked, account.checked_at = report, self.clock(), self.now()
        account.free_used_since = 0
        self._lift_what_is_over(provider, report, before)
        self._rest_what_is_spent(provider, account)
        self._warn(provider, account)
        if self.watching and self.ledger is not None:
            self._maybe_reconcile(provider, account)

    def _lift_what_is_over(self, provider: ProviderConfig, report: AccountReport,
                           before: AccountReport | None) -> None:
        """Rests the key call shows over, by a change since the last one: a spent cap no longer
        spent (raised or reset), credit bought (no longer the free tier). A key call that merely
        disagrees with a refusal (a guardrail's budget is not the key's cap) lifts nothing."""
        over = []
        if before is not None and _spent(before) and not _spent(report):
            over.append(LimitCause.KEY_LIMIT)
        if before is not None and before.free_tier and report.free_tier is False:
            over.append(LimitCause.CREDITS)
        self.health().lift(provider.id, over)

    def _rest_what_is_spent(self, provider: ProviderConfig, account: _Account) -> None:
        report = account.report
        assert report is not None
        if _spent(report):
            rest = limit_rest(LimitCause.KEY_LIMIT, self._seconds_to(report.limit_resets_at),
                              free_model=False)
            if rest is not None:
                self.health().rest(provider.id, rest)
        free = self._free(provider.id)
        if free is not None and free.remaining <= 0:
            rest = limit_rest(LimitCause.FREE_QUOTA, self._seconds_to(_next_midnight(self.now())),
                              free_model=True)
            if rest is not None:
                self.health().rest(provider.id, rest)

    def _warn(self, provider: ProviderConfig, account: _Account) -> None:
        report = account.report
        assert report is not None
        position = credit_position(report, provider.credit_floor_usd)
        if position is not None:
            wall, left, span = position
            self._announce(provider, account, wall, credit_level(left, span), left, span,
                           report.limit_resets_at)
        free = self._free(provider.id)
        if free is not None:
            self._announce(provider, account, CreditWall.FREE_REQUESTS, free_level(free),
                           free.remaining, free.limit, _next_midnight(self.now()))

    def _announce(self, provider: ProviderConfig, account: _Account, wall: CreditWall,
                  level: CreditLevel | None, left: float, of: float,
                  resets_at: datetime | None) -> None:
        """Each level once; a figure that falls back (a reset, credit added) may warn again."""
        if level is None:
            account.announced.pop(wall, None)
            return
        if not rises(level, account.announced.get(wall)):
            return
        account.announced[wall] = level
        self.events.emit(CreditAlert(provider.id, wall, level, left, of, resets_at))

    def _free(self, provider_id: str) -> FreeRequests | None:
        """Today's free-model requests: the key call's, less our own answers since (None when
        the key call did not say, or said it on an earlier UTC day)."""
        account = self._accounts[provider_id]
        free = account.report.free_requests if account.report is not None else None
        if free is None or account.checked_at is None \
                or account.checked_at.date() != self.now().date():
            return None
        used = account.free_used_since
        return FreeRequests(free.used + used, free.limit, max(0, free.remaining - used))

    def _seconds_to(self, moment: datetime | None) -> float | None:
        return None if moment is None else max(0.0, (moment - self.now()).total_seconds())

    # -- what requests met -----------------------------------------------------------------
    def informed(self, provider: ProviderConfig, failure: ProviderFailure) -> ProviderFailure:
        """A key cap's refusal without a reset time: the one the key call showed."""
        report = self._accounts[provider.id].report
        if failure.limit is not LimitCause.KEY_LIMIT or failure.retry_after_s is not None \
                or report is None or report.limit_resets_at is None:
            return failure
        return ProviderFailure(failure.outcome, failure.detail, status=failure.status,
                               limit=failure.limit,
                               retry_after_s=self._seconds_to(report.limit_resets_at))

    def limited(self, provider: ProviderConfig, failure: ProviderFailure) -> None:
        """After the failure was applied to health: announce the limit it started, and have the
        key call look again (it may know when it ends)."""
        if failure.limit is None:
            return
        hold = self.health().limit(provider.id)
        if hold is not None and hold.cause is failure.limit:
            self.events.emit(AccountLimited(provider.id, hold.cause, self.health().ends_at(hold),
                                            self.health().describe(hold, provider.id)))
        if failure.limit is LimitCause.KEY_LIMIT and failure.retry_after_s is None:
            self._soon(provider, at_once=True)  # the key call may say when the cap resets

    def on_event(self, event: Event) -> None:
        """After a request: count our own free-model answers, and look at the account again
        when it was used (at most every ACCOUNT_RECHECK_S)."""
        if not isinstance(event, RequestFinished):
            return
        for attempt in event.attempts:
            provider = self._providers.get(attempt.provider)
            if provider is None or not attempt.called or not provider.traits.reports_account:
                continue
            if attempt.outcome is Outcome.OK and attempt.model \
                    and provider.traits.is_free_variant(attempt.model):
                self._accounts[provider.id].free_used_since += 1
                self._free_used(provider)
            self._soon(provider)

    def _free_used(self, provider: ProviderConfig) -> None:
        account = self._accounts[provider.id]
        if account.report is not None:
            self._rest_what_is_spent(provider, account)
            self._warn(provider, account)

    def _soon(self, provider: ProviderConfig, *, at_once: bool = False) -> None:
        account = self._accounts[provider.id]
        due = at_once or self.clock() - account.checked >= ACCOUNT_RECHECK_S
        if self.watching and due and not account.checking and provider.traits.reports_account:
            account.checking = True
            self.spawn(self._check(provider))

    async def _check(self, provider: ProviderConfig) -> None:
        try:
            await self.probe(provider)
        finally:
            self._accounts[provider.id].checking = False

    # -- on demand ---------------------------------------------------------------------------
    async def check_now(self) -> list[ProviderConfig]:
        """The user asks (they may have added credit): the key call of every keyed provider
        that reports its account or is held back by a limit; a good answer ends a credit
        rest (the key call cannot see the balance, so the user's word is taken)."""
        health = self.health()
        providers = [p for p in self.config.providers if p.enabled and self.has_key(p)
                     and (p.traits.reports_account or health.limit(p.id) is not None)]
        snapshots = await asyncio.gather(*(self.probe(p) for p in providers))
        for provider, snapshot in zip(providers, snapshots, strict=True):
            if snapshot.state is not HealthState.HEALTHY:
                continue
            over = [LimitCause.CREDITS, LimitCause.IN_FLIGHT]
            report, free = snapshot.account, self._free(provider.id)
            if report is not None and not _spent(report):
                over.append(LimitCause.KEY_LIMIT)  # raised: the key call shows credit left
            if free is not None and free.remaining > 0:
                over.append(LimitCause.FREE_QUOTA)  # more bought for today
            health.lift(provider.id, over)
        return providers

    def status(self, provider_id: str) -> AccountStatus | None:
        account = self._accounts.get(provider_id)
        if account is None or account.report is None or account.checked_at is None:
            return None
        provider = self._providers[provider_id]
        position = credit_position(account.report, provider.credit_floor_usd)
        free = self._free(provider_id)
        today = self.now().date().isoformat()
        check = account.reconciliation
        return AccountStatus(
            account.checked_at, account.report, provider.credit_floor_usd, position,
            None if position is None else credit_level(position[1], position[2]), free,
            None if free is None else free_level(free),
            check if check is not None and check.day == today else None)

    # -- the ledger against the bill -----------------------------------------------------------
    def reconcilable(self) -> list[ProviderConfig]:
        """Providers whose ledger cost is their own bill and whose key call tells the day's."""
        return [p for p in self.config.providers if p.enabled and self.has_key(p)
                and p.traits.reports_account and p.traits.cost is CostSource.REPORTED]

    def _maybe_reconcile(self, provider: ProviderConfig, account: _Account) -> None:
        due = self.clock() - account.reconciled >= RECONCILE_EVERY_S
        if due and provider in self.reconcilable() and not self.in_flight(provider.id):
            account.reconciled = self.clock()  # a request in flight would count on one side only
            self.spawn(self.reconcile(provider))

    async def reconcile(self, provider: ProviderConfig) -> Reconciliation | None:
        """The ledger's cost for the key call's UTC day against its ``usage_daily``; recorded,
        and a drift announced once a day."""
        account = self._accounts[provider.id]
        report, ledger = account.report, self.ledger
        if report is None or report.usage_daily_usd is None or ledger is None \
                or account.checked_at is None:
            return None
        day = account.checked_at.astimezone(UTC).date()
        try:
            await asyncio.to_thread(ledger.flush, 5.0)  # what was answered is in SQLite
            recorded = await asyncio.to_thread(recorded_cost, ledger, provider.id, day.isoformat())
        except ExoBridgeError as exc:
            log.warning("no ledger-vs-bill check for %s: %s", provider.id, exc)
            return None
        check = Reconciliation(day.isoformat(), provider.id, recorded, report.usage_daily_usd,
                               account.checked_at)
        account.reconciliation = check
        await asyncio.to_thread(reconcile.append, ledger.directory, check)
        if check.drifted and check.day not in account.drift_days:
            account.drift_days.add(check.day)
            self.events.emit(BillDrift(provider.id, check.day, check.recorded_usd,
                                       check.billed_usd))
        return check

    async def reconcile_now(self) -> list[tuple[ProviderConfig, Reconciliation | str]]:
        """`usage --reconcile`: each reconcilable provider's key call now, then the check (or
        why there is none)."""
        results: list[tuple[ProviderConfig, Reconciliation | str]] = []
        for provider in self.reconcilable():
            snapshot = await self.probe(provider)
            check = await self.reconcile(provider) if snapshot.account is not None else None
            results.append((provider, check if check is not None else
                            f"no figure for the day from its key call ({snapshot.detail})"))
        return results


def _spent(report: AccountReport) -> bool:
    """The key has a cap and nothing of it is left."""
    return report.limit_usd is not None and report.remaining_usd is not None \
        and report.remaining_usd <= 0


def _next_midnight(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0) \
        + timedelta(days=1)
