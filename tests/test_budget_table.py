"""The day's budget and what an answer costs, as tables, in process: no HTTP, no ledger, the
day on an injected clock. (The ledger's side, across processes: tests/test_budget_money.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.config import parse_config
from router.errors import Attempt, Outcome
from router.events import EventHub
from router.money.budget import Budget, Reservation
from router.money.budget_rule import passed
from router.money.prices import Price
from router.money.pricing import Pricer
from router.money.terms import CostSource, Flag

ASK = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100}


def provider(**limits: object):
    lines = "".join(f"{key} = {value}\n" for key, value in limits.items())
    config = parse_config(f'[[providers]]\nid = "cloud"\nkind = "openai"\nbase_url = '
                          f'"http://127.0.0.1:9/v1"\npaid = true\n{lines}', "budget.toml")
    return config, config.providers[0]


class Day:
    def __init__(self) -> None:
        self.at = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


def answered(cost: float, tokens: int = 30) -> Attempt:
    return Attempt("cloud", Outcome.OK, usage={"prompt_tokens": tokens - 10, "completion_tokens": 10},
                   cost_usd=cost, cost_source=CostSource.REPORTED)


async def run(steps: list[tuple[str, float]], price: Price | None = None, **limits: object) -> list[bool]:
    """Each step: ("ask", real cost) — reserve, then settle at once with that cost — or
    ("hold", 0) — reserve and keep the hold open (an answer still streaming). True: admitted."""
    config, p = provider(**limits)
    budget = Budget(config, EventHub(), Day())
    admitted = []
    for step, cost in steps:
        held = await budget.reserve(p, ASK, price)
        admitted.append(isinstance(held, Reservation))
        if isinstance(held, Reservation) and step == "ask":
            budget.settle(held, answered(cost), p)
    return admitted


@pytest.mark.parametrize(("steps", "price", "limits", "admitted"), [
    # a request limit counts calls, held ones too
    ([("ask", 0)] * 3, None, {"daily_request_limit": 2}, [True, True, False]),
    ([("hold", 0)] * 3, None, {"daily_request_limit": 2}, [True, True, False]),
    # no price table (a hold of $0): a USD limit already spent refuses all the same
    ([("ask", 0.6)] * 4, None, {"daily_cost_limit_usd": 1.0}, [True, True, False, False]),
    # the hold's estimate counts until the answer settles: ~$0.31 a hold, $1 a day
    ([("hold", 0)] * 4, Price(0.003, 0.003), {"daily_cost_limit_usd": 1.0},
     [True, True, True, False]),
    # the real cost replaces the estimate at once: $0.60 answers under $1, two pass
    ([("ask", 0.6)] * 6, Price(0.001, 0.001), {"daily_cost_limit_usd": 1.0},
     [True, True, False, False, False, False]),
    # tokens: each asks for up to 100 completion tokens plus its prompt
    ([("hold", 0)] * 4, None, {"daily_token_limit": 310}, [True, True, True, False]),
    # no limit: nothing is held back
    ([("ask", 5.0)] * 5, None, {}, [True] * 5),
])
async def test_who_is_admitted_today(steps, price, limits, admitted):
    assert await run(steps, price, **limits) == admitted


async def test_the_limit_comes_back_at_midnight_utc():
    config, p = provider(daily_request_limit=1)
    day = Day()
    budget = Budget(config, EventHub(), day)
    first = await budget.reserve(p, ASK)
    assert isinstance(first, Reservation)
    budget.settle(first, answered(0.0), p)
    refused = await budget.reserve(p, ASK)
    assert isinstance(refused, str) and "request limit 1 reached" in refused
    assert budget.resets_at() == datetime(2026, 12, 6, tzinfo=UTC)
    day.at += timedelta(hours=12)  # 00:00 UTC
    assert isinstance(await budget.reserve(p, ASK), Reservation)


@given(st.floats(0, 100), st.floats(0, 100), st.floats(0, 100), st.floats(0, 10))
def test_once_a_limit_is_passed_more_use_never_makes_it_pass_again(limit, used, more, want):
    """The one rule: at or past a limit is refused whatever is wanted, and using more never
    turns a refusal into a pass."""
    refused = passed([(limit, used, want, "USD")]) is not None
    assert passed([(limit, used + more, want, "USD")]) is not None or not refused
    if used >= limit:
        assert passed([(limit, used, 0.0, "USD")]) is not None


# -- what an answer costs --------------------------------------------------------------------
USAGE = {"prompt_tokens": 1000, "completion_tokens": 500}


@pytest.mark.parametrize(("kind_toml", "usage", "estimated", "cost", "source", "flags"), [
    ('kind = "exo"', {**USAGE, "cost": 9.0}, False, 0.0, CostSource.FREE, ()),
    ('kind = "openrouter"', {**USAGE, "cost": 0.25}, False, 0.25, CostSource.REPORTED, ()),
    ('kind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nprompt_price_per_mtok = 2.0\n'
     'completion_price_per_mtok = 4.0', USAGE, False, 0.004, CostSource.PRICE_TABLE, ()),
    ('kind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nprompt_price_per_mtok = 2.0\n'
     'completion_price_per_mtok = 4.0', USAGE, True, 0.004, CostSource.ESTIMATED, ()),
    ('kind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nprompt_price_per_mtok = 2.0\n'
     'completion_price_per_mtok = 4.0', {**USAGE, "cost": float("nan")}, False, 0.004,
     CostSource.PRICE_TABLE, (Flag.USAGE_INVALID,)),
    ('kind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nprompt_price_per_mtok = 2.0\n'
     'completion_price_per_mtok = 4.0', {**USAGE, "cost": 4.0}, False, 4.0, CostSource.REPORTED,
     (Flag.COST_ANOMALY,)),  # a thousand times what the price list says
    ('kind = "openai"\nbase_url = "http://127.0.0.1:9/v1"', USAGE, False, 0.0,
     CostSource.ESTIMATED, (Flag.NO_PRICE,)),
])
def test_what_an_answer_costs(kind_toml, usage, estimated, cost, source, flags):
    config = parse_config(f'[[providers]]\nid = "p"\n{kind_toml}\n', "cost.toml")
    got = Pricer().cost(config.providers[0], "some-model", usage, estimated, {})
    assert got[0] == pytest.approx(cost) and got[1] is source and got[2] == flags
