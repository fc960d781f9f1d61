"""The cost graph window (offscreen Qt) from a synthetic ledger with known figures."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import os
import subprocess
import sys
from datetime import UTC, date, datetime

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

pytest.importorskip("PySide6", reason="the desktop extra is not installed")

from router import Router
from router.ledger.ledger import Ledger, Row

TODAY = date(2026, 11, 22)


def row(day: str, provider: str, *, cost: float, tokens: int, ok: bool = True, failovers: int = 0,
        saved: float = 0.0, latency: float = 100.0, uid: str = "") -> tuple:
    ts = datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC).timestamp()
    return Row(ts, uid or f"{day}{provider}{cost}{tokens}", "llama", "m", provider, "ok" if ok else "refused",
               True, False, tokens // 2, tokens - tokens // 2, cost, "reported", latency, 10.0, failovers > 0,
               failovers, "", saved, uid or f"u-{day}-{provider}-{cost}-{tokens}-{ok}").values()


@pytest.fixture
def ledger(tmp_path):
    book = Ledger.in_dir(tmp_path)
    book.write_now([
        row("2026-11-21", "exo", cost=0.0, tokens=100, saved=0.01, latency=200),
        row("2026-11-21", "exo", cost=0.0, tokens=300, saved=0.03, latency=400),
        row("2026-11-21", "openrouter", cost=0.02, tokens=50, failovers=1),
        row("2026-11-22", "openrouter", cost=0.05, tokens=80, failovers=1),
        row("2026-11-22", "exo", cost=0.0, tokens=1, ok=False),
        row("2026-10-02", "huggingface", cost=0.10, tokens=1000),  # only in the 12-month view
    ])
    yield book
    book.close()


@pytest.fixture
async def window(qapp, ledger, make_config):
    from desktop.bridge import Bridge
    from desktop.windows.costs import CostWindow

    config, _ = make_config()
    async with Router(config) as router:
        bridge = Bridge(router)
        win = CostWindow(bridge, ledger, today=TODAY)
        win.show()
        yield win
        win.close()
        win.deleteLater()
        bridge.deleteLater()
        qapp.processEvents()


async def loaded(win) -> None:
    win.rows = []
    win.reload()
    from PySide6.QtWidgets import QApplication

    for _ in range(200):
        if win.rows and win.graphs is not None:
            return
        await asyncio.sleep(0.02)
        QApplication.processEvents()  # Qt's timers (the app runs them on the qasync loop)
    raise AssertionError("the summary never arrived")


async def test_totals_and_stacked_bar_heights(window):
    await loaded(window)
    assert window.totals.text() == ("cost $0.0700 · 531 tokens · 4 requests (1 unanswered) · "
                                    "saved $0.0400 · 2 failovers in 4 requests")  # too few for a rate
    exo, openrouter = window.graphs.bars["exo"].opts, window.graphs.bars["openrouter"].opts
    assert list(exo["height"]) == [0.0, 0.0] and list(openrouter["height"]) == [0.02, 0.05]
    window.metric_box.setCurrentText("tokens")
    assert list(window.graphs.bars["exo"].opts["height"]) == [400.0, 1.0]
    assert list(window.graphs.bars["openrouter"].opts["y0"]) == [400.0, 1.0]  # stacked on exo's
    window.metric_box.setCurrentText("requests")
    assert list(window.graphs.bars["exo"].opts["height"]) == [2.0, 0.0]
    assert list(window.graphs.failover_bars.opts["height"]) == [1.0, 1.0]
    xs, p50 = window.graphs.p50["exo"].getData()
    assert len(xs) == 1 and 180 < p50[0] < 440


async def test_window_shows_its_totals_before_the_plots(qapp, ledger, make_config):
    """The window opens with the totals; pyqtgraph is loaded off the GUI thread and the plots
    are built after, in the GUI thread."""
    import threading

    from desktop.bridge import Bridge
    from desktop.windows.costs import CostWindow

    config, _ = make_config()
    async with Router(config) as router:
        bridge = Bridge(router)
        win = CostWindow(bridge, ledger, today=TODAY)
        seen = []
        build = win._build_graphs
        win._build_graphs = lambda module: (
            seen.append((win.totals.text(), win.placeholder.isVisible(), threading.current_thread())),
            build(module))
        win.open()
        await loaded(win)
        [(totals, placeholder_shown, thread)] = seen
        assert totals.startswith("cost $0.0700") and placeholder_shown
        assert thread is threading.main_thread()
        assert win.graphs.isVisible() and list(win.graphs.bars["openrouter"].opts["height"]) == [0.02, 0.05]
        win.close()
        win.deleteLater()
        bridge.deleteLater()
        qapp.processEvents()


async def test_range_switch_to_months(window):
    await loaded(window)
    window.range_box.setCurrentText("12 months")
    await loaded(window)
    assert {r.period for r in window.rows} == {"2026-10", "2026-11"}
    assert list(window.graphs.bars["huggingface"].opts["height"]) == [0.10]


async def test_csv_export_has_the_usage_columns(window, tmp_path):
    await loaded(window)
    path = tmp_path / "export.csv"
    await window.export_csv(path)  # written off the GUI thread
    lines = list(csv.reader(path.open()))
    assert lines[0] == ["period", "provider", "requests", "prompt_tokens", "completion_tokens",
                        "cost_usd", "failovers", "saved_usd"]
    assert ["2026-11-22", "openrouter", "1", "40", "40", "0.05", "1", "0.0"] in lines


async def test_live_update_after_a_request(window, exo, keys_in_env):
    await loaded(window)
    window._today = datetime.now(UTC).date()
    window.bridge.router.ledger = window.ledger
    await window.bridge.router.chat({"model": "llama-3.2-3b", "messages": [{"role": "user", "content": "hi"}]})
    assert window._later.isActive()  # one redraw scheduled, not one per event
    window.ledger.flush()
    window._later.stop()
    await loaded(window)
    assert any(r.provider == "exo" and r.requests == 1 for r in window.rows)


def test_pyqtgraph_is_not_imported_by_the_tray():
    code = ("import os; os.environ['QT_QPA_PLATFORM']='offscreen'; import sys, desktop.app, desktop.tray, "
            "desktop.windows.chat, desktop.windows.settings, desktop.windows.costs; "
            "print('pyqtgraph' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


async def test_provider_colours_are_the_same_everywhere(window):
    """The bars use each provider's one colour (desktop.icons.provider_colours; the tray menu's
    rows show a state dot instead, since issue 18)."""
    from desktop.icons import provider_colours

    await loaded(window)
    providers = window.bridge.router.config.providers
    colours = provider_colours([p.id for p in providers])
    for provider in providers:
        assert window.graphs.bars[provider.id].opts["brush"] == colours[provider.id]


# -- issue 18: axes, hover, empty states, placeholder, colours, keyboard --------------------------

@pytest.fixture
async def empty_window(qapp, tmp_path, make_config):
    from desktop.bridge import Bridge
    from desktop.windows.costs import CostWindow

    book = Ledger.in_dir(tmp_path / "empty")
    config, _ = make_config()
    async with Router(config) as router:
        bridge = Bridge(router)
        win = CostWindow(bridge, book, today=TODAY)
        win.show()
        yield win
        win.close()
        win.deleteLater()
        bridge.deleteLater()
        qapp.processEvents()
    book.close()


async def settled(win) -> None:
    """The summary has been drawn (also when it is empty)."""
    from PySide6.QtWidgets import QApplication

    win.reload()
    for _ in range(200):
        if win._have_rows and win.graphs is not None:
            return
        await asyncio.sleep(0.02)
        QApplication.processEvents()
    raise AssertionError("the summary never arrived")


def point_at(qtbot, plot, x: float, y: float = 0.0) -> None:
    """A real mouse move over the plot, at view coordinates (x, y)."""
    from PySide6.QtCore import QPointF

    scene = plot.getPlotItem().getViewBox().mapViewToScene(QPointF(x, y))
    qtbot.waitUntil(plot.scene()._moveEventIsAllowed, timeout=1000)  # pyqtgraph's rate limit
    qtbot.mouseMove(plot.viewport(), plot.mapFromScene(scene))


async def test_hovering_a_bucket_reads_out_its_values(window, qtbot):
    await loaded(window)
    graphs = window.graphs
    point_at(qtbot, graphs.main, graphs.centre("2026-11-21"), 0.01)
    assert graphs.main_panel.readout.text() == ("Sat Nov 21 2026: exo $0.00 · openrouter $0.0200 · "
                                                "total $0.0200 · saved locally $0.0400")
    assert graphs.failover_panel.readout.text() == "Sat Nov 21 2026: 1 failover in 3 requests"
    latency = graphs.latency_panel.readout.text()
    assert latency.startswith("Sat Nov 21 2026: p50 exo ") and " ms · openrouter " in latency
    assert graphs.main_panel.line.isVisible() and graphs.main_panel.line.value() == graphs.centre("2026-11-21")
    point_at(qtbot, graphs.latency, graphs.centre("2026-11-18"), 1.0)  # any plot; a day with nothing
    assert graphs.main_panel.readout.text() == "Wed Nov 18 2026: no requests"
    assert graphs.latency_panel.readout.text() == "Wed Nov 18 2026: no latency data"
    window.metric_box.setCurrentText("tokens")
    point_at(qtbot, graphs.failovers, graphs.centre("2026-11-22"), 0.5)
    assert graphs.main_panel.readout.text() == ("Sun Nov 22 2026: exo 1 token · openrouter 80 tokens · "
                                                "total 81 tokens")


async def test_hovering_off_the_plot_area_clears_the_read_out(window, qtbot):
    from PySide6.QtCore import QPoint

    await loaded(window)
    graphs = window.graphs
    point_at(qtbot, graphs.main, graphs.centre("2026-11-22"), 0.01)
    assert graphs.main_panel.readout.text() == ("Sun Nov 22 2026: exo $0.00 · openrouter $0.0500 · "
                                                "total $0.0500 · saved locally $0.00")
    # pyqtgraph drops a move that comes within 1/mouseRateLimit s of the last (a person's
    # hand never does): the next move waits until the plot takes one again
    qtbot.waitUntil(graphs.main.scene()._moveEventIsAllowed, timeout=1000)
    qtbot.mouseMove(graphs.main.viewport(), QPoint(2, 2))  # over the axis, not a bucket
    assert graphs.main_panel.readout.text() == "point at a bar to read its values"
    assert graphs.failover_panel.readout.text() == "" and not graphs.main_panel.line.isVisible()


async def test_months_read_out_the_month(window, qtbot):
    window.range_box.setCurrentText("12 months")
    await loaded(window)
    graphs = window.graphs
    point_at(qtbot, graphs.main, graphs.centre("2026-10"), 0.01)
    assert graphs.main_panel.readout.text() == "October 2026: huggingface $0.1000 · saved locally $0.00"
    assert window.graphs.main.getAxis("bottom").tickStrings(
        [graphs.centre("2026-10"), graphs.centre("2026-11")], 1.0, 0.0) == ["Oct 2026", "Nov"]


async def test_an_empty_range_says_so_instead_of_an_empty_frame(empty_window):
    await settled(empty_window)
    graphs = empty_window.graphs
    assert empty_window.totals.text() == ("cost $0.00 · 0 tokens · 0 requests · saved $0.00 · "
                                          "no failovers")
    assert graphs.main_panel.note.isVisible() and graphs.main_panel.note.text() == "No requests in this range"
    assert not graphs.main_panel.plot.isVisible()
    # one note says it: the failover and latency frames and the colour key are not shown empty
    assert not any(w.isVisible() for w in (graphs.failover_panel, graphs.latency_panel, graphs.key))


async def test_rows_without_latency_say_there_is_none_yet(window):
    await loaded(window)
    window.rows = [dataclasses.replace(r, p50_latency_ms=None) for r in window.rows]
    window.draw()
    latency = window.graphs.latency_panel
    assert latency.isVisible() and latency.note.isVisible() and latency.note.text() == "No latency data yet"
    assert not latency.plot.isVisible() and window.graphs.main_panel.plot.isVisible()


async def test_plots_with_data_show_no_note_and_no_legend_over_the_lines(window):
    await loaded(window)
    graphs = window.graphs
    for panel in graphs.panels:
        assert panel.plot.isVisible() and not panel.note.isVisible() and panel.noted() is None
        assert panel.plot.getPlotItem().legend is None  # the key sits above the plots instead
    key = graphs.key.text()
    assert all(pid in key and colour in key for pid, colour in window.colours.items())
    assert "saved locally" in key
    assert graphs.key.geometry().bottom() <= graphs.main_panel.geometry().top()
    window.metric_box.setCurrentText("requests")
    assert "saved locally" not in graphs.key.text()  # only the cost view draws that line


async def test_a_range_of_free_requests_says_nothing_was_spent(window):
    window._today = date(2026, 11, 21)  # only exo's free answers... and openrouter's 0.02
    await loaded(window)
    window.rows = [r for r in window.rows if r.provider == "exo"]
    window.draw()
    graphs = window.graphs
    assert graphs.main_panel.noted() is None  # the saved line is there to see
    window.rows = [dataclasses.replace(r, saved_usd=0.0) for r in window.rows]
    window.draw()
    assert graphs.main_panel.noted() == "Nothing spent in this range: 2 requests, all free"
    assert graphs.failover_panel.noted() == "No failovers in this range"


async def test_loading_placeholder_shows_at_once_and_goes_with_the_plots(qapp, ledger, make_config):
    import shiboken6

    from desktop.bridge import Bridge
    from desktop.windows.costs import CostWindow

    config, _ = make_config()
    async with Router(config) as router:
        bridge = Bridge(router)
        win = CostWindow(bridge, ledger, today=TODAY)
        win.open()
        placeholder = win.placeholder
        assert win.graphs is None and placeholder.isVisible() and placeholder.text() == "Loading graphs…"
        assert win.body.indexOf(placeholder) >= 0
        await loaded(win)
        assert win.graphs.isVisible() and win.body.indexOf(win.graphs) >= 0
        assert not (shiboken6.isValid(placeholder) and placeholder.isVisible())
        win.close()
        win.deleteLater()
        bridge.deleteLater()
        qapp.processEvents()


def plot_colours(graphs) -> set[tuple[str, str, str]]:
    out = set()
    for panel in graphs.panels:
        axis = panel.plot.getAxis("left")
        out.add((panel.plot.backgroundBrush().color().name(), axis.textPen().color().name(),
                 axis.labelStyle.get("color", "")))
    return out


async def test_plots_follow_the_palette_live(window, restored_palette):
    from desktop import appearance
    from desktop.appearance import DARK, LIGHT, Appearance

    await loaded(window)
    assert plot_colours(window.graphs) == {(LIGHT.background, LIGHT.text, LIGHT.text)}
    appearance.apply(restored_palette, Appearance.DARK)
    restored_palette.processEvents()
    assert plot_colours(window.graphs) == {(DARK.background, DARK.text, DARK.text)}
    assert window.graphs.main.getAxis("bottom").pen().color().name() == DARK.muted
    bar_edge = window.graphs.bars["exo"].opts["pen"].color().name()
    assert bar_edge == DARK.background
    appearance.apply(restored_palette, Appearance.LIGHT)
    restored_palette.processEvents()
    assert plot_colours(window.graphs) == {(LIGHT.background, LIGHT.text, LIGHT.text)}


async def test_a_window_opened_in_dark_mode_draws_dark_plots(qapp, ledger, make_config, restored_palette):
    from desktop import appearance
    from desktop.appearance import DARK, Appearance
    from desktop.bridge import Bridge
    from desktop.windows.costs import CostWindow

    appearance.apply(qapp, Appearance.DARK)
    config, _ = make_config()
    async with Router(config) as router:
        bridge = Bridge(router)
        win = CostWindow(bridge, ledger, today=TODAY)
        win.open()
        await loaded(win)
        assert plot_colours(win.graphs) == {(DARK.background, DARK.text, DARK.text)}
        win.close()
        win.deleteLater()
        bridge.deleteLater()
        qapp.processEvents()


async def test_twelve_months_show_the_current_month_whole(window, qtbot):
    """The 12-month range, chosen from the keyboard: the current month's bar is on the plot
    whole (its right edge was cut at today)."""
    from PySide6.QtCore import Qt

    await loaded(window)
    window._today = date(2026, 11, 3)  # early in the month: the bar stands past today
    window.range_box.setFocus()
    qtbot.keyClick(window.range_box, Qt.Key.Key_End)  # the last range: 12 months
    assert window.range_box.currentText() == "12 months"
    await loaded(window)
    graphs = window.graphs
    (left, right), _ = graphs.main.getPlotItem().getViewBox().viewRange()
    width = graphs.bars["huggingface"].opts["width"]
    for month in ("2025-11", "2026-11"):  # the first and the current month, whole
        assert graphs.centre(month) - width / 2 > left and graphs.centre(month) + width / 2 < right


async def test_p50_dots_of_providers_at_the_same_latency_stay_apart(qapp, tmp_path, make_config,
                                                                    qtbot):
    from PySide6.QtCore import Qt

    from desktop.bridge import Bridge
    from desktop.windows.costs import CostWindow

    book = Ledger.in_dir(tmp_path)
    book.write_now([row("2026-11-21", "exo", cost=0.0, tokens=10, latency=300),
                    row("2026-11-21", "openrouter", cost=0.01, tokens=10, latency=300)])
    config, _ = make_config()
    async with Router(config) as router:
        bridge = Bridge(router)
        win = CostWindow(bridge, book, today=TODAY)
        win.show()
        await loaded(win)
        win.metric_box.setFocus()
        qtbot.keyClick(win.metric_box, Qt.Key.Key_Down)  # another metric: the plots redraw
        (exo_x, exo_y), (or_x, or_y) = (win.graphs.p50[pid].getData() for pid in ("exo", "openrouter"))
        assert list(exo_y) == list(or_y)  # the same p50 ...
        box = win.graphs.latency.getPlotItem().getViewBox()
        from PySide6.QtCore import QPointF

        apart = abs(box.mapViewToScene(QPointF(exo_x[0], exo_y[0])).x()
                    - box.mapViewToScene(QPointF(or_x[0], or_y[0])).x())
        assert apart >= 6  # ... drawn as two dots (6 px wide each), not one over the other
        win.close()
        win.deleteLater()
        bridge.deleteLater()
        qapp.processEvents()
    book.close()


async def test_the_window_works_from_the_keyboard(window, qtbot, monkeypatch, tmp_path):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication, QFileDialog

    await loaded(window)
    with qtbot.waitActive(window):
        window.activateWindow()
    window.range_box.setFocus()
    assert QApplication.focusWidget() is window.range_box
    qtbot.keyClick(window.range_box, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is window.metric_box
    qtbot.keyClick(window.metric_box, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is window.export
    asked = []
    target = tmp_path / "keyboard.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *args: (asked.append(args), (str(target), ""))[1]))
    qtbot.keyClick(window.export, Qt.Key.Key_Space)
    assert len(asked) == 1
    for _ in range(100):
        if target.exists():
            break
        await asyncio.sleep(0.02)
    assert target.read_text().startswith("period,provider")
    qtbot.keyClick(window.export, Qt.Key.Key_Escape)
    assert not window.isVisible()


def test_nothing_is_clipped_at_twice_the_scale():
    """At QT_SCALE_FACTOR=2 tick labels fit their axes and titles their lines (sizes come from
    font metrics and layouts, not fixed pixels)."""
    code = r"""
import os
from datetime import date
from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import QApplication
from router import UsageRow
app = QApplication([])
from desktop.windows import cost_graphs
colours = {'exo': '#2ecc40', 'openrouter': '#7e57c2', 'huggingface': '#ff9800'}
graphs = cost_graphs.CostGraphs(colours)
rows = [UsageRow('2026-11-%02d' % d, 'openrouter', 3, 10, 10, 0.000004 * d, 1, 0.0, p50_latency_ms=1234.0)
        for d in range(1, 23)]
graphs.resize(760, 480)
graphs.show()
graphs.draw(rows, date(2026, 10, 24), date(2026, 11, 22), 'day', 'cost')
graphs.grab(); app.processEvents()
bad = []
for panel in graphs.panels:
    for label in (panel.title, panel.readout):
        if label.width() < label.minimumSizeHint().width() - 1: bad.append(label.text())
    for name in ('left', 'bottom'):
        axis = panel.plot.getAxis(name)
        metrics = QFontMetricsF(axis.font())
        lo, hi = axis.range
        size = axis.width() if name == 'bottom' else axis.height()
        for spacing, values in axis.tickValues(lo, hi, size)[:axis.style['maxTextLevel'] + 1]:
            texts = axis.tickStrings(values, 1.0, spacing)
            if name == 'left' and any(metrics.horizontalAdvance(t) > axis.style['tickTextWidth'] for t in texts):
                bad.append(texts)
            if any('e-' in t or 'e+' in t for t in texts): bad.append(texts)
print('clipped' if bad else 'ok', app.devicePixelRatio(), bad)
"""
    env = {**os.environ, "QT_SCALE_FACTOR": "2", "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split()[:2] == ["ok", "2.0"], out.stdout


async def test_the_menu_and_costs_count_todays_requests_alike(qapp, qtbot, tmp_path, make_config,
                                                             exo, keys_in_env):
    """exo answers one request, then refuses one (OpenRouter answers it): the tray menu's exo
    row and the cost window (requests, the bar under the pointer) say the same 1 request; the
    refused attempt is said apart in the menu, never counted as a request."""
    from PySide6.QtCore import QPoint, Qt

    from desktop.bridge import Bridge
    from desktop.tray import Tray
    from desktop.windows.costs import CostWindow

    config, _ = make_config()
    book = Ledger.in_dir(tmp_path)
    ask = {"model": "llama-3.2-3b", "messages": [{"role": "user", "content": "hi"}]}
    async with Router(config, ledger=book) as router:
        assert (await router.chat(ask)).provider_used == "exo"
        exo.stop()
        assert (await router.chat(ask)).provider_used == "openrouter"
        book.flush()
        bridge = Bridge(router)
        tray = Tray(bridge, endpoint_url=lambda: None, endpoint_token=lambda: None)
        tray.starting = False
        tray.refresh()
        tray.menu.popup(QPoint(0, 0))
        qtbot.waitExposed(tray.menu)
        menu_row = tray._provider_actions[0].text()
        tray.menu.hide()
        win = CostWindow(bridge, book)
        win.open()
        await loaded(win)
        win.metric_box.setFocus()
        qtbot.keyClick(win.metric_box, Qt.Key.Key_End)  # Show: requests
        assert win.metric_box.currentText() == "requests"
        today = datetime.now(UTC).date().isoformat()
        point_at(qtbot, win.graphs.main, win.graphs.centre(today), 0.5)
        readout = win.graphs.main_panel.readout.text()
        answered = sum(r.requests for r in win.rows if r.provider == "exo" and r.period == today)
        win.close()
        tray.timer.stop()
        bridge.close()
    book.close()
    assert answered == 1
    assert menu_row.startswith(f"Exo Local · {answered} request")
    assert "unanswered)" in menu_row  # the refused attempt, apart
    assert f"exo {answered} request" in readout
