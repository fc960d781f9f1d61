"""The cost window's plots (pyqtgraph): stacked bars per provider, the "saved locally" line,
failovers per period and p50 latency per provider. Imported only once the cost window is on
screen: pyqtgraph and numpy cost ~0.3 s and ~45 MB that the tray should not pay."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime

import pyqtgraph as pg
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from router import UsageRow

DAY_S = 86400.0


def period_start(period: str) -> float:
    """Unix seconds of a period ("2026-11-22" or "2026-11") at 00:00 UTC."""
    day = date.fromisoformat(period if len(period) == 10 else f"{period}-01")
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def metric_value(row: UsageRow, metric: str) -> float:
    if metric == "tokens":
        return float(row.prompt_tokens + row.completion_tokens)
    if metric == "requests":
        return float(row.requests)
    return row.cost_usd


class CostGraphs(QWidget):
    """Built once; each draw updates the existing items' data (nothing is rebuilt)."""

    def __init__(self, colours: dict[str, str], palette: QPalette):
        super().__init__()
        pg.setConfigOptions(antialias=True, background=palette.color(QPalette.ColorRole.Base),
                            foreground=palette.color(QPalette.ColorRole.Text))
        self.main = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem()})
        self.failovers = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem()})
        self.latency = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem()})
        self.main.addLegend()
        self.latency.addLegend(colCount=max(1, len(colours)))  # one row: the panel is short
        self.failovers.setXLink(self.main)
        self.latency.setXLink(self.main)
        self.bars = {pid: pg.BarGraphItem(x=[], height=[], width=1, brush=colour, name=pid)
                     for pid, colour in colours.items()}
        for item in self.bars.values():
            self.main.addItem(item)
        self.saved = self.main.plot([], [], pen=pg.mkPen("#00bcd4", width=2), name="saved locally")
        self.failover_bars = pg.BarGraphItem(x=[], height=[], width=1, brush="#ff7043")
        self.failovers.addItem(self.failover_bars)
        self.p50 = {pid: self.latency.plot([], [], pen=pg.mkPen(colour, width=2), name=f"{pid} p50 ms")
                    for pid, colour in colours.items()}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.main, 3)
        layout.addWidget(QLabel("Failovers"))
        layout.addWidget(self.failovers, 1)
        layout.addWidget(QLabel("p50 latency per provider"))
        layout.addWidget(self.latency, 1)

    def draw(self, rows: list[UsageRow], since: date, until: date, by: str, metric: str) -> None:
        self.main.setXRange(period_start(since.isoformat()), period_start(until.isoformat()) + DAY_S,
                            padding=0.02)
        width = DAY_S * (0.8 if by == "day" else 24)  # a bar is centred in its day or month
        middle = DAY_S * (0.5 if by == "day" else 15)
        base: dict[float, float] = defaultdict(float)
        per_provider: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
        saved: dict[float, float] = defaultdict(float)
        failovers: dict[float, float] = defaultdict(float)
        for row in rows:
            x = period_start(row.period) + middle
            value = metric_value(row, metric)
            per_provider[row.provider].append((x, value, base[x]))
            base[x] += value
            saved[x] += row.saved_usd
            failovers[x] += row.failovers
        for pid, item in self.bars.items():
            points = per_provider.get(pid, [])
            item.setOpts(x=[p[0] for p in points], height=[p[1] for p in points],
                         y0=[p[2] for p in points], width=width)
        xs = sorted(saved)
        self.saved.setData(xs, [saved[x] for x in xs] if metric == "cost" else [0.0] * len(xs))
        self.failover_bars.setOpts(x=xs, height=[failovers[x] for x in xs], width=width)
        for pid, line in self.p50.items():
            latencies = sorted((period_start(r.period) + middle, r.p50_latency_ms) for r in rows
                               if r.provider == pid and r.p50_latency_ms is not None)
            line.setData([p[0] for p in latencies], [p[1] for p in latencies])
