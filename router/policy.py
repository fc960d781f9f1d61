"""The failover policy: which providers to try, in what order, and what each failure means.

It sees providers only through their config and outcomes; it knows no wire format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from router.config import Config, ProviderConfig
from router.errors import LimitCause, Outcome, ProviderFailure

# How long a provider rests after a 429 that gave no Retry-After.
DEFAULT_RATE_LIMIT_COOLDOWN_S = 30.0
# A quota answer (402 / quota 429) without a reset time: out for an hour, then tried again.
DEFAULT_QUOTA_COOLDOWN_S = 3600.0
# Failures in a row that open a breaker for the soft causes (timeouts, 5xx, bad answers).
SOFT_FAILURES_TO_OPEN = 3

# The in-flight budget refused without a Retry-After: a short wait, then tried again.
DEFAULT_IN_FLIGHT_WAIT_S = 5.0
# A rest that ends only when the user acts (adds credit, raises the key's cap, a new key) or the
# key call shows it is over; never by retrying blindly.
UNTIL_ACTED = math.inf

_SOFT = {Outcome.TIMEOUT, Outcome.SERVER_ERROR, Outcome.BAD_RESPONSE, Outcome.STREAM_CUT}


class Scope(StrEnum):
    """Which of a provider's models a limit holds back."""

    PROVIDER = "provider"  # all of them (a negative balance refuses even free models)
    PAID_MODELS = "paid-models"  # those that cost money; its free variants still answer
    FREE_MODELS = "free-models"  # only its free variants (the day's free requests are used up)


@dataclass(frozen=True, slots=True)
class Rest:
    """A limit of the provider's account: why, for how long (UNTIL_ACTED), for which models."""

    cause: LimitCause
    seconds: float
    scope: Scope


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
    rest: Rest | None = None  # a limit of its account holds it (or some of its models) back


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


def free_only(config: Config, model: str) -> bool:
    """A request that must never cost money: an alias marked ``free_only``, or a name some
    provider knows as a free variant (OpenRouter's ``:free``)."""
    alias = config.models.get(model)
    if alias is not None:
        return alias.free_only
    return any(p.traits.is_free_variant(model) for p in config.providers)


PAID_WAITS = "a paid answer waits for your yes"  # the chat's request, until the user agrees


def charges(candidate: Candidate) -> bool:
    """Whether an answer from this candidate costs money (a free variant of a provider that
    bills does not)."""
    provider = candidate.provider
    return provider.costs_money and not all(provider.traits.is_free_variant(m)
                                            for m in candidate.model_ids)


def gate(config: Config, candidate: Candidate, model: str, *, has_key: bool,
         local_only: bool) -> tuple[Outcome, str] | None:
    """Skip reasons that need no health information. A free-only request goes only where it
    costs nothing (a provider that never charges, or a free variant of one that does), and so
    needs no consent to paid failover."""
    provider = candidate.provider
    free = free_only(config, model)
    if not provider.enabled:
        return Outcome.DISABLED, "disabled in the config"
    if local_only and not provider.traits.local:
        return Outcome.NOT_ALLOWED, "cloud failover is paused (local only)"
    if free and provider.costs_money and not all(provider.traits.is_free_variant(m)
                                                 for m in candidate.model_ids):
        return Outcome.NOT_ALLOWED, (f"a free-only request: {provider.name} would charge for "
                                     f"{candidate.model_ids[0]}")
    if provider.paid and not free and not paid_failover_allowed(config, model):
        return Outcome.NOT_ALLOWED, "paid provider and allow_paid_failover is off"
    if provider.needs_key and not has_key:
        env = f" or set ${provider.api_key_env}" if provider.api_key_env else ""
        return Outcome.NO_KEY, f"no API key (run `exo-bridge keys set {provider.id}`{env})"
    return None


def reaction(failure: ProviderFailure, *, free_model: bool = False) -> Reaction:
    """What a failure means (``free_model``: it came from a free variant of the provider)."""
    outcome = failure.outcome
    if failure.limit is not None:
        return Reaction(rest=limit_rest(failure.limit, failure.retry_after_s, free_model=free_model))
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


def limit_rest(cause: LimitCause, seconds: float | None, *, free_model: bool) -> Rest | None:
    """How a limit of the account rests the provider. A limit met by a free variant holds all
    its models (OpenRouter refuses even free models on a negative balance); one met by a paid
    model only its paid ones."""
    scope = Scope.PROVIDER if free_model else Scope.PAID_MODELS
    if cause is LimitCause.IN_FLIGHT:  # transient: the spending in flight settles
        return Rest(cause, seconds or DEFAULT_IN_FLIGHT_WAIT_S, scope)
    if cause is LimitCause.KEY_LIMIT:  # until the cap resets; one that never does, until acted
        return Rest(cause, UNTIL_ACTED if seconds is None else seconds, scope)
    if cause is LimitCause.CREDITS:  # until credit is added: re-checked by the key call
        return Rest(cause, UNTIL_ACTED, scope)
    if cause is LimitCause.FREE_QUOTA:
        return Rest(cause, DEFAULT_QUOTA_COOLDOWN_S if seconds is None else seconds,
                    Scope.FREE_MODELS)
    return None  # REQUEST_COST: this request only; the next, smaller one may pass


def failover_reason(outcomes: list[tuple[str, Outcome]]) -> tuple[str, Outcome] | None:
    """(first provider passed over, why) when a request was answered by a later one."""
    for provider, outcome in outcomes:
        if not outcome.by_policy:
            return provider, outcome
    return None
