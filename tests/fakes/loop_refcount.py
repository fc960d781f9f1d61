"""Run N callbacks on the app's real event loop (desktop.qt_loop: PySide6 + qasync, offscreen),
and as many on qasync's own loop, and print one JSON
line: the reference count of None and the RSS after a warm-up and at the end.

    python -m tests.fakes.loop_refcount [N]
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")  # the binding qasync picks

import qasync
from PySide6.QtWidgets import QApplication

from desktop import qt_loop

WARM_UP = 5_000


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


async def callbacks(n: int) -> dict[str, int]:
    """``n`` callbacks, and as many timers set and cancelled (deadlines that were met)."""
    loop = asyncio.get_running_loop()
    for _ in range(WARM_UP):
        await asyncio.sleep(0)
    start = {"none_refs": sys.getrefcount(None), "rss_kib": rss_kib()}
    done = 0
    while done < n:  # each sleep(0) and each call_soon is one callback through Qt
        await asyncio.sleep(0)
        ready = loop.create_future()
        loop.call_soon(ready.set_result, None)
        loop.call_later(30.0, print, "a deadline that is always met").cancel()
        await ready
        done += 2
    return {"callbacks": done, "qt_timers_left": _armed_timers(loop), "none_refs_start": start["none_refs"],
            "none_refs_end": sys.getrefcount(None), "rss_kib_start": start["rss_kib"],
            "rss_kib_end": rss_kib()}


def _armed_timers(loop: asyncio.AbstractEventLoop) -> int:
    """Callbacks and timers the loop still holds (qasync: one Qt timer each)."""
    held = getattr(loop, "_heap", None)
    if held is not None:
        return len(held) + len(loop._due)  # type: ignore[attr-defined]
    return len(loop._timer._SimpleTimer__callbacks)  # type: ignore[attr-defined]


def main() -> None:
    app = QApplication.instance() or QApplication([])
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    found = {"app_loop": qt_loop.run(callbacks(n)), "qasync_loop": qasync.run(callbacks(n))}
    print(json.dumps(found), flush=True)
    del app


if __name__ == "__main__":
    main()
