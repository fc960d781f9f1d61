"""The failover policy: which providers to try, in what order, and what each failure means.

It sees providers only through their config and outcomes; it knows no wire format.
"""

from __future__ import annotations

from dataclasses import dataclass

from router.config import Config, ProviderConfig
from router.errors import Outcome, ProviderFailure

# How long a provider rests after a 429 that gave no Retry-After.
DEFAULT_RATE_LIMIT_COOLDOWN_S = 30.0
# A quota answer (402 / quota 429) without a reset time: out for an hour, then tried again.
DEFAULT_QUOTA_COOLDOWN_S = 3600.0
# Failures in a row that open a breaker for the soft causes (timeouts, 5xx, bad answers).
SOFT_FAILURES_TO_OPEN = 3

_SOFT = {Outcome.TIMEOUT, Outcome.SERVER_ERROR, Outcome.BAD_RESPONSE, Outcome.STREAM_CUT}


@dataclass(frozen=True, slots=True)
class Candidate:
    provider: ProviderConfig
    model_ids: tuple[str, ...]  # the ids this provider may know the model by, first match wins


@dataclass(frozen=True, slots=True)
class Reaction:
    """What a failure does to the provider's health and to the request."""

    open_breaker: bool = False  # at once (refused)
    soft_failure: bool = False  # counts toward SOFT_FAILURES_TO_OPEN
    cooldown_s: float | None = None
    invalid_key: bool = False
    model_only: bool = False  # the provider is fine, only this model is not there
    return_to_caller: bool = False  # the request's own fault: try no other provider


def candidates(config: Config, model: str) -> list[Candidate]:
    """Providers in priority order with the model ids each would be asked for.

    An alias goes only to the providers it lists; any other name is passed through unchanged.
    """
    alias = config.models.get(model)
    if alias is not None:
        return [Candidate(p, alias.ids[p.id]) for p in config.providers if p.id in alias.ids]
    return [Candidate(p, (model,)) for p in config.providers]


def paid_failover_allowed(config: Config, model: str) -> bool:
    alias = config.models.get(model)
    if alias is not None and alias.allow_paid_failover is not None:
        return alias.allow_paid_failover
    return config.allow_paid_failover


def gate(provider: ProviderConfig, *, has_key: bool, paid_allowed: bool,
         local_only: bool) -> tuple[Outcome, str] | None:
    """Skip reasons that need no health information."""
    if not provider.enabled:
        return Outcome.DISABLED, "disabled in the config"
    if local_only and not provider.traits.local:
        return Outcome.NOT_ALLOWED, "cloud failover is paused (local only)"
    if provider.paid and not paid_allowed:
        return Outcome.NOT_ALLOWED, "paid provider and allow_paid_failover is off"
    if provider.needs_key and not has_key:
        env = f" or set ${provider.api_key_env}" if provider.api_key_env else ""
        return Outcome.NO_KEY, f"no API key (run `exo-bridge keys set {provider.id}`{env})"
    return None


def reaction(failure: ProviderFailure) -> Reaction:
    outcome = failure.outcome
    if outcome is Outcome.REFUSED:
        return Reaction(open_breaker=True)
    if outcome is Outcome.RATE_LIMITED:
        return Reaction(cooldown_s=failure.retry_after_s or DEFAULT_RATE_LIMIT_COOLDOWN_S)
    if outcome is Outcome.OUT_OF_CREDITS:
        return Reaction(cooldown_s=failure.retry_after_s or DEFAULT_QUOTA_COOLDOWN_S)
    if outcome is Outcome.INVALID_KEY:
        return Reaction(invalid_key=True)
    if outcome is Outcome.MODEL_UNAVAILABLE:
        return Reaction(model_only=True)
    if outcome is Outcome.BAD_REQUEST:
        return Reaction(return_to_caller=True)
    return Reaction(soft_failure=outcome in _SOFT)


def failover_reason(outcomes: list[tuple[str, Outcome]]) -> tuple[str, Outcome] | None:
    """(first provider passed over, why) when a request was answered by a later one."""
    for provider, outcome in outcomes:
        if not outcome.by_policy:
            return provider, outcome
    return None
