"""The cost graph window (offscreen Qt) from a synthetic ledger with known figures."""

from __future__ import annotations

import asyncio
import csv
import os
import subprocess
import sys
from datetime import UTC, date, datetime

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

pytest.importorskip("PySide6", reason="the desktop extra is not installed")

from router import Router
from router.ledger import Ledger, Row

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
    assert window.totals.text() == ("cost $0.0700 · 531 tokens · 4 requests · saved $0.0400 · "
                                    "failover rate 50.0%")
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
