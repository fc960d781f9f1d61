"""How the cost window writes money, counts, dates and rates (no Qt needed)."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desktop.windows.cost_format import (
    DAY_S,
    MEANINGFUL_SAMPLE,
    contrast,
    count_tick,
    date_tick,
    failover_text,
    money_tick,
    period_of,
    period_title,
)

amounts = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)
spacings = st.floats(min_value=1e-9, max_value=1e11, allow_nan=False, allow_infinity=False)


def dollars(text: str) -> float:
    assert re.fullmatch(r"-?\$[0-9,]+(\.[0-9]+)?", text), text
    return float(text.replace("$", "").replace(",", ""))


@given(amounts, spacings)
def test_money_ticks_are_dollars_never_scientific_and_within_half_a_step(amount, spacing):
    text = money_tick(amount, spacing)
    assert "e" not in text.lower() and text.startswith("$")
    # rounded to no coarser than the tick step (or a trillionth of a dollar at the very bottom)
    assert abs(dollars(text) - amount) <= max(spacing / 2, 5e-13) + amount * 1e-15


@given(amounts, spacings)
def test_neighbouring_money_ticks_read_differently(amount, spacing):
    if spacing < 1e-12 or amount / spacing > 1e12:  # past what a float can tell apart
        return
    assert money_tick(amount, spacing) != money_tick(amount + spacing, spacing)


@pytest.mark.parametrize(("value", "spacing", "text"), [
    (0.000004, 0.000002, "$0.000004"), (0.12, 0.02, "$0.12"), (0.5, 0.5, "$0.50"),
    (1200, 200, "$1,200"), (0, 1, "$0"), (0, 0.01, "$0.00"), (0.005, 0.005, "$0.005"),
    (-0.0, 0.01, "$0.00"), (-0.01, 0.01, "-$0.01"),
])
def test_money_tick_examples(value, spacing, text):
    assert money_tick(value, spacing) == text


@given(st.floats(min_value=0, max_value=1e15, allow_nan=False), st.floats(min_value=1, max_value=1e14))
def test_count_ticks_never_scientific_and_keep_their_magnitude(value, spacing):
    text = count_tick(value, spacing, value)
    assert "e" not in text.lower()
    match = re.fullmatch(r"([0-9,]+(?:\.[0-9]+)?)([kMB]?)", text)
    assert match, text
    number = float(match[1].replace(",", "")) * {"": 1, "k": 1e3, "M": 1e6, "B": 1e9}[match[2]]
    assert abs(number - value) <= spacing / 2 + value * 1e-12


@pytest.mark.parametrize(("value", "spacing", "largest", "text"), [
    (950, 50, 950, "950"), (9999, 1, 9999, "9,999"), (12_500, 500, 12_500, "12.5k"),
    (3_000_000, 1_000_000, 3_000_000, "3M"), (2_500_000, 500_000, 3_000_000, "2.5M"),
    (500_000, 500_000, 3_000_000, "0.5M"), (4e9, 1e9, 4e9, "4B"),
])
def test_count_tick_examples(value, spacing, largest, text):
    assert count_tick(value, spacing, largest) == text


def noon(day: str) -> float:
    return datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("x", "by", "text"), [
    (noon("2026-11-28"), "day", "Nov 28"), (noon("2026-11-01"), "day", "Nov 1"),
    (noon("2026-11-16"), "month", "Nov 2026"), (noon("2027-01-03"), "week", "Jan 3"),
])
def test_date_ticks_name_the_month(x, by, text):
    assert date_tick(x, by) == text


@given(st.dates(min_value=date(1971, 1, 1), max_value=date(2999, 12, 31)),
       st.floats(min_value=0, max_value=DAY_S - 1))
def test_a_position_maps_back_to_its_period(day, seconds):
    x = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() + seconds
    assert period_of(x, "day") == day.isoformat()
    assert period_of(x, "month") == day.isoformat()[:7]
    monday = date.fromisoformat(period_of(x, "week"))
    assert monday.weekday() == 0 and 0 <= (day - monday).days < 7
    assert re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}", date_tick(x, "day"))


def test_period_titles():
    assert period_title("2026-11-21", "day") == "Sat Nov 21 2026"
    assert period_title("2026-11-16", "week") == "week of Nov 16 2026"
    assert period_title("2026-11", "month") == "November 2026"


@pytest.mark.parametrize(("failovers", "requests", "text"), [
    (2, 2, "2 failovers in 2 requests"), (1, 3, "1 failover in 3 requests"),
    (0, 1, "0 failovers in 1 request"), (0, 0, "no failovers"),
    (20, 640, "failover rate 3.1% (of 640 requests)"),
    (1, MEANINGFUL_SAMPLE - 1, f"1 failover in {MEANINGFUL_SAMPLE - 1} requests"),
    (1, MEANINGFUL_SAMPLE, f"failover rate 5.0% (of {MEANINGFUL_SAMPLE} requests)"),
])
def test_failovers_are_a_rate_only_over_a_meaningful_sample(failovers, requests, text):
    assert failover_text(failovers, requests) == text


@given(st.integers(0, 10**7), st.integers(1, 10**7))
def test_failover_wording_always_gives_its_sample(failovers, requests):
    text = failover_text(failovers, requests)
    assert f"{requests:,} request" in text
    assert ("%" in text) == (requests >= MEANINGFUL_SAMPLE)
    if "%" in text:
        rate = float(text.split("rate ")[1].split("%")[0])
        assert math.isclose(rate, 100 * failovers / requests, abs_tol=0.05)


def test_provider_colours_stand_out_on_the_dark_plot():
    pytest.importorskip("PySide6")
    from desktop.appearance import DARK
    from desktop.icons import PROVIDER_COLOURS

    for colour in (*PROVIDER_COLOURS, "#00bcd4", "#ff7043"):  # and the saved line, failover bars
        assert contrast(colour, DARK.background) >= 3.0, colour
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
