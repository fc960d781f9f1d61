"""The failover policy as a table: each failure's meaning, each limit's rest, each reason a
provider is skipped without a call. In process, no HTTP, no clock: the policy is pure."""

from __future__ import annotations

import pytest

from router.config import parse_config
from router.errors import LimitCause, Outcome, ProviderFailure
from router.policy import (
    DEFAULT_IN_FLIGHT_WAIT_S,
    DEFAULT_QUOTA_COOLDOWN_S,
    DEFAULT_RATE_LIMIT_COOLDOWN_S,
    UNTIL_ACTED,
    Candidate,
    Reaction,
    Rest,
    Scope,
    candidates,
    failover_reason,
    gate,
    reaction,
)

CONFIG = parse_config('''
allow_paid_failover = false
[[providers]]
id = "exo"
kind = "exo"
[[providers]]
id = "openrouter"
kind = "openrouter"
paid = true
api_key_env = "OR_KEY"
[[providers]]
id = "off"
kind = "huggingface"
enabled = false
[models.fast]
exo = "llama-3.2-1b"
openrouter = "meta-llama/llama-3.2-1b-instruct"
[models.paid-ok]
openrouter = "openai/gpt-4o-mini"
allow_paid_failover = true
[models.gratis]
openrouter = "meta-llama/llama-3.2-1b-instruct:free"
free_only = true
''', "table.toml")
EXO, OPENROUTER, OFF = CONFIG.providers


@pytest.mark.parametrize(("outcome", "retry_after", "expected"), [
    (Outcome.REFUSED, None, Reaction(open_breaker=True)),
    (Outcome.RATE_LIMITED, None, Reaction(cooldown_s=DEFAULT_RATE_LIMIT_COOLDOWN_S)),
    (Outcome.RATE_LIMITED, 7.0, Reaction(cooldown_s=7.0)),
    (Outcome.OUT_OF_CREDITS, None, Reaction(cooldown_s=DEFAULT_QUOTA_COOLDOWN_S)),
    (Outcome.OUT_OF_CREDITS, 90.0, Reaction(cooldown_s=90.0)),
    (Outcome.INVALID_KEY, None, Reaction(invalid_key=True)),
    (Outcome.MODEL_UNAVAILABLE, None, Reaction(model_only=True)),
    (Outcome.BAD_REQUEST, None, Reaction(return_to_caller=True)),
    (Outcome.TIMEOUT, None, Reaction(soft_failure=True)),
    (Outcome.SERVER_ERROR, None, Reaction(soft_failure=True)),
    (Outcome.BAD_RESPONSE, None, Reaction(soft_failure=True)),
    (Outcome.STREAM_CUT, None, Reaction(soft_failure=True)),
    (Outcome.CANCELLED, None, Reaction()),
])
def test_what_each_failure_means(outcome, retry_after, expected):
    assert reaction(ProviderFailure(outcome, "x", retry_after_s=retry_after)) == expected


@pytest.mark.parametrize(("cause", "retry_after", "free_model", "rest"), [
    (LimitCause.IN_FLIGHT, None, False, Rest(LimitCause.IN_FLIGHT, DEFAULT_IN_FLIGHT_WAIT_S,
                                             Scope.PAID_MODELS)),
    (LimitCause.IN_FLIGHT, 2.0, True, Rest(LimitCause.IN_FLIGHT, 2.0, Scope.PROVIDER)),
    (LimitCause.KEY_LIMIT, None, False, Rest(LimitCause.KEY_LIMIT, UNTIL_ACTED, Scope.PAID_MODELS)),
    (LimitCause.KEY_LIMIT, 600.0, False, Rest(LimitCause.KEY_LIMIT, 600.0, Scope.PAID_MODELS)),
    (LimitCause.CREDITS, 5.0, False, Rest(LimitCause.CREDITS, UNTIL_ACTED, Scope.PAID_MODELS)),
    (LimitCause.CREDITS, None, True, Rest(LimitCause.CREDITS, UNTIL_ACTED, Scope.PROVIDER)),
    (LimitCause.FREE_QUOTA, None, True, Rest(LimitCause.FREE_QUOTA, DEFAULT_QUOTA_COOLDOWN_S,
                                             Scope.FREE_MODELS)),
    (LimitCause.FREE_QUOTA, 30.0, False, Rest(LimitCause.FREE_QUOTA, 30.0, Scope.FREE_MODELS)),
    (LimitCause.REQUEST_COST, None, False, None),
])
def test_what_each_limit_of_an_account_rests(cause, retry_after, free_model, rest):
    failure = ProviderFailure(Outcome.OUT_OF_CREDITS, "402", retry_after_s=retry_after, limit=cause)
    assert reaction(failure, free_model=free_model) == Reaction(rest=rest)


@pytest.mark.parametrize(("model", "expected"), [
    ("fast", [("exo", ("llama-3.2-1b",)), ("openrouter", ("meta-llama/llama-3.2-1b-instruct",))]),
    ("paid-ok", [("openrouter", ("openai/gpt-4o-mini",))]),
    ("some/unaliased", [("exo", ("some/unaliased",)), ("openrouter", ("some/unaliased",)),
                        ("off", ("some/unaliased",))]),
])
def test_candidates_in_priority_order_with_their_ids(model, expected):
    assert [(c.provider.id, c.model_ids) for c in candidates(CONFIG, model)] == expected


@pytest.mark.parametrize(("provider", "model", "has_key", "local_only", "skipped"), [
    (EXO, "fast", False, False, None),  # local, keyless, free: always admitted by the gate
    (EXO, "fast", False, True, None),
    (OFF, "x", True, False, Outcome.DISABLED),
    (OPENROUTER, "fast", True, True, Outcome.NOT_ALLOWED),  # cloud paused
    (OPENROUTER, "fast", True, False, Outcome.NOT_ALLOWED),  # paid, no consent
    (OPENROUTER, "paid-ok", True, False, None),  # the alias consents
    (OPENROUTER, "paid-ok", False, False, Outcome.NO_KEY),
    (OPENROUTER, "gratis", True, False, None),  # a free variant needs no consent
])
def test_who_is_skipped_without_a_call(provider, model, has_key, local_only, skipped):
    candidate = next(c for c in candidates(CONFIG, model) if c.provider is provider) \
        if model in CONFIG.models else Candidate(provider, (model,))
    said = gate(CONFIG, candidate, model, has_key=has_key, local_only=local_only)
    assert (said[0] if said else None) == skipped
    if said is not None:
        assert said[1]  # every skip says why


def test_a_free_only_request_never_goes_where_it_would_be_charged():
    candidate = Candidate(OPENROUTER, ("openai/gpt-4o-mini",))
    outcome, why = gate(CONFIG, candidate, "gratis", has_key=True, local_only=False)
    assert outcome is Outcome.NOT_ALLOWED and "would charge" in why


@pytest.mark.parametrize(("passed_over", "reason"), [
    ([("exo", Outcome.TIMEOUT)], ("exo", Outcome.TIMEOUT)),
    ([("off", Outcome.DISABLED), ("exo", Outcome.SERVER_ERROR)], ("exo", Outcome.SERVER_ERROR)),
    ([("off", Outcome.DISABLED), ("exo", Outcome.NOT_ALLOWED)], None),  # skipped by policy only
    ([], None),
])
def test_the_failover_reason_is_the_first_provider_that_failed(passed_over, reason):
    """Of the providers passed over before the one that answered; a skip by policy (disabled,
    not allowed) is no failover."""
    assert failover_reason(passed_over) == reason
