"""How long the cost window takes to open on a year of heavy use (1,000,000 ledger rows), in a
fresh process each time: until it is on screen with the range's totals, then until its plots
are drawn (pyqtgraph's first import included), then range switches.

    .venv/bin/python -m bench.costs_window [--rows 1000000] [--runs 3]"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import compile_sources

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

CHILD = """
import asyncio, gc, os, sys, time
gc.disable()  # as in the app: no collection off the GUI thread (see desktop/app.py)
from PySide6.QtWidgets import QApplication
from desktop.pyside_imports import lighten_feature_check
lighten_feature_check()  # as the app does
app = QApplication([])
from router import Router, load_config
from router.ledger.ledger import Ledger
from desktop.bridge import Bridge

async def main():
    from pathlib import Path
    ledger = Ledger.in_dir(Path(sys.argv[1]))
    async with Router(load_config(None)) as router:
        bridge = Bridge(router)
        assert "pyqtgraph" not in sys.modules
        start = time.perf_counter()
        from desktop.windows.costs import CostWindow
        window = CostWindow(bridge, ledger)
        window.open()
        app.processEvents()
        while not window.rows:
            await asyncio.sleep(0.001)
        window.repaint()  # on screen with its totals (the plots' timer is due next)
        print(f"{(time.perf_counter() - start) * 1000:.1f}")
        while window.graphs is None:  # pyqtgraph loads in a worker thread; the loop idles
            await asyncio.sleep(0.005)
        app.processEvents()
        window.repaint()
        print(f"{(time.perf_counter() - start) * 1000:.1f}")
        for text in ("30 days", "12 months"):
            start = time.perf_counter(); window.rows = []
            window.range_box.setCurrentText(text)
            while not window.rows:
                await asyncio.sleep(0.001)
            app.processEvents()
            print(f"{(time.perf_counter() - start) * 1000:.1f}")
        window.close()
        window.deleteLater()  # Qt objects go before the interpreter does
        app.processEvents()
    ledger.close()
asyncio.run(main())
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    compile_sources()
    from bench.ledger_bench import fill_year

    with tempfile.TemporaryDirectory() as tmp:
        fill_year(Path(tmp), args.rows).close()
        env = {**os.environ, "EXO_BRIDGE_CONFIG": str(Path(tmp) / "none.toml")}
        runs = []
        for _ in range(args.runs):
            done = subprocess.run([sys.executable, "-c", CHILD, tmp], capture_output=True,
                                  text=True, env=env)
            if done.returncode:
                sys.exit(f"the window process failed ({done.returncode}):\n{done.stderr[-3000:]}")
            out = done.stdout.split()
            runs.append([float(x) for x in out])
    names = ("open: on screen with the 7-day totals", "plots drawn (pyqtgraph's first import)",
             "switch to 30 days", "switch to 12 months by month")
    print(f"{args.rows:,} ledger rows, medians of {args.runs} fresh processes")
    for index, name in enumerate(names):
        print(f"  {name:<52} {statistics.median(r[index] for r in runs):7.1f} ms")


if __name__ == "__main__":
    main()
