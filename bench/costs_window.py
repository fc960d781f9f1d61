"""How long the cost window takes to open on a year of heavy use (1,000,000 ledger rows),
pyqtgraph's first import included.  .venv/bin/python -m bench.costs_window [--rows 1000000]"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

CHILD = """
import asyncio, gc, os, sys, time
gc.disable()  # as in the app: no collection off the GUI thread (see desktop/app.py)
from PySide6.QtWidgets import QApplication
app = QApplication([])
from router import Router, load_config
from router.ledger import Ledger
from desktop.bridge import Bridge
async def main():
    from pathlib import Path
    ledger = Ledger.in_dir(Path(sys.argv[1]))
    async with Router(load_config(None)) as router:
        bridge = Bridge(router)
        start = time.perf_counter()
        import pyqtgraph  # the first time, as when the window first opens (with numpy)
        print(f"{(time.perf_counter() - start) * 1000:.1f}")
        start = time.perf_counter()
        from desktop.windows.costs import CostWindow
        window = CostWindow(bridge, ledger)
        window.open()
        while not window.rows:
            await asyncio.sleep(0.001)
        app.processEvents()
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
    names = ("first `import pyqtgraph` (with numpy)", "build the window, query 7 days, draw",
             "switch to 30 days", "switch to 12 months by month")
    print(f"{args.rows:,} ledger rows, medians of {args.runs} fresh processes")
    for index, name in enumerate(names):
        print(f"  {name:<52} {statistics.median(r[index] for r in runs):7.1f} ms")


if __name__ == "__main__":
    main()
