"""The cycle collector runs in the GUI thread only, on CPython's own schedule.

Python's automatic collection runs in whichever thread happens to allocate (the ledger's writer,
a keychain helper's reader); a Qt object it frees there would be destroyed off the GUI thread and
crash the app. So automatic collection is off, and the GUI thread collects instead: after each
finished request and every few seconds, whenever the allocations since the last collection pass
CPython's thresholds, the same generational schedule the interpreter would follow (young
collections are cheap; a full one at most every FULL_EVERY_S). Idle, that is one look at three
counters every few seconds; under load, garbage never piles up for long (a fixed 30-second full
collection let 20 MiB of cycles gather in a busy half minute).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

CHECK_EVERY_MS = 2000
FULL_EVERY_S = 30.0


class GuiThreadCollector(QObject):
    def __init__(self, parent: QObject | None = None, clock: Callable[[], float] = time.monotonic):
        super().__init__(parent)
        gc.disable()
        self._clock = clock
        self._last_full = clock()
        self.collections = [0, 0, 0]  # per generation, for the soak's report
        self._timer = QTimer(self)
        self._timer.setInterval(CHECK_EVERY_MS)
        self._timer.timeout.connect(self.maybe_collect)
        self._timer.start()

    def maybe_collect(self) -> int | None:
        """Collect the generation CPython would collect now, if any; which one, or None."""
        young, middle, old = gc.get_count()
        limit_young, limit_middle, limit_old = gc.get_threshold()
        if young < limit_young:
            return None
        generation = 0
        if middle >= limit_middle:
            generation = 1
            if old >= limit_old and self._clock() - self._last_full >= FULL_EVERY_S:
                generation = 2
                self._last_full = self._clock()
        gc.collect(generation)
        self.collections[generation] += 1
        return generation
