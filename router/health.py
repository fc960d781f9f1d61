"""Per-provider health in the running process: breakers, cooldowns, probes and fail-back."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from router.config import ProviderConfig
from router.errors import LimitCause, Outcome, ProviderFailure
from router.events import EventHub, HealthChanged
from router.policy import SOFT_FAILURES_TO_OPEN, Rest, Scope, reaction
from router.providers.base import HealthState, Snapshot

# An open breaker of a provider that is not probed often lets one request through after this.
HALF_OPEN_AFTER_S = 30.0
MODEL_UNAVAILABLE_FOR_S = 600.0


class Breaker(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True, slots=True)
class Hold:
    """A limit of the provider's account, until ``until`` on the health clock (inf: until the
    user acts or the key call shows it is over)."""

    cause: LimitCause
    until: float
    scope: Scope = Scope.PROVIDER


_HOLD_ORDER = (Scope.PROVIDER, Scope.PAID_MODELS, Scope.FREE_MODELS)
_UNTIL_ACTED = {LimitCause.CREDITS: "until credit is added",
                LimitCause.KEY_LIMIT: "until the key's limit is raised"}


@dataclass(slots=True)
class ProviderHealth:
    provider: ProviderConfig
    snapshot: Snapshot | None = None
    snapshot_at: float = float("-inf")
    breaker: Breaker = Breaker.CLOSED
    opened_at: float = 0.0
    open_reason: str = ""
    soft_failures: int = 0
    cooldown_until: float = 0.0
    cooldown_reason: str = ""
    invalid_key: bool = False
    blocked_models: dict[str, float] = field(default_factory=dict)
    holds: dict[Scope, Hold] = field(default_factory=dict)  # the account's limits
    last_latency_ms: float = 0.0
    published: HealthState = HealthState.UNKNOWN


@dataclass(frozen=True, slots=True)
class Admission:
    """Why a provider is skipped for a model, or which model id to send it."""

    model_id: str | None
    skip: tuple[Outcome, str] | None = None


class HealthBook:
    def __init__(self, providers: Iterable[ProviderConfig], events: EventHub,
                 clock: Callable[[], float] = time.monotonic):
        self._events = events
        self.clock = clock
        self._clock = clock
        self._health = {p.id: ProviderHealth(p) for p in providers}

    def take(self, providers: Iterable[ProviderConfig]) -> None:
        """A new config's providers: each keeps what it has learnt (a new one starts afresh)."""
        for p in providers:
            health = self._health.get(p.id)
            if health is None:
                self._health[p.id] = ProviderHealth(p)
            else:
                health.provider = p

    def __getitem__(self, provider_id: str) -> ProviderHealth:
        return self._health[provider_id]

    def is_stale(self, provider_id: str, max_age_s: float) -> bool:
        return self._clock() - self._health[provider_id].snapshot_at > max_age_s

    # -- decisions -------------------------------------------------------------------------
    def admit_provider(self, provider_id: str) -> tuple[Outcome, str] | None:
        """Why the provider takes no request now (breaker, bad key, cooldown), or None."""
        h = self._health[provider_id]
        now = self._clock()
        if h.breaker is Breaker.OPEN:
            if now - h.opened_at < HALF_OPEN_AFTER_S:
                return Outcome.CIRCUIT_OPEN, h.open_reason
            h.breaker = Breaker.HALF_OPEN
        if h.invalid_key:
            return Outcome.INVALID_KEY, f"key rejected earlier; run `exo-bridge keys set {provider_id}`"
        hold = self._held(h, Scope.PROVIDER, now)
        if hold is not None:
            return _skipped_as(hold), self.describe(hold, provider_id)
        if now < h.cooldown_until:
            return Outcome.RATE_LIMITED, (f"{h.cooldown_reason}; resting "
                                          f"{h.cooldown_until - now:.0f}s more")
        return None

    def admit_model(self, provider_id: str, model_ids: tuple[str, ...]) -> Admission:
        return self._admit_model(self._health[provider_id], model_ids, self._clock())

    def _admit_model(self, h: ProviderHealth, model_ids: tuple[str, ...], now: float) -> Admission:
        snap = h.snapshot
        known = [m for m in model_ids if snap is None or snap.models is None or m in snap.models]
        if not known:
            return Admission(None, (Outcome.MODEL_UNAVAILABLE,
                                    f"cloud-only model: {h.provider.name} does not list "
                                    f"{' or '.join(model_ids)}"))
        model_id = known[0]
        if h.blocked_models.get(model_id, 0.0) > now:
            return Admission(None, (Outcome.MODEL_UNAVAILABLE,
                                    f"{model_id} was unavailable here moments ago"))
        scope = Scope.FREE_MODELS if h.provider.traits.is_free_variant(model_id) \
            else Scope.PAID_MODELS
        hold = self._held(h, scope, now)
        if hold is not None:
            return Admission(None, (_skipped_as(hold), self.describe(hold, h.provider.id)))
        if snap is not None and model_id in snap.busy:
            return Admission(None, (Outcome.BUSY, snap.busy[model_id]))
        if snap is not None and snap.ready is not None and model_id not in snap.ready:
            return Admission(None, (Outcome.MODEL_UNAVAILABLE,
                                    f"{model_id} is not loaded on {h.provider.name}"))
        return Admission(model_id)

    # -- what happened ---------------------------------------------------------------------
    def record_success(self, provider_id: str, latency_ms: float) -> None:
        h = self._health[provider_id]
        h.breaker = Breaker.CLOSED
        h.soft_failures = 0
        h.invalid_key = False
        h.last_latency_ms = latency_ms
        if h.snapshot is None or h.snapshot.state is HealthState.DOWN:
            h.snapshot = Snapshot(HealthState.HEALTHY, "answering requests", latency_ms)
        self._publish(h)

    def record_failure(self, provider_id: str, model_id: str | None,
                       failure: ProviderFailure) -> None:
        h = self._health[provider_id]
        free = model_id is not None and h.provider.traits.is_free_variant(model_id)
        react = reaction(failure, free_model=free)
        now = self._clock()
        if react.open_breaker or h.breaker is Breaker.HALF_OPEN or (
                react.soft_failure and h.soft_failures + 1 >= SOFT_FAILURES_TO_OPEN):
            self._open(h, failure.detail)
        elif react.soft_failure:
            h.soft_failures += 1
        if react.cooldown_s is not None:
            h.cooldown_until = now + react.cooldown_s
            h.cooldown_reason = str(failure.outcome)
        if react.invalid_key:
            h.invalid_key = True
        if react.model_only and model_id:
            h.blocked_models[model_id] = now + MODEL_UNAVAILABLE_FOR_S
        if react.rest is not None:
            h.holds[react.rest.scope] = Hold(react.rest.cause, now + react.rest.seconds,
                                             react.rest.scope)
        self._publish(h)

    # -- the account's limits ----------------------------------------------------------------
    def rest(self, provider_id: str, rest: Rest) -> None:
        """Hold the provider (or some of its models) back for a limit its key call showed."""
        h = self._health[provider_id]
        h.holds[rest.scope] = Hold(rest.cause, self._clock() + rest.seconds, rest.scope)
        self._publish(h)

    def lift(self, provider_id: str, causes: Iterable[LimitCause]) -> list[LimitCause]:
        """End the holds of these causes (the user acted, or the key call shows they are over)."""
        h = self._health[provider_id]
        wanted = set(causes)
        lifted = [h.holds.pop(scope).cause for scope in list(h.holds)
                  if h.holds[scope].cause in wanted]
        if lifted:
            self._publish(h)
        return lifted

    def limit(self, provider_id: str) -> Hold | None:
        """The limit that holds the provider back now (all its models first), or None."""
        h = self._health[provider_id]
        now = self._clock()
        return next((hold for scope in _HOLD_ORDER
                     if (hold := self._held(h, scope, now)) is not None), None)

    def ends_at(self, hold: Hold) -> datetime | None:
        """When a hold ends, on the wall clock (None: when the user acts)."""
        left = hold.until - self._clock()
        return None if math.isinf(left) else datetime.now(UTC) + timedelta(seconds=max(0.0, left))

    def describe(self, hold: Hold, provider_id: str) -> str:
        ends = self.ends_at(hold)
        if ends is None:
            when = _UNTIL_ACTED.get(hold.cause, "until the key call shows it is over")
        elif (left := hold.until - self._clock()) < 120:
            when = f"for {max(0.0, left):.0f}s more"
        else:
            when = f"until {ends:%Y-%m-%d %H:%M} UTC"
        free = hold.scope is Scope.PAID_MODELS and self._health[provider_id].provider.traits.free_suffix
        return f"{hold.cause.meaning}, {when}" + (" (its free models still answer)" if free else "")

    @staticmethod
    def _held(h: ProviderHealth, scope: Scope, now: float) -> Hold | None:
        hold = h.holds.get(scope)
        if hold is not None and now >= hold.until:
            del h.holds[scope]
            return None
        return hold

    def _open(self, h: ProviderHealth, reason: str) -> None:
        h.breaker = Breaker.OPEN
        h.opened_at = self._clock()
        h.open_reason = reason
        h.soft_failures = 0

    def record_probe(self, provider_id: str, snapshot: Snapshot) -> None:
        h = self._health[provider_id]
        h.snapshot = snapshot
        h.snapshot_at = self._clock()
        h.last_latency_ms = snapshot.latency_ms
        if snapshot.state is HealthState.DOWN and not snapshot.invalid_key:
            if h.breaker is not Breaker.OPEN:
                self._open(h, snapshot.detail)
        elif snapshot.state is not HealthState.DOWN and h.breaker is Breaker.OPEN:
            h.breaker = Breaker.HALF_OPEN  # fail back: traffic returns at once
        h.invalid_key = snapshot.invalid_key
        for model in list(h.blocked_models):
            if snapshot.ready and model in snapshot.ready:
                del h.blocked_models[model]
        self._publish(h)

    def reset_key(self, provider_id: str) -> None:
        """A new key: whatever the old one was refused for is forgotten."""
        h = self._health[provider_id]
        h.invalid_key = False
        h.holds.clear()
        self._publish(h)

    # -- what to show ----------------------------------------------------------------------
    def state_of(self, h: ProviderHealth, has_key: bool) -> tuple[HealthState, str]:
        if not h.provider.enabled:
            return HealthState.DISABLED, "disabled in the config"
        if h.provider.needs_key and not has_key:
            return HealthState.NO_KEY, "no API key"
        if h.invalid_key:
            return HealthState.DOWN, "invalid key"
        if h.breaker is Breaker.OPEN:
            return HealthState.DOWN, h.open_reason
        hold = self.limit(h.provider.id)
        if hold is not None:
            return HealthState.DEGRADED, self.describe(hold, h.provider.id)
        now = self._clock()
        if now < h.cooldown_until:
            return HealthState.DEGRADED, f"{h.cooldown_reason} for {h.cooldown_until - now:.0f}s"
        if h.snapshot is not None:
            return h.snapshot.state, h.snapshot.detail
        return HealthState.UNKNOWN, "not checked yet"

    def _publish(self, h: ProviderHealth) -> None:
        state, detail = self.state_of(h, has_key=True)
        if state is h.published:
            return
        old, h.published = h.published, state
        if old is HealthState.UNKNOWN and state is HealthState.HEALTHY:
            return  # first sight of a healthy provider is not news
        recovered = state is HealthState.HEALTHY and old in (
            HealthState.DOWN, HealthState.BUSY, HealthState.DEGRADED)
        self._events.emit(HealthChanged(h.provider.id, old, state, detail, recovered,
                                        h.provider.traits.role, h.invalid_key))


def _skipped_as(hold: Hold) -> Outcome:
    """The day's free requests come back at midnight like a daily budget; the other limits are
    the account's credit."""
    return Outcome.OVER_BUDGET if hold.cause is LimitCause.FREE_QUOTA else Outcome.OUT_OF_CREDITS
