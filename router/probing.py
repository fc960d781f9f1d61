"""Probing and status: the background checks of ``serve`` and the tray (a local provider every
few seconds — free liveness and readiness — the cloud rarely, a cheap authenticated call and
never a completion), the checks on demand (``status``, ``keys test``), and what each provider's
state is as the displays show it (``ProviderStatus``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from router.config import Config, ProviderConfig
from router.errors import LimitCause
from router.health import HealthBook
from router.keys import Secret
from router.money.figures import day_text
from router.providers import Adapter, HealthState, Role, Snapshot

if TYPE_CHECKING:
    import httpx

    from router.accounts.status import AccountStatus
    from router.ledger.ledger import Ledger
    from router.money.budget import Budget

log = logging.getLogger(__name__)
ProbeListener = Callable[[ProviderConfig, Snapshot], None]


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    id: str
    name: str
    role: Role
    state: HealthState
    detail: str
    latency_ms: float
    download_progress: float | None
    paid: bool
    requests_today: int = 0  # calls today, answered or not (a daily request limit counts them)
    tokens_today: int = 0
    cost_today_usd: float = 0.0
    limits: dict[str, float | None] = field(default_factory=dict)
    over_budget: bool = False  # a daily limit is reached (it comes back at 00:00 UTC)
    limit: LimitCause | None = None  # a limit of its account holds it (or some models) back
    limit_ends: datetime | None = None  # when that ends; None with a limit: when the user acts
    account: AccountStatus | None = None  # what its key call said of the account
    answered_today: int = 0  # requests it answered today: the "requests" every display shows
    invalid_key: bool = False  # its key was rejected: a new one is needed

    def day_text(self) -> str:
        """Today's requests, request limit and cost (router/money/figures.py says what each means)."""
        return day_text(self.answered_today, self.requests_today, self.cost_today_usd,
                        self.limits, free=self.role is Role.LOCAL)

    @property
    def can_serve(self) -> bool:
        return self.state in (HealthState.HEALTHY, HealthState.UNKNOWN) and not self.over_budget


@dataclass
class Prober:
    """Probes of one Router's providers; concurrent callers of one probe share it."""

    config: Config
    health: HealthBook
    adapters: dict[str, Adapter]
    key: Callable[[ProviderConfig], Secret | None]
    http: Callable[[], Awaitable[httpx.AsyncClient]]
    intervals: dict[Role, float]  # how often each role is probed in the background
    every: dict[str, float] = field(default_factory=dict)  # provider id -> interval, once probed
    listeners: list[ProbeListener] = field(default_factory=list)  # told of every probe's result
    _running: dict[str, asyncio.Task[Snapshot]] = field(default_factory=dict)

    async def probe(self, provider: ProviderConfig) -> Snapshot:
        """Probe now; concurrent callers share one probe."""
        running = self._running.get(provider.id)
        if running is None:
            running = asyncio.ensure_future(self._probe_once(provider))
            self._running[provider.id] = running
            running.add_done_callback(lambda _: self._running.pop(provider.id, None))
        return await asyncio.shield(running)

    async def _probe_once(self, provider: ProviderConfig) -> Snapshot:
        adapter = self.adapters[provider.id]
        try:
            snapshot = await adapter.probe(await self.http(), provider, self.key(provider))
        except Exception as exc:  # an adapter's defect: this provider is down, the rest go on
            log.exception("probing %s failed", provider.id)
            snapshot = Snapshot(HealthState.DOWN, f"its check failed ({exc.__class__.__name__})", 0.0)
        self.health.record_probe(provider.id, snapshot)
        for listener in self.listeners:
            try:
                listener(provider, snapshot)
            except Exception:  # a listener's defect never stops the probes
                log.exception("probe listener %r failed", listener)
        return snapshot

    def checkable(self, provider: ProviderConfig) -> bool:
        return provider.enabled and (not provider.needs_key or self.key(provider) is not None)

    async def check_all(self) -> None:
        """Check every enabled provider that can be checked now."""
        await asyncio.gather(*(self.probe(p) for p in self.config.providers if self.checkable(p)))

    def start(self, spawn: Callable[[Coroutine[Any, Any, Any]], object],
              after: Callable[[], Awaitable[None]]) -> None:
        """Keep probing every enabled provider in the background, once ``after`` is done (the
        keys are in)."""
        for provider in self.config.providers:
            if provider.enabled:
                self.every[provider.id] = self.intervals[provider.traits.role]
                spawn(self._probe_loop(provider, after))

    async def _probe_loop(self, provider: ProviderConfig, after: Callable[[], Awaitable[None]]) -> None:
        await after()
        while True:
            if self.checkable(provider):
                await self.probe(provider)
            await asyncio.sleep(self.every[provider.id])

    def readiness_age(self) -> float:
        """How old a local provider's readiness may be before a request checks it again."""
        return 3 * self.intervals[Role.LOCAL]


def statuses(config: Config, health: HealthBook, budget: Budget, ledger: Ledger | None,
             has_key: Callable[[ProviderConfig], bool]) -> list[ProviderStatus]:
    """Each provider as the displays show it: its health, today's use, its limits."""
    result = []
    for p in config.providers:
        h = health[p.id]
        state, detail = health.state_of(h, has_key(p))
        over = budget.exhausted(p)
        if over and state in (HealthState.HEALTHY, HealthState.UNKNOWN):
            state, detail = HealthState.DEGRADED, over
        if p.costs_money and ledger is not None and not ledger.can_record \
                and state in (HealthState.HEALTHY, HealthState.UNKNOWN):
            state, detail = HealthState.DEGRADED, "off while the usage ledger cannot record"
        progress = h.snapshot.download_progress if h.snapshot is not None else None
        today = budget.today(p.id)
        limits = {"requests": p.daily_request_limit, "tokens": p.daily_token_limit,
                  "cost_usd": p.daily_cost_limit_usd}
        hold = health.limit(p.id)
        result.append(ProviderStatus(p.id, p.name, p.traits.role, state, detail,
                                     round(h.last_latency_ms, 1), progress, p.paid, today.requests,
                                     today.tokens, today.cost_usd, limits, over_budget=bool(over),
                                     limit=hold.cause if hold else None,
                                     limit_ends=health.ends_at(hold) if hold else None,
                                     answered_today=today.answered,
                                     invalid_key=h.invalid_key and state is HealthState.DOWN))
    return result
