"""Cloud accounts you can trust (issue 17), through real HTTP to the fake providers: each 402 by
its cause, warnings before the wall, free stays free."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime

import pytest

from router import (
    AccountLimited,
    CreditAlert,
    CreditLevel,
    CreditWall,
    LimitCause,
    NoProviderAvailable,
    Outcome,
    Router,
)
from router.accounts.watch import ACCOUNT_RECHECK_S
from router.core import Timing
from router.retry import retry_headers
from tests.conftest import quiet, until
from tests.endpoint_fixtures import TOKEN, endpoint  # noqa: F401
from tests.fakes.account import next_reset

pytestmark = pytest.mark.usefixtures("keys_in_env")

ASK = {"model": "llama-3.2-3b", "messages": [{"role": "user", "content": "hi there"}]}
FREE_MODEL = "meta-llama/llama-3.2-3b-instruct:free"
FREE = {"model": FREE_MODEL, "messages": [{"role": "user", "content": "hi"}]}
FREE_ALIAS = f'[models."free-llama"]\nopenrouter = "{FREE_MODEL}"\nfree_only = true\n'


class Clock:
    """The router's monotonic clock, moved by the test (rests and re-checks)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def outcomes(attempts) -> list[tuple[str, str, bool]]:
    return [(a.provider, str(a.outcome), a.called) for a in attempts]


def openrouter_status(router: Router):
    return {s.id: s for s in router.statuses()}["openrouter"]


# -- each 402 by its cause ------------------------------------------------------------------
async def test_in_flight_budget_waits_retry_after_then_tries_again(make_config, exo, openrouter, hf):
    config, _ = make_config()
    exo.stop()
    openrouter.account.in_flight_budget_usd = 1.0
    openrouter.account.in_flight_usd = 1.0  # other requests' estimates fill it
    clock = Clock()
    async with Router(config, timing=Timing(clock=clock)) as router:
        first = await router.chat(ASK)
        assert outcomes(first.attempts)[1:] == [("openrouter", "out-of-credits", True),
                                                ("huggingface", "ok", True)]
        status = openrouter_status(router)
        assert status.limit is LimitCause.IN_FLIGHT
        assert status.limit_ends is not None
        assert 0 < (status.limit_ends - datetime.now(UTC)).total_seconds() <= 2.5  # Retry-After: 2
        second = await router.chat(ASK)
        assert outcomes(second.attempts)[1] == ("openrouter", "out-of-credits", False)
        assert "too much paid spending in flight, for 2s more" in second.attempts[1].detail
        assert retry_headers(router.retry_after(second.attempts[1:2])) == {"Retry-After": "2"}
        openrouter.account.in_flight_usd = 0.0  # what was in flight settled
        clock.now += 2.1
        third = await router.chat(ASK)
    assert third.provider_used == "openrouter"
    assert len(openrouter.chat_requests) == 2


async def test_key_limit_rests_until_the_limit_resets(make_config, exo, openrouter, hf):
    config, _ = make_config()
    exo.stop()
    account = openrouter.account
    account.key_limit_usd, account.key_limit_reset, account.usage_monthly_usd = 5.0, "monthly", 5.0
    events: list[object] = []
    async with Router(config) as router:
        router.subscribe(events.append)
        first = await router.chat(ASK)
        second = await router.chat(ASK)
        status = openrouter_status(router)
    resets = next_reset("monthly", datetime.now(UTC))
    assert first.attempts[1].outcome is Outcome.OUT_OF_CREDITS and first.provider_used == "huggingface"
    assert outcomes(second.attempts)[1] == ("openrouter", "out-of-credits", False)
    assert f"until {resets:%Y-%m-%d %H:%M} UTC" in second.attempts[1].detail
    assert status.limit is LimitCause.KEY_LIMIT
    assert abs((status.limit_ends - resets).total_seconds()) < 5
    limited = [e for e in events if isinstance(e, AccountLimited)]
    assert [(e.cause, e.ends_at is not None) for e in limited] == [(LimitCause.KEY_LIMIT, True)]
    assert len(openrouter.chat_requests) == 1


async def test_key_limit_without_a_reset_in_the_answer_takes_the_key_calls(make_config, exo,
                                                                          openrouter, hf):
    config, _ = make_config()
    exo.stop()
    account = openrouter.account
    account.key_limit_usd, account.key_limit_reset = 5.0, "daily"
    async with Router(config) as router:
        await router.probe(config.provider("openrouter"))  # the key call: resets daily
        account.usage_daily_usd = 5.0  # spent elsewhere meanwhile; the 402 names no reset
        account.reset_in_error = False
        await router.chat(ASK)
        status = openrouter_status(router)
    assert status.limit is LimitCause.KEY_LIMIT
    midnight = next_reset("daily", datetime.now(UTC))
    assert abs((status.limit_ends - midnight).total_seconds()) < 5


async def test_a_key_limit_that_never_resets_lasts_until_the_key_call_shows_it_raised(
        make_config, exo, openrouter, hf):
    config, _ = make_config()
    exo.stop()
    openrouter.account.key_limit_usd, openrouter.account.usage_usd = 2.0, 2.0  # no reset
    async with Router(config) as router:
        await router.chat(ASK)
        status = openrouter_status(router)
        assert (status.limit, status.limit_ends) == (LimitCause.KEY_LIMIT, None)
        assert "until the key's limit is raised" in status.detail
        assert router.retry_after([a for a in (await router.chat(ASK)).attempts
                                   if a.provider == "openrouter"]) is None  # x-should-retry
        await router.probe(config.provider("openrouter"))  # a key call: still spent
        assert openrouter_status(router).limit is LimitCause.KEY_LIMIT
        openrouter.account.key_limit_usd = 10.0  # the user raised it
        await router.probe(config.provider("openrouter"))  # the next one sees it
        third = await router.chat(ASK)
    assert third.provider_used == "openrouter"


async def test_a_budget_the_key_call_cannot_see_is_not_lifted_by_it(make_config, exo, openrouter,
                                                                   hf):
    """A guardrail's budget (403) is not the key's cap: a key call showing the cap has credit
    left does not end its rest, so no request is wasted on it."""
    config, _ = make_config()
    exo.stop()
    account = openrouter.account
    account.key_limit_usd, account.usage_usd, account.key_limit_status = 1.0, 1.0, 403
    async with Router(config) as router:
        await router.chat(ASK)
        account.key_limit_usd = None  # what the key call shows: no cap on the key itself
        await router.probe(config.provider("openrouter"))
        second = await router.chat(ASK)
    assert outcomes(second.attempts)[1] == ("openrouter", "out-of-credits", False)
    assert len(openrouter.chat_requests) == 1


async def test_out_of_credits_waits_for_the_user_not_for_a_blind_retry(make_config, exo,
                                                                       openrouter, hf):
    config, _ = make_config()
    exo.stop()
    openrouter.account.balance_usd = 0.0
    clock = Clock()
    async with Router(config, timing=Timing(clock=clock)) as router:
        first = await router.chat(ASK)
        clock.now += 86400  # a day later: nothing came back by itself
        await router.probe(config.provider("openrouter"))  # a routine key call proves nothing
        second = await router.chat(ASK)
        assert outcomes(second.attempts)[1] == ("openrouter", "out-of-credits", False)
        assert second.attempts[1].detail.startswith("out of credits, until credit is added")
        free = await router.chat(FREE)  # its free models still answer
        openrouter.account.balance_usd = 20.0
        await router.account_watch.check_now()  # the user added credit and asks
        third = await router.chat(ASK)
    assert first.attempts[1].outcome is Outcome.OUT_OF_CREDITS
    assert free.provider_used == "openrouter" and free.cost_usd == 0.0
    assert third.provider_used == "openrouter"
    assert [r.body["model"] for r in openrouter.chat_requests] == [
        "meta-llama/llama-3.2-3b-instruct", FREE_MODEL, "meta-llama/llama-3.2-3b-instruct"]


async def test_negative_balance_refuses_even_free_models_and_holds_the_whole_provider(
        make_config, exo, openrouter, hf):
    config, _ = make_config()
    exo.stop()
    openrouter.account.balance_usd = -0.5
    async with Router(config) as router:
        with pytest.raises(NoProviderAvailable) as refused:
            await router.chat(FREE)
        paid = await router.chat(ASK)
        with pytest.raises(NoProviderAvailable) as again:
            await router.chat(FREE)
    attempts = {a.provider: a for a in refused.value.attempts}
    assert attempts["openrouter"].outcome is Outcome.OUT_OF_CREDITS
    assert "negative balance" in attempts["openrouter"].detail
    assert attempts["huggingface"].outcome is Outcome.NOT_ALLOWED
    assert "free-only" in attempts["huggingface"].detail
    assert outcomes(paid.attempts)[1:] == [("openrouter", "out-of-credits", False),
                                           ("huggingface", "ok", True)]
    assert "its free models still answer" not in paid.attempts[1].detail
    assert outcomes(again.value.attempts)[1] == ("openrouter", "out-of-credits", False)
    assert hf.chat_requests[0].body["model"] == "meta-llama/Llama-3.2-3B-Instruct"  # the paid one
    assert len(openrouter.chat_requests) == 1


async def test_a_request_too_costly_for_the_balance_fails_over_without_resting(make_config, exo,
                                                                               openrouter, hf):
    config, _ = make_config()
    exo.stop()
    openrouter.account.in_flight_budget_usd = 1e-9  # any request's estimate is larger
    async with Router(config) as router:
        first = await router.chat(ASK)
        openrouter.account.in_flight_budget_usd = None
        second = await router.chat(ASK)
    assert first.attempts[1].outcome is Outcome.OUT_OF_CREDITS and first.provider_used == "huggingface"
    assert second.provider_used == "openrouter"  # no rest: the next request was tried


async def test_a_guardrail_budget_403_is_a_limit_not_moderation(make_config, exo, openrouter, hf):
    config, _ = make_config()
    exo.stop()
    account = openrouter.account
    account.key_limit_usd, account.key_limit_reset, account.usage_daily_usd = 1.0, "daily", 1.0
    account.key_limit_status = 403
    async with Router(config) as router:
        result = await router.chat(ASK)
        status = openrouter_status(router)
    assert result.provider_used == "huggingface"  # failed over: not the request's fault
    assert status.limit is LimitCause.KEY_LIMIT


async def test_hugging_face_out_of_balance_waits_for_the_user(make_config, exo, openrouter, hf):
    config, _ = make_config()
    exo.stop()
    openrouter.account.balance_usd = 0.0
    hf.account.balance_usd = 0.0
    async with Router(config) as router:
        with pytest.raises(NoProviderAvailable) as first:
            await router.chat(ASK)
        with pytest.raises(NoProviderAvailable) as second:
            await router.chat(ASK)
        hf.account.balance_usd = 5.0
        await router.account_watch.check_now()
        third = await router.chat(ASK)
    assert outcomes(first.value.attempts)[2] == ("huggingface", "out-of-credits", True)
    assert outcomes(second.value.attempts)[2] == ("huggingface", "out-of-credits", False)
    assert first.value.only_limits
    assert third.provider_used == "huggingface"


# -- free stays free ------------------------------------------------------------------------
async def test_a_free_only_alias_never_reaches_a_paid_model_even_without_paid_consent(
        make_config, exo, openrouter, hf):
    config, _ = make_config(extra=FREE_ALIAS)
    config = dataclasses.replace(config, allow_paid_failover=False)
    exo.stop()
    async with Router(config) as router:
        result = await router.chat({**FREE, "model": "free-llama"})
    assert result.provider_used == "openrouter" and result.cost_usd == 0.0
    assert openrouter.chat_requests[0].body["model"] == FREE_MODEL
    assert hf.chat_requests == []


async def test_a_free_model_is_refused_with_the_reason_instead_of_failing_over(make_config, exo,
                                                                             openrouter, hf):
    config, _ = make_config()
    exo.stop()
    openrouter.account.free_daily_limit, openrouter.account.free_used_today = 50, 50
    async with Router(config) as router:
        with pytest.raises(NoProviderAvailable) as refused:
            await router.chat(FREE)
        with pytest.raises(NoProviderAvailable) as again:
            await router.chat(FREE)
        paid = await router.chat(ASK)  # paid models are not held by the free quota
    first = {a.provider: a for a in refused.value.attempts}
    assert first["openrouter"].outcome is Outcome.RATE_LIMITED  # the 429, free-models-per-day
    second = {a.provider: a for a in again.value.attempts}
    assert (second["openrouter"].outcome, second["openrouter"].called) == (Outcome.OVER_BUDGET, False)
    assert "today's free-model requests are used up" in second["openrouter"].detail
    assert second["huggingface"].outcome is Outcome.NOT_ALLOWED
    assert hf.chat_requests == []
    assert paid.provider_used == "openrouter"


async def test_the_key_call_showing_no_free_requests_left_refuses_without_a_call(make_config, exo,
                                                                               openrouter, hf):
    config, _ = make_config()
    exo.stop()
    openrouter.account.free_daily_limit, openrouter.account.free_used_today = 50, 50
    async with Router(config) as router:
        await router.probe(config.provider("openrouter"))
        with pytest.raises(NoProviderAvailable) as refused:
            await router.chat(FREE)
    assert outcomes(refused.value.attempts)[1] == ("openrouter", "over-budget", False)
    assert openrouter.chat_requests == [] and hf.chat_requests == []


# -- warnings before the wall ---------------------------------------------------------------
async def test_key_limit_warnings_at_80_and_95_percent_and_at_the_wall(make_config, exo,
                                                                       openrouter, hf):
    config, _ = make_config()
    account = openrouter.account
    account.key_limit_usd, account.key_limit_reset = 10.0, "weekly"
    alerts: list[CreditAlert] = []
    provider = config.provider("openrouter")
    async with Router(config) as router:
        router.subscribe(lambda e: alerts.append(e) if isinstance(e, CreditAlert) else None)
        for spent in (7.9, 8.0, 8.5, 9.5, 9.6, 10.0, 0.0, 8.2):
            account.usage_weekly_usd = spent
            await router.probe(provider)
        status = openrouter_status(router)
    assert [(a.wall, a.level) for a in alerts] == [
        (CreditWall.KEY_LIMIT, CreditLevel.NEARLY), (CreditWall.KEY_LIMIT, CreditLevel.CLOSE),
        (CreditWall.KEY_LIMIT, CreditLevel.REACHED), (CreditWall.KEY_LIMIT, CreditLevel.NEARLY)]
    assert alerts[0].left == pytest.approx(2.0) and alerts[0].of == 10.0
    assert alerts[0].resets_at == next_reset("weekly", datetime.now(UTC))
    assert status.account is not None and status.account.level is CreditLevel.NEARLY
    assert "credit $1.80 of $10.00 left (80% of the way to the key's limit)" in status.account.summary()


async def test_a_credit_floor_warns_before_the_credit_gets_there(make_config, exo, openrouter, hf):
    config, _ = make_config(or_extra="credit_floor_usd = 2.0")
    account = openrouter.account
    account.key_limit_usd = 10.0
    alerts: list[CreditAlert] = []
    async with Router(config) as router:
        router.subscribe(lambda e: alerts.append(e) if isinstance(e, CreditAlert) else None)
        for spent in (6.3, 6.4, 7.6, 8.0):  # the floor is $2: 8 dollars to spend down to it
            account.usage_usd = spent
            await router.probe(config.provider("openrouter"))
    assert [(a.wall, a.level, round(a.left, 2)) for a in alerts] == [
        (CreditWall.CREDIT_FLOOR, CreditLevel.NEARLY, 1.6),
        (CreditWall.CREDIT_FLOOR, CreditLevel.CLOSE, 0.4),
        (CreditWall.CREDIT_FLOOR, CreditLevel.REACHED, 0.0)]


async def test_a_floor_on_a_key_without_a_limit_says_it_cannot_be_checked(make_config, exo,
                                                                          openrouter, hf):
    config, _ = make_config(or_extra="credit_floor_usd = 2.0")
    async with Router(config) as router:
        await router.probe(config.provider("openrouter"))
        status = openrouter_status(router)
    assert status.account is not None and status.account.floor_unchecked
    assert any("cannot be checked" in line for line in status.account.lines())


async def test_free_requests_nearly_gone_then_used_up_by_our_own_answers(make_config, exo,
                                                                        openrouter, hf):
    config, _ = make_config()
    exo.stop()
    openrouter.account.free_daily_limit, openrouter.account.free_used_today = 50, 44
    alerts: list[CreditAlert] = []
    async with Router(config) as router:
        router.subscribe(lambda e: alerts.append(e) if isinstance(e, CreditAlert) else None)
        await router.probe(config.provider("openrouter"))
        assert alerts == []
        for _ in range(6):
            await router.chat(FREE)
        with pytest.raises(NoProviderAvailable) as refused:
            await router.chat(FREE)  # our count says none left: no call, no 429
    assert [(a.wall, a.level, a.left) for a in alerts] == [
        (CreditWall.FREE_REQUESTS, CreditLevel.NEARLY, 5),
        (CreditWall.FREE_REQUESTS, CreditLevel.REACHED, 0)]
    assert outcomes(refused.value.attempts)[1] == ("openrouter", "over-budget", False)
    assert len(openrouter.chat_requests) == 6


async def test_the_key_call_runs_after_traffic_at_most_every_few_minutes(make_config, exo,
                                                                        openrouter, hf):
    config, _ = make_config()
    exo.stop()
    clock = Clock()
    key_calls = lambda: openrouter.hits.get("/api/v1/key", 0)  # noqa: E731
    async with Router(config, timing=Timing(clock=clock, cloud_probe_interval_s=86400)) as router:
        router.start_probes()
        await router.keys_ready()
        await until(key_calls)  # the check at start
        assert key_calls() == 1
        since = set(router._tasks)
        await router.chat(ASK)
        await router.chat(ASK)
        await quiet(router, since)  # whatever the two answers set off has run
        assert key_calls() == 1  # checked a moment ago
        clock.now += ACCOUNT_RECHECK_S
        await router.chat(ASK)
        await until(lambda: key_calls() == 2)
    assert key_calls() == 2


def test_limit_rests_by_cause():
    from router.errors import ProviderFailure
    from router.policy import UNTIL_ACTED, Scope, reaction

    def rest(cause, seconds=None, free=False):
        failure = ProviderFailure(Outcome.OUT_OF_CREDITS, "x", limit=cause, retry_after_s=seconds)
        return reaction(failure, free_model=free).rest

    assert rest(LimitCause.IN_FLIGHT, 2.0).seconds == 2.0
    assert rest(LimitCause.IN_FLIGHT).seconds == 5.0  # no Retry-After: a short wait
    assert rest(LimitCause.KEY_LIMIT, 3600.0).seconds == 3600.0
    assert rest(LimitCause.KEY_LIMIT).seconds == UNTIL_ACTED
    assert math.isinf(rest(LimitCause.CREDITS, 5.0).seconds)  # never a blind retry
    assert rest(LimitCause.CREDITS).scope is Scope.PAID_MODELS
    assert rest(LimitCause.CREDITS, free=True).scope is Scope.PROVIDER  # a negative balance
    assert rest(LimitCause.FREE_QUOTA, 60.0).scope is Scope.FREE_MODELS
    assert rest(LimitCause.REQUEST_COST) is None


async def test_the_endpoint_refuses_a_free_request_the_account_cannot_serve(
        endpoint, exo, openrouter, hf):  # noqa: F811
    """Through the local endpoint with the openai SDK: a clear 429 naming the reason, and no
    retry suggested while nothing would serve it for free; HF (paid) is never asked."""
    import httpx
    import openai

    openrouter.account.balance_usd = -1.0
    sdk = openai.AsyncOpenAI(base_url=endpoint.url, api_key=TOKEN, max_retries=2)
    try:
        with pytest.raises(openai.RateLimitError) as refused:
            await sdk.chat.completions.create(model=FREE_MODEL, messages=FREE["messages"])
    finally:
        await sdk.close()
    response: httpx.Response = refused.value.response
    assert response.headers["x-should-retry"] == "false"
    assert "openrouter:out-of-credits" in response.headers["x-exo-bridge-attempts"]
    assert "huggingface:not-allowed" in response.headers["x-exo-bridge-attempts"]
    assert "negative balance" in refused.value.message
    assert len(openrouter.chat_requests) == 1  # the SDK did not retry
    assert hf.chat_requests == []
