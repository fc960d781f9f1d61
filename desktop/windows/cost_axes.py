"""The cost plots' axes (pyqtgraph): dollars, counts and dates written for people
(desktop.windows.cost_format), never ``4e-06`` or a bare day number. Imported with pyqtgraph,
only once the cost window is open."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import pyqtgraph as pg
from PySide6.QtGui import QFontMetricsF

from desktop.windows.cost_format import DAY_S, bucket_day, count_tick, date_tick, money_tick

DAY_STEPS: tuple[int, ...] = (1, 2, 3, 7, 14, 28, 56, 91, 182, 364)
MONTH_STEPS: tuple[int, ...] = (1, 2, 3, 6, 12, 24, 60)
MONDAY = 4  # 1970-01-05, day 4 of the epoch, was a Monday: multi-day steps start on Mondays


class ValueAxis(pg.AxisItem):  # type: ignore[misc]
    """A y axis for money (``$0.0200``) or counts (``12,500``, ``3.2M``; whole numbers only)."""

    def __init__(self, unit: str = "count") -> None:
        super().__init__("left")
        self.unit = unit
        self.whole = True  # counts of things: no tick at 0.5 requests
        self.finest = 0.0  # the finest labelled tick spacing, so all labels share their places
        self.enableAutoSIPrefix(False)  # the unit is in the label; no "x1e-06" scale
        self.setStyle(maxTextLevel=1)  # labels on major and minor ticks, not the finest

    def set_unit(self, unit: str, label: str, *, whole: bool = True) -> None:
        self.unit, self.whole = unit, whole
        self.setLabel(label, **self.labelStyle)
        self.picture = None
        self.update()

    def tickSpacing(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, float]]:
        levels: list[tuple[float, float]] = super().tickSpacing(minVal, maxVal, size)
        if self.unit == "money" or not self.whole:
            return levels
        whole = [(spacing, offset) for spacing, offset in levels if spacing >= 1]
        return whole or [(1.0, 0.0)]

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, list[float]]]:
        levels: list[tuple[float, list[float]]] = super().tickValues(minVal, maxVal, size)
        labelled = [spacing for spacing, _values in levels[:self.style["maxTextLevel"] + 1]]
        self.finest = min(labelled, default=0.0)
        return levels

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        """Every label on the axis with the same places ($0.020, $0.025, $0.030)."""
        spacing = min(spacing, self.finest) if self.finest > 0 else spacing
        if self.unit == "money":
            return [money_tick(v * scale, spacing * scale) for v in values]
        largest = max((abs(v) for v in self.range), default=0.0)
        return [count_tick(v * scale, spacing * scale, largest) for v in values]


class PeriodAxis(pg.AxisItem):  # type: ignore[misc]
    """The time axis: one label per bucket (``Nov 28``; ``Nov 2026`` by month) at the bar's
    centre, thinned to every 2nd, 3rd... week or quarter so labels never overlap."""

    def __init__(self) -> None:
        super().__init__("bottom")
        self.by = "day"

    def set_by(self, by: str) -> None:
        self.by = by
        self.picture = None
        self.update()

    def _fits(self, values: list[float], pixels_per_unit: float) -> bool:
        """Whether these ticks' labels stand apart (a letter's width between neighbours)."""
        metrics = QFontMetricsF(self.style["tickFont"] or self.font())
        gap = metrics.horizontalAdvance("M")
        widths = [metrics.horizontalAdvance(text) for text in self.tickStrings(values, 1.0, 0.0)]
        return all((b - a) * pixels_per_unit >= (wa + wb) / 2 + gap
                   for a, b, wa, wb in zip(values, values[1:], widths, widths[1:], strict=False))

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, list[float]]]:
        low, high = sorted((minVal, maxVal))
        if not (math.isfinite(low) and math.isfinite(high)) or high <= low or size <= 0:
            return []
        if (high - low) / DAY_S > 3000:  # never with the window's ranges (no zooming)
            return []
        if self.by == "month":
            centres, steps, unit = _month_centres(low, high), MONTH_STEPS, 30 * DAY_S
        else:
            centres, steps, unit = _day_centres(low, high), DAY_STEPS, DAY_S
        chosen: list[float] = []
        for step in steps:
            chosen = [x for x in centres if _index(x, self.by) % step == 0]
            if self._fits(chosen, size / (high - low)):
                break
        return [(step * unit, chosen)]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        """Months name their year on the first label and in January: ``Nov 2025``, ``Dec``,
        ``Jan 2026``; days read ``Nov 28``."""
        if self.by != "month":
            return [date_tick(v, self.by) for v in values]
        first = min(values, default=0.0)
        return [date_tick(v, "month") if v == first or bucket_day(v).month == 1
                else bucket_day(v).strftime("%b") for v in values]


def _index(x: float, by: str) -> int:
    """The bucket's number since 1970 (months; days counted from the first Monday)."""
    day = bucket_day(x)
    if by == "month":
        return day.year * 12 + day.month - 1
    return (day - date(1970, 1, 1)).days - MONDAY


def _day_centres(low: float, high: float) -> list[float]:
    first = math.floor(low / DAY_S)
    return [d * DAY_S + DAY_S / 2 for d in range(first, math.floor(high / DAY_S) + 1)
            if low <= d * DAY_S + DAY_S / 2 <= high]


def month_centre(year: int, month: int) -> float:
    """Where a month's bar stands: its 1st plus 15 days (the plots draw it there)."""
    return datetime(year, month, 1, tzinfo=UTC).timestamp() + 15 * DAY_S


def _month_centres(low: float, high: float) -> list[float]:
    start, end = bucket_day(low), bucket_day(high)
    year, month, out = start.year, start.month, []
    while (year, month) <= (end.year, end.month):
        x = month_centre(year, month)
        if low <= x <= high:
            out.append(x)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def axis_style(axis: pg.AxisItem, line: str, text: str) -> None:
    """Give an axis the palette's colours (its line and grid, its tick text and label)."""
    axis.setPen(line)
    axis.setTextPen(text)
    axis.labelStyle = {**axis.labelStyle, "color": text}
    axis.setLabel(axis.labelText or None, **axis.labelStyle)
