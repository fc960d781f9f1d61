"""Health as tables, on an injected clock: what a run of failures does to a provider's
admission, and when it is admitted again. In process; no HTTP, no sleeping."""

from __future__ import annotations

import pytest

from router.config import parse_config
from router.errors import LimitCause, Outcome, ProviderFailure
from router.events import EventHub, HealthChanged
from router.health import HALF_OPEN_AFTER_S, MODEL_UNAVAILABLE_FOR_S, HealthBook
from router.policy import DEFAULT_RATE_LIMIT_COOLDOWN_S, SOFT_FAILURES_TO_OPEN
from router.providers import HealthState

CONFIG = parse_config('''
[[providers]]
id = "exo"
kind = "exo"
[[providers]]
id = "openrouter"
kind = "openrouter"
''', "health.toml")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def book():
    clock = Clock()
    events = EventHub()
    seen: list[HealthChanged] = []
    events.subscribe(lambda e: seen.append(e) if isinstance(e, HealthChanged) else None)
    health = HealthBook(CONFIG.providers, events, clock)
    return health, clock, seen


def fail(book_: HealthBook, outcome: Outcome, *, model: str | None = "m", retry_after=None,
         limit=None) -> None:
    book_.record_failure("openrouter", model, ProviderFailure(outcome, f"{outcome} here",
                                                              retry_after_s=retry_after, limit=limit))


# (failures in a row, seconds later, skipped as) — None: admitted
@pytest.mark.parametrize(("failures", "later_s", "skipped"), [
    ([Outcome.TIMEOUT] * (SOFT_FAILURES_TO_OPEN - 1), 0, None),  # soft: not yet
    ([Outcome.TIMEOUT] * SOFT_FAILURES_TO_OPEN, 0, Outcome.CIRCUIT_OPEN),
    ([Outcome.SERVER_ERROR] * SOFT_FAILURES_TO_OPEN, HALF_OPEN_AFTER_S, None),  # half-open
    ([Outcome.REFUSED], 0, Outcome.CIRCUIT_OPEN),  # at once
    ([Outcome.REFUSED], HALF_OPEN_AFTER_S - 1, Outcome.CIRCUIT_OPEN),
    ([Outcome.RATE_LIMITED], DEFAULT_RATE_LIMIT_COOLDOWN_S - 1, Outcome.RATE_LIMITED),
    ([Outcome.RATE_LIMITED], DEFAULT_RATE_LIMIT_COOLDOWN_S, None),
    ([Outcome.INVALID_KEY], 10_000, Outcome.INVALID_KEY),  # until a new key
    ([Outcome.BAD_REQUEST] * 5, 0, None),  # the request's fault, not the provider's
    ([Outcome.MODEL_UNAVAILABLE] * 5, 0, None),  # the provider is fine; the model is not
])
def test_a_run_of_failures_and_when_it_is_admitted_again(book, failures, later_s, skipped):
    health, clock, _ = book
    for outcome in failures:
        fail(health, outcome)
    clock.now += later_s
    said = health.admit_provider("openrouter")
    assert (said[0] if said else None) == skipped
    assert health.admit_provider("exo") is None  # one provider's trouble is its own


def test_a_half_open_provider_that_fails_again_opens_at_once(book):
    health, clock, _ = book
    fail(health, Outcome.REFUSED)
    clock.now += HALF_OPEN_AFTER_S
    assert health.admit_provider("openrouter") is None  # one request through
    fail(health, Outcome.TIMEOUT)  # a soft failure, but half-open: open again
    assert health.admit_provider("openrouter")[0] is Outcome.CIRCUIT_OPEN


def test_a_success_closes_the_breaker_and_forgets_soft_failures(book):
    health, clock, _ = book
    for _ in range(SOFT_FAILURES_TO_OPEN - 1):
        fail(health, Outcome.TIMEOUT)
    health.record_success("openrouter", 12.0)
    fail(health, Outcome.TIMEOUT)
    assert health.admit_provider("openrouter") is None


@pytest.mark.parametrize(("later_s", "admitted"), [
    (0, False), (MODEL_UNAVAILABLE_FOR_S - 1, False), (MODEL_UNAVAILABLE_FOR_S + 1, True)])
def test_a_missing_model_is_skipped_for_a_while_its_provider_not(book, later_s, admitted):
    health, clock, _ = book
    fail(health, Outcome.MODEL_UNAVAILABLE, model="gone")
    clock.now += later_s
    assert (health.admit_model("openrouter", ("gone",)).model_id == "gone") is admitted
    assert health.admit_model("openrouter", ("other",)).model_id == "other"


@pytest.mark.parametrize(("cause", "model", "skipped_model"), [
    (LimitCause.CREDITS, "paid/model", "paid/model"),  # a paid model met it: paid ones held
    (LimitCause.FREE_QUOTA, "x/model:free", "x/model:free"),  # the day's free requests
])
def test_a_limit_of_the_account_holds_the_models_it_covers(book, cause, model, skipped_model):
    health, _, _ = book
    fail(health, Outcome.OUT_OF_CREDITS, model=model, limit=cause)
    admission = health.admit_model("openrouter", (skipped_model,))
    assert admission.model_id is None and admission.skip is not None
    other = "x/other:free" if cause is LimitCause.CREDITS else "paid/other"
    assert health.admit_model("openrouter", (other,)).model_id == other


def test_each_change_of_state_is_told_once_and_fail_back_says_recovered(book):
    health, clock, seen = book
    fail(health, Outcome.REFUSED)
    fail(health, Outcome.REFUSED)
    assert [(e.provider, e.new_state, e.recovered) for e in seen] == [
        ("openrouter", HealthState.DOWN, False)]
    clock.now += HALF_OPEN_AFTER_S
    health.record_success("openrouter", 20.0)
    assert [(e.provider, e.new_state, e.recovered) for e in seen[1:]] == [
        ("openrouter", HealthState.HEALTHY, True)]
