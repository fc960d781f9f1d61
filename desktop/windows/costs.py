"""The cost graph: what each provider cost (or how many tokens / requests) per day or month,
what running locally saved, failovers and p50 latency. pyqtgraph is imported only when this
window first opens (it pulls numpy: ~0.35 s and ~45 MB that the tray should not pay)."""

from __future__ import annotations

import asyncio
import csv
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.bridge import Bridge
from desktop.icons import provider_colours
from router.ledger import Ledger
from router.usage import COLUMNS, UsageRow, summary

RANGES = {"7 days": (7, "day"), "30 days": (30, "day"), "12 months": (365, "month")}
METRICS = ("cost", "tokens", "requests")
DAY_S = 86400.0
REFRESH_DELAY_MS = 1000  # live updates are gathered for a second, then drawn once


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


def money(usd: float) -> str:
    """Dollars with the precision small figures need ($0.000042, not $0.0000)."""
    return f"${usd:.4f}" if usd >= 0.01 or usd == 0 else f"${usd:.6f}"


def totals_text(rows: list[UsageRow]) -> str:
    requests = sum(r.requests for r in rows)
    failovers = sum(r.failovers for r in rows)
    rate = 100.0 * failovers / requests if requests else 0.0
    return (f"cost {money(sum(r.cost_usd for r in rows))} · "
            f"{sum(r.prompt_tokens + r.completion_tokens for r in rows):,} tokens · "
            f"{requests:,} requests · saved {money(sum(r.saved_usd for r in rows))} · "
            f"failover rate {rate:.1f}%")


class CostWindow(QWidget):
    def __init__(self, bridge: Bridge, ledger: Ledger, today: date | None = None):
        super().__init__()
        self.setWindowTitle("Exo Bridge — Costs")
        self.resize(760, 560)
        self.bridge, self.ledger = bridge, ledger
        self._today = today
        self.rows: list[UsageRow] = []
        self.colours = provider_colours([p.id for p in bridge.router.config.providers])
        self.range_box = QComboBox()
        self.range_box.addItems(list(RANGES))
        self.metric_box = QComboBox()
        self.metric_box.addItems(list(METRICS))
        self.export = QPushButton("Export CSV…")
        self.totals = QLabel("")
        self._style()
        self.main = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem()})
        self.failovers = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem()})
        self.latency = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem()})
        self.main.addLegend()
        self.latency.addLegend()
        self.failovers.setXLink(self.main)
        self.latency.setXLink(self.main)
        self.bars = {pid: pg.BarGraphItem(x=[], height=[], width=1, brush=colour, name=pid)
                     for pid, colour in self.colours.items()}
        for item in self.bars.values():
            self.main.addItem(item)
        self.saved = self.main.plot([], [], pen=pg.mkPen("#00bcd4", width=2), name="saved locally")
        self.failover_bars = pg.BarGraphItem(x=[], height=[], width=1, brush="#ff7043")
        self.failovers.addItem(self.failover_bars)
        self.p50 = {pid: self.latency.plot([], [], pen=pg.mkPen(colour, width=2), name=f"{pid} p50 ms")
                    for pid, colour in self.colours.items()}
        self._layout()
        self.range_box.currentTextChanged.connect(lambda _: self.reload())
        self.metric_box.currentTextChanged.connect(lambda _: self.draw())
        self.export.clicked.connect(self._export_dialog)
        self._later = QTimer(self)
        self._later.setSingleShot(True)
        self._later.setInterval(REFRESH_DELAY_MS)
        self._later.timeout.connect(self.reload)
        bridge.request_finished.connect(lambda _event: self._later.start())

    def _style(self) -> None:
        palette = self.palette()
        pg.setConfigOptions(antialias=True,
                            background=palette.color(QPalette.ColorRole.Base),
                            foreground=palette.color(QPalette.ColorRole.Text))

    def _layout(self) -> None:
        controls = QHBoxLayout()
        for widget in (QLabel("Range"), self.range_box, QLabel("Show"), self.metric_box):
            controls.addWidget(widget)
        controls.addStretch()
        controls.addWidget(self.export)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.totals)
        layout.addWidget(self.main, 3)
        layout.addWidget(QLabel("Failovers"))
        layout.addWidget(self.failovers, 1)
        layout.addWidget(QLabel("p50 latency per provider"))
        layout.addWidget(self.latency, 1)

    # -- data -----------------------------------------------------------------------------
    def span(self) -> tuple[date, date, str]:
        days, by = RANGES[self.range_box.currentText()]
        until = self._today or datetime.now(UTC).date()
        since = until - timedelta(days=days - 1)
        if by == "month":
            since = since.replace(day=1)
        return since, until, by

    def reload(self) -> None:
        since, until, by = self.span()
        self.bridge.run(asyncio.to_thread(summary, self.ledger, since, until, by), self.show_rows)

    def show_rows(self, rows: list[UsageRow]) -> None:
        self.rows = rows
        self.totals.setText(totals_text(rows))
        self.draw()

    def draw(self) -> None:
        """Update the existing plot items' data (nothing is rebuilt)."""
        since, until, by = self.span()
        self.main.setXRange(period_start(since.isoformat()), period_start(until.isoformat()) + DAY_S,
                            padding=0.02)
        width = DAY_S * (0.8 if by == "day" else 24)  # a bar is centred in its day or month
        middle = DAY_S * (0.5 if by == "day" else 15)
        metric = self.metric_box.currentText()
        base: dict[float, float] = defaultdict(float)
        per_provider: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
        saved: dict[float, float] = defaultdict(float)
        failovers: dict[float, float] = defaultdict(float)
        for row in self.rows:
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
            points = sorted((period_start(r.period) + middle, r.p50_latency_ms) for r in self.rows
                            if r.provider == pid and r.p50_latency_ms is not None)
            line.setData([p[0] for p in points], [p[1] for p in points])

    # -- export ---------------------------------------------------------------------------
    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export usage", "exo-bridge-usage.csv",
                                              "CSV (*.csv)")
        if path:
            self.export_csv(Path(path))

    def export_csv(self, path: Path) -> None:
        """The range's rows, with the columns of `exo-bridge usage --csv`."""
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(COLUMNS)
            for row in self.rows:
                writer.writerow(row.as_dict().values())

    def open(self) -> None:
        self.reload()
        self.show()
        self.raise_()
        self.activateWindow()
