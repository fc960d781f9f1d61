"""The cost plots' axes (pyqtgraph, offscreen): what the tick labels say and that they never
overlap."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

pytest.importorskip("PySide6", reason="the desktop extra is not installed")
pytest.importorskip("pyqtgraph")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desktop.windows.cost_format import DAY_S


def start(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


@pytest.fixture
def axes(qapp):
    from desktop.windows.cost_axes import PeriodAxis, ValueAxis

    return PeriodAxis(), ValueAxis("money")


def test_money_axis_writes_dollars_with_the_places_the_ticks_need(axes):
    _, value = axes
    assert value.tickStrings([0.000002, 0.000004], 1.0, 0.000002) == ["$0.000002", "$0.000004"]
    assert value.tickStrings([0.0, 0.05, 0.1], 1.0, 0.05) == ["$0.00", "$0.05", "$0.10"]
    value.set_unit("count", "tokens")
    value.setRange(0, 3_000_000)
    assert value.tickStrings([1_000_000.0, 2_500_000.0], 1.0, 500_000) == ["1.0M", "2.5M"]
    value.setRange(0, 9_000)
    assert value.tickStrings([2_000.0, 4_000.0], 1.0, 2_000) == ["2,000", "4,000"]


def test_count_axes_tick_only_whole_numbers(axes):
    _, value = axes
    value.set_unit("count", "requests")
    levels = value.tickSpacing(0, 2.2, 200)
    assert levels and all(spacing >= 1 for spacing, _offset in levels)
    value.set_unit("count", "p50 (ms)", whole=False)
    assert any(spacing < 1 for spacing, _offset in value.tickSpacing(0, 2.2, 200))


def test_money_axis_has_no_si_scale_and_carries_the_unit(axes):
    _, value = axes
    value.set_unit("money", "cost (US$)")
    value.setRange(0, 0.00001)
    assert "cost (US$)" in value.labelString() and "x1e" not in value.labelString()


def test_day_axis_labels_each_day_under_its_bar(axes):
    dates, _ = axes
    since = start(date(2026, 11, 16))
    [(spacing, values)] = dates.tickValues(since, since + 7 * DAY_S, 700)
    assert spacing == DAY_S and len(values) == 7
    assert dates.tickStrings(values, 1.0, spacing) == [f"Nov {d}" for d in range(16, 23)]


def test_month_axis_names_the_year_once_and_in_january(axes):
    dates, _ = axes
    dates.set_by("month")
    [(_, values)] = dates.tickValues(start(date(2025, 11, 1)), start(date(2026, 11, 23)), 2000)
    labels = dates.tickStrings(values, 1.0, 0.0)
    assert labels[:4] == ["Nov 2025", "Dec", "Jan 2026", "Feb"] and labels[-1] == "Nov"


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None, max_examples=60)
@given(by=st.sampled_from(["day", "month"]), days=st.integers(1, 400), size=st.integers(150, 3000),
       first=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 1, 1)))
def test_date_labels_never_overlap(axes, by, days, size, first):
    from PySide6.QtGui import QFontMetricsF

    dates, _ = axes
    dates.set_by(by)
    low = start(first)
    high = low + days * DAY_S
    [(_, values)] = dates.tickValues(low, high, size)
    labels = dates.tickStrings(values, 1.0, 0.0)
    metrics = QFontMetricsF(dates.font())
    for (a, la), (b, lb) in zip(zip(values, labels, strict=True), list(zip(values, labels, strict=True))[1:],
                                strict=False):
        gap = (b - a) * size / (high - low)
        assert gap >= (metrics.horizontalAdvance(la) + metrics.horizontalAdvance(lb)) / 2, (la, lb)
    assert all(low <= v <= high for v in values)
    if by == "day" and days >= 2 and size >= 600 and days <= 7:
        assert len(values) == len({v // DAY_S for v in values}) >= days - 1  # every day labelled


def test_every_label_on_a_money_axis_has_the_same_places(axes):
    _, value = axes
    value.setRange(0, 0.032)
    levels = value.tickValues(0, 0.032, 300)[:value.style["maxTextLevel"] + 1]
    assert len(levels) == 2  # major ($0.01...) and minor ($0.005...) labels
    texts = [t for spacing, values in levels for t in value.tickStrings(values, 1.0, spacing)]
    assert "$0.030" in texts and "$0.025" in texts
    assert {len(t.split(".")[1]) for t in texts} == {3}
