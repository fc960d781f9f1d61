"""Per-provider health in the running process: breakers, cooldowns, probes and fail-back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from router.config import ProviderConfig
from router.errors import Outcome, ProviderFailure
from router.events import EventHub, HealthChanged
from router.policy import SOFT_FAILURES_TO_OPEN, reaction
from router.providers.base import HealthState, Snapshot

# An open breaker of a provider that is not probed often lets one request through after this.
HALF_OPEN_AFTER_S = 30.0
MODEL_UNAVAILABLE_FOR_S = 600.0


class Breaker(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


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
        react = reaction(failure)
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
        self._publish(h)

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
        h = self._health[provider_id]
        h.invalid_key = False
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
