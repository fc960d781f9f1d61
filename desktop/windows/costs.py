"""The cost window: totals for a range, the plots (desktop.windows.cost_graphs), CSV export,
live updates. The window opens with its totals at once; pyqtgraph, imported only now and in a worker thread
(it pulls numpy: ~0.3 s and ~45 MB that the tray should not pay), draws the plots just after."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeyEvent, QPalette
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
from desktop.operations import UsageOperations
from desktop.windows.cost_format import count_text, failover_text
from router import Reconciliation, UsageRow, requests_text, usd

if TYPE_CHECKING:
    from desktop.windows.cost_graphs import CostGraphs
    from router import Ledger

RANGES = {"7 days": (7, "day"), "30 days": (30, "day"), "12 months": (365, "month")}
METRICS = ("cost", "tokens", "requests")
REFRESH_DELAY_MS = 1000  # live updates are gathered for a second, then drawn once


def money(amount: float) -> str:
    """Dollars with the precision small figures need ($0.000042, not $0.0000)."""
    return usd(amount)


def bill_text(checks: list[Reconciliation]) -> str:
    """The range's ledger-vs-bill checks: every drift, else the newest agreement ("" if none)."""
    drifted = [c for c in checks if c.drifted]
    if drifted:
        return "\n".join(f"⚠ {c.day} {c.provider}: the ledger {c.text()} — the provider billed "
                         "the key more or less than we recorded" for c in drifted)
    if checks:
        newest = max(checks, key=lambda c: c.checked_at)
        return (f"Ledger vs bill: {newest.provider} agrees on {newest.day} "
                f"({newest.text()})")
    return ""


def totals_text(rows: list[UsageRow]) -> str:
    """The range at a glance; failovers as a rate only over a sample that supports one."""
    requests = sum(r.requests for r in rows)
    failovers = sum(r.failovers for r in rows)
    tokens = sum(r.prompt_tokens + r.completion_tokens for r in rows)
    calls = sum(r.calls for r in rows)  # requests as the tray counts them: router/money/figures.py
    return (f"cost {money(sum(r.cost_usd for r in rows))} · {count_text(tokens, 'token')} · "
            f"{requests_text(requests, calls)} · saved {money(sum(r.saved_usd for r in rows))} · "
            f"{failover_text(failovers, requests)}")


class CostWindow(QWidget):
    def __init__(self, bridge: Bridge, ledger: Ledger, today: date | None = None):
        super().__init__()
        self.setWindowTitle("Exo Bridge — Costs")
        self.resize(760, 560)
        self.bridge, self.ledger = bridge, ledger
        self.usage = UsageOperations(ledger)
        self._today = today
        self.rows: list[UsageRow] = []
        self.colours = provider_colours([p.id for p in bridge.router.config.providers])
        self.range_box = QComboBox()
        self.range_box.addItems(list(RANGES))
        self.metric_box = QComboBox()
        self.metric_box.addItems(list(METRICS))
        self.export = QPushButton("&Export CSV…")  # Alt+E, or Tab to it and Space
        self.totals = QLabel("Adding up the range…")
        self.bill = QLabel("")  # the ledger against the provider's bill
        self.bill.setVisible(False)
        self.graphs: CostGraphs | None = None
        self._loading = False
        self._module: ModuleType | None = None  # desktop.windows.cost_graphs, once imported
        self._have_rows = False
        self.placeholder = QLabel("Loading graphs…")  # at once; the plots replace it
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self._layout()
        self.range_box.currentTextChanged.connect(lambda _: self.reload())
        self.metric_box.currentTextChanged.connect(lambda _: self.draw())
        self.export.clicked.connect(self._export_dialog)
        self._later = QTimer(self)
        self._later.setSingleShot(True)
        self._later.setInterval(REFRESH_DELAY_MS)
        self._later.timeout.connect(self.reload)
        bridge.request_finished.connect(lambda _event: self._later.start())
        bridge.account.connect(lambda _event: self._later.start())  # a ledger-vs-bill check

    def _layout(self) -> None:
        controls = QHBoxLayout()
        range_label, metric_label = QLabel("&Range"), QLabel("&Show")  # Alt+R, Alt+S
        range_label.setBuddy(self.range_box)
        metric_label.setBuddy(self.metric_box)
        for widget in (range_label, self.range_box, metric_label, self.metric_box):
            controls.addWidget(widget)
        controls.addStretch()
        controls.addWidget(self.export)
        self.body = QVBoxLayout(self)
        self.body.addLayout(controls)
        self.body.addWidget(self.totals)
        self.body.addWidget(self.bill)
        self.body.addWidget(self.placeholder, 1)
        self.totals.setWordWrap(True)
        self.bill.setWordWrap(True)
        self.totals.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        QWidget.setTabOrder(self.range_box, self.metric_box)
        QWidget.setTabOrder(self.metric_box, self.export)
        self.range_box.setFocus()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.close()
        else:
            super().keyPressEvent(event)

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
        self.bridge.run(self.usage.summary(since, until, by), self.show_rows)
        self.bridge.run(self.usage.reconciliations(since, until), self.show_bill)

    def show_bill(self, checks: list[Reconciliation]) -> None:
        text = bill_text(checks)
        self.bill.setText(text)
        self.bill.setVisible(bool(text))

    def show_rows(self, rows: list[UsageRow]) -> None:
        self.rows = rows
        self._have_rows = True
        self.totals.setText(totals_text(rows))
        if self.graphs is not None:
            self.draw()
        else:
            self.load_graphs()

    def load_graphs(self) -> None:
        """Import pyqtgraph off the GUI thread (the window stays live), then build the plots
        once both it and the range's rows are here."""
        if self._module is not None and self._have_rows and self.graphs is None:
            self._build_graphs(self._module)
        elif not self._loading and self._module is None:
            self._loading = True
            self.bridge.run(asyncio.to_thread(_graphs_module), self._graphs_loaded)

    def _graphs_loaded(self, module: ModuleType) -> None:
        self._module = module
        self.load_graphs()

    def _build_graphs(self, module: ModuleType) -> None:
        self.graphs = module.CostGraphs(self.colours, self.palette())
        self.body.replaceWidget(self.placeholder, self.graphs)
        self.placeholder.hide()
        self.placeholder.deleteLater()
        self.body.setStretchFactor(self.graphs, 1)
        self.graphs.show()
        self.draw()

    def draw(self) -> None:
        """Update the plots' data (nothing is rebuilt)."""
        if self.graphs is not None:
            since, until, by = self.span()
            self.graphs.draw(self.rows, since, until, by, self.metric_box.currentText())

    # -- export ---------------------------------------------------------------------------
    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export usage", "exo-bridge-usage.csv",
                                              "CSV (*.csv)")
        if path:
            self.export_csv(Path(path))

    def export_csv(self, path: Path) -> asyncio.Task[Path]:
        """The range's rows, with the columns of `exo-bridge usage --csv` (written off the GUI
        thread)."""
        return self.bridge.run(self.usage.export_csv(list(self.rows), path))

    def open(self) -> None:
        self.reload()
        self.load_graphs()  # the import runs while the ledger is summed
        self.show()
        self.raise_()
        self.activateWindow()


def _graphs_module() -> ModuleType:
    from desktop.windows import cost_graphs  # pyqtgraph and numpy, the first time

    return cost_graphs
