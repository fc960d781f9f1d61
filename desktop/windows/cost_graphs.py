"""The cost window's plots (pyqtgraph): stacked bars per provider, the "saved locally" line,
failovers per period and p50 latency per provider. Imported only once the cost window is on
screen: pyqtgraph and numpy cost ~0.3 s and ~45 MB that the tray should not pay.

Each plot has a title line that reads out the bucket under the pointer, a centred note instead
of an empty frame when it has nothing to show, and the colour key above the plots (no legend on
top of the lines). Colours follow the palette, light or dark, and change with it."""

from __future__ import annotations

import html
from collections import defaultdict
from datetime import UTC, date, datetime

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QFontMetricsF, QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QStackedLayout, QVBoxLayout, QWidget

from desktop.appearance import colours as palette_colours
from desktop.windows.cost_axes import PeriodAxis, ValueAxis, axis_style
from desktop.windows.cost_format import (
    DAY_S,
    count_text,
    count_tick,
    money_tick,
    period_of,
    period_title,
)
from router import UsageRow, usd

SAVED_COLOUR = "#00bcd4"
FAILOVER_COLOUR = "#ff7043"
AXIS_LABELS = {"cost": "cost (US$)", "tokens": "tokens", "requests": "requests"}
NO_ROWS = "No requests in this range"
NO_LATENCY = "No latency data yet"
NO_FAILOVERS = "No failovers in this range"
HINT = "point at a bar to read its values"


def period_start(period: str) -> float:
    """Unix seconds of a period ("2026-11-22" or "2026-11") at 00:00 UTC."""
    day = date.fromisoformat(period if len(period) == 10 else f"{period}-01")
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def span_end(until: date, by: str) -> float:
    """Where the time axis ends: after ``until``'s day, or after its whole month (a month's bar
    stands mid-month: the current one would be cut at today)."""
    if by != "month":
        return period_start(until.isoformat()) + DAY_S
    following = date(until.year + until.month // 12, until.month % 12 + 1, 1)
    return period_start(following.isoformat())


def dodge(provider_ids: list[str], width: float) -> dict[str, float]:
    """Each provider's p50 dots a little apart within the bucket, so two providers with the same
    latency are two dots, not one hiding the other."""
    step = width / (2 * max(1, len(provider_ids)))
    middle = (len(provider_ids) - 1) / 2
    return {pid: (i - middle) * step for i, pid in enumerate(provider_ids)}


def metric_value(row: UsageRow, metric: str) -> float:
    if metric == "tokens":
        return float(row.prompt_tokens + row.completion_tokens)
    if metric == "requests":
        return float(row.requests)
    return row.cost_usd


def metric_text(value: float, metric: str) -> str:
    """A bucket's figure with its unit: ``$0.0200``, ``1,234 tokens``, ``3 requests``."""
    if metric == "cost":
        return usd(value)
    return count_text(round(value), metric.removesuffix("s"))


def swatch(colour: str, text: str, mark: str = "■") -> str:
    return f'<span style="color:{colour}">{mark}</span>&nbsp;{html.escape(text)}'


class Panel(QWidget):
    """A plot under its title line (the hover read-out goes there), or a centred note."""

    def __init__(self, title: str, plot: pg.PlotWidget, *, lines: int = 1, hint: str = ""):
        super().__init__()
        self.plot, self.hint = plot, hint
        self.title = QLabel(f"<b>{html.escape(title)}</b>")
        self.title.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.readout = QLabel("")
        self.readout.setWordWrap(True)
        self.readout.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        # room for the read-out kept, so pointing at a bar does not shift the plots
        self.readout.setMinimumHeight(self.readout.fontMetrics().lineSpacing() * lines)
        self.show_readout("")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.note = QLabel("")
        self.note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.note.setWordWrap(True)
        self.note.setForegroundRole(QPalette.ColorRole.PlaceholderText)  # muted, light or dark
        header = QHBoxLayout()
        header.addWidget(self.title)
        header.addWidget(self.readout, 1)
        self.stack = QStackedLayout()
        self.stack.addWidget(plot)
        self.stack.addWidget(self.note)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addLayout(self.stack, 1)
        self.line = pg.InfiniteLine(angle=90, movable=False)
        self.line.setZValue(10)
        self.line.hide()
        plot.addItem(self.line, ignoreBounds=True)

    def show_readout(self, text: str) -> None:
        """The hovered bucket's values, or (muted) how to get them."""
        self.readout.setText(text or self.hint)
        self.readout.setForegroundRole(QPalette.ColorRole.WindowText if text
                                       else QPalette.ColorRole.PlaceholderText)

    def show_note(self, text: str | None) -> None:
        """A note instead of the plot (None: the plot)."""
        self.note.setText(text or "")
        self.stack.setCurrentWidget(self.note if text else self.plot)

    def noted(self) -> str | None:
        return self.note.text() if self.stack.currentWidget() is self.note else None


def _plot(left: ValueAxis) -> pg.PlotWidget:
    plot = pg.PlotWidget(axisItems={"bottom": PeriodAxis(), "left": left})
    plot.setMouseEnabled(x=False, y=False)  # the range box chooses the span
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.showGrid(y=True, alpha=0.35)
    plot.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Tab goes through the controls, not the plots
    plot.setMinimumHeight(plot.fontMetrics().height() * 6)
    return plot


class CostGraphs(QWidget):
    """Built once; each draw updates the existing items' data (nothing is rebuilt)."""

    def __init__(self, colours: dict[str, str], palette: QPalette | None = None):
        super().__init__()
        self.colours = colours
        self.rows: list[UsageRow] = []
        self.by, self.shown = "day", "cost"  # the bucket size and the metric drawn
        self.since = self.until = date(1970, 1, 1)
        self.by_period: dict[str, list[UsageRow]] = {}
        self.main_axis, self.failover_axis, self.latency_axis = ValueAxis("money"), ValueAxis(), ValueAxis()
        self.main = _plot(self.main_axis)
        self.failovers = _plot(self.failover_axis)
        self.latency = _plot(self.latency_axis)
        self.failover_axis.set_unit("count", "failovers")
        self.latency_axis.set_unit("count", "p50 (ms)", whole=False)
        self.failovers.setXLink(self.main)
        self.latency.setXLink(self.main)
        self.bars = {pid: pg.BarGraphItem(x=[], height=[], width=1, brush=colour, name=pid)
                     for pid, colour in colours.items()}
        for item in self.bars.values():
            self.main.addItem(item)
        self.saved = self.main.plot([], [], pen=pg.mkPen(SAVED_COLOUR, width=2), symbol="o", symbolSize=6,
                                    symbolBrush=SAVED_COLOUR, symbolPen=None, name="saved locally")
        self.failover_bars = pg.BarGraphItem(x=[], height=[], width=1, brush=FAILOVER_COLOUR)
        self.failovers.addItem(self.failover_bars)
        self.p50 = {pid: self.latency.plot([], [], pen=pg.mkPen(colour, width=2), symbol="o",
                                           symbolSize=6, symbolBrush=colour, symbolPen=None,
                                           name=f"{pid} p50 ms")
                    for pid, colour in colours.items()}
        self.main_panel = Panel("Cost per day", self.main, lines=2, hint=HINT)
        self.failover_panel = Panel("Failovers", self.failovers)
        self.latency_panel = Panel("p50 latency per provider", self.latency)
        self.panels = (self.main_panel, self.failover_panel, self.latency_panel)
        self.key = QLabel("")  # the colour key, above the plots rather than over the lines
        self.key.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.key)
        layout.addWidget(self.main_panel, 3)
        layout.addWidget(self.failover_panel, 1)
        layout.addWidget(self.latency_panel, 1)
        for panel in self.panels:
            panel.plot.scene().sigMouseMoved.connect(
                lambda pos, plot=panel.plot: self.hover(plot, pos))
        self.restyle(palette)
        self._write_key()

    # -- colours --------------------------------------------------------------------------
    def restyle(self, palette: QPalette | None = None) -> None:
        """The palette's background, text and grid for every plot (light or dark)."""
        scheme = palette_colours(palette or self.palette())
        for panel in self.panels:
            panel.plot.setBackground(scheme.background)
            for name in ("left", "bottom"):
                axis_style(panel.plot.getAxis(name), scheme.muted, scheme.text)
            panel.line.setPen(pg.mkPen(scheme.muted, width=1, style=Qt.PenStyle.DashLine))
        edge = pg.mkPen(scheme.background, width=1)  # keeps stacked segments apart
        for item in (*self.bars.values(), self.failover_bars):
            item.setOpts(pen=edge)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self.restyle()
        super().changeEvent(event)

    def _write_key(self) -> None:
        parts = [swatch(colour, pid) for pid, colour in self.colours.items()]
        if self.shown == "cost":
            parts.append(swatch(SAVED_COLOUR, "saved locally", "━"))
        self.key.setText(" &nbsp; ".join(parts))

    # -- data -----------------------------------------------------------------------------
    def draw(self, rows: list[UsageRow], since: date, until: date, by: str, metric: str) -> None:
        self.rows, self.since, self.until, self.by, self.shown = rows, since, until, by, metric
        self.by_period = defaultdict(list)
        for row in rows:
            self.by_period[row.period].append(row)
        for panel in self.panels:
            panel.plot.getAxis("bottom").set_by(by)
            panel.line.hide()
            panel.show_readout("")
        per = {"day": "day", "week": "week", "month": "month"}.get(by, by)
        self.main_panel.title.setText(f"<b>{html.escape(metric.capitalize())} per {per}</b>")
        self.main_axis.set_unit("money" if metric == "cost" else "count", AXIS_LABELS[metric])
        self.main.setXRange(period_start(since.isoformat()), span_end(until, by), padding=0.02)
        width = DAY_S * (0.8 if by == "day" else 24)  # a bar is centred in its day or month
        base: dict[float, float] = defaultdict(float)
        per_provider: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
        saved: dict[float, float] = defaultdict(float)
        failovers: dict[float, float] = defaultdict(float)
        for row in rows:
            x = self.centre(row.period)
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
        shown_saved = [saved[x] for x in xs] if metric == "cost" else []
        self.saved.setData(xs if shown_saved else [], shown_saved)
        top = max([*base.values(), *shown_saved, 0.0])
        self.main.setYRange(0, top * 1.08 if top > 0 else 1.0, padding=0)
        self.failover_bars.setOpts(x=xs, height=[failovers[x] for x in xs], width=width)
        self.failovers.setYRange(0, max([*failovers.values(), 1.0]) * 1.25, padding=0)
        latency_top = 0.0
        shift = dodge(list(self.p50), DAY_S * (0.8 if by == "day" else 24))
        for pid, line in self.p50.items():
            latencies = sorted((self.centre(r.period) + shift[pid], r.p50_latency_ms) for r in rows
                               if r.provider == pid and r.p50_latency_ms is not None)
            line.setData([p[0] for p in latencies], [p[1] for p in latencies])
            latency_top = max([latency_top, *(p[1] for p in latencies)])
        self.latency.setYRange(0, latency_top * 1.1 if latency_top > 0 else 1.0, padding=0)
        self._align_axes({"money" if metric == "cost" else "count": top, "count": max(
            [*failovers.values(), 1.0]), "latency": latency_top})
        self.main_panel.show_note(self._main_note(rows, top))
        self.failover_panel.show_note(NO_ROWS if not rows else
                                      NO_FAILOVERS if not any(failovers.values()) else None)
        self.latency_panel.show_note(NO_LATENCY if latency_top <= 0 else None)
        for widget in (self.key, self.failover_panel, self.latency_panel):
            widget.setVisible(bool(rows))  # no requests: one note says it, not three
        self._write_key()

    def _align_axes(self, tops: dict[str, float]) -> None:
        """One width for the three value axes (room for the widest tick), so the plots' time
        axes line up and get the same date labels."""
        samples = ["$0.00"]
        for unit, top in tops.items():
            step = top / 100 if top > 0 else 1.0  # as fine as the labelled (minor) ticks get
            if unit == "money":
                samples += [money_tick(top, step), money_tick(step, step)]
            else:
                samples.append(count_tick(top, step, top))
        metrics = QFontMetricsF(self.main_axis.style["tickFont"] or self.main_axis.font())
        width = int(max(metrics.horizontalAdvance(s) for s in samples)) + 2
        for axis in (self.main_axis, self.failover_axis, self.latency_axis):
            axis.setStyle(autoExpandTextSpace=False, tickTextWidth=width)

    def _main_note(self, rows: list[UsageRow], top: float) -> str | None:
        if not rows:
            return NO_ROWS
        if top > 0:
            return None
        requests = sum(r.requests for r in rows)
        if self.shown == "cost":
            return f"Nothing spent in this range: {count_text(requests, 'request')}, all free"
        return f"No {self.shown} counted in this range"

    def centre(self, period: str) -> float:
        """Where a period's bar stands on the time axis."""
        return period_start(period) + DAY_S * (15 if len(period) == 7 else 0.5)

    # -- hover ----------------------------------------------------------------------------
    def hover(self, plot: pg.PlotWidget, pos: QPointF) -> None:
        """The values of the bucket under the pointer, in each plot's title line."""
        box = plot.getPlotItem().getViewBox()
        period = period_of(box.mapSceneToView(pos).x(), self.by)
        if not (box.sceneBoundingRect().contains(pos)
                and self.since.isoformat()[:len(period)] <= period <= self.until.isoformat()):
            self.clear_hover()
            return
        for panel in self.panels:
            panel.line.setPos(self.centre(period))
            panel.line.show()
        rows = self.by_period.get(period, [])
        title = period_title(period, self.by)
        self.main_panel.show_readout(f"{title}: {self.main_readout(rows)}")
        requests, failed = sum(r.requests for r in rows), sum(r.failovers for r in rows)
        self.failover_panel.show_readout(
            f"{title}: {count_text(failed, 'failover')} in {count_text(requests, 'request')}"
            if rows else f"{title}: no requests")
        latencies = [f"{r.provider} {r.p50_latency_ms:,.0f} ms" for r in rows
                     if r.p50_latency_ms is not None]
        self.latency_panel.show_readout(
            f"{title}: p50 {' · '.join(latencies)}" if latencies else f"{title}: no latency data")

    def main_readout(self, rows: list[UsageRow]) -> str:
        if not rows:
            return "no requests"
        parts = [f"{r.provider} {metric_text(metric_value(r, self.shown), self.shown)}" for r in rows]
        if len(rows) > 1:
            parts.append(f"total {metric_text(sum(metric_value(r, self.shown) for r in rows), self.shown)}")
        if self.shown == "cost":
            parts.append(f"saved locally {usd(sum(r.saved_usd for r in rows))}")
        return " · ".join(parts)

    def clear_hover(self) -> None:
        for panel in self.panels:
            panel.line.hide()
            panel.show_readout("")

    def leaveEvent(self, event: QEvent) -> None:
        self.clear_hover()
        super().leaveEvent(event)

