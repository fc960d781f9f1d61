"""Refuse to start on a Qt binding that would crash the tray within the hour.

PySide6 6.12.0 on CPython < 3.12 loses one reference to what a Python callback returns
(None, True, False) on every call from Qt into Python: signals, timers, event overrides; the
qasync loop makes such a call per callback, so the count of None reaches zero and the process
aborts ("Fatal Python error: none_dealloc") after some 10,000 callbacks — 27 idle minutes. From
3.12 on those objects are immortal and the loss is harmless. pyproject.toml excludes the
release; this check catches any other install (a hand-picked version, a distribution package)
at the cost of 200 signal emissions (well under a millisecond).
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal

CALLS = 200
BROKEN_QT_MESSAGE = (
    "this PySide6 loses a reference on every call from Qt into Python on Python "
    f"{sys.version_info.major}.{sys.version_info.minor}, and the tray would crash within the "
    "hour. Install a working set: `pip install 'PySide6-Essentials!=6.12.*'` (or the pinned "
    "lock: `pip install -r requirements/app.lock`), or run on Python 3.12 or newer.")


class _Emitter(QObject):
    ping = Signal()


def callbacks_lose_references(calls: int = CALLS) -> bool:
    """True when calls from Qt into a Python slot lose references to the slot's result."""
    if sys.version_info >= (3, 12):  # None is immortal: nothing to lose
        return False
    emitter = _Emitter()
    emitter.ping.connect(_slot)
    watched = (None, True, False)  # what a slot returns, and what emit() returns
    before = [sys.getrefcount(obj) for obj in watched]
    for _ in range(calls):
        emitter.ping.emit()
    lost = [was - sys.getrefcount(obj) for was, obj in zip(before, watched, strict=True)]
    _give_back(watched, lost)  # so that the check itself harms nothing
    return sum(n for n in lost if n > 0) >= calls // 2


def _give_back(objects: tuple[object, ...], lost: list[int]) -> None:
    import ctypes

    for obj, count in zip(objects, lost, strict=True):
        for _ in range(max(0, count)):
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))


def _slot() -> None:
    return None
