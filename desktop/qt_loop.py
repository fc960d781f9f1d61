"""The tray's event loop: qasync's (asyncio on Qt's event loop, sockets watched by Qt), with
asyncio's own scheduler for callbacks and timers.

qasync schedules every callback as a Qt timer of its own: ``call_soon`` starts a zero-time Qt
timer and the callback runs from ``timerEvent`` (a call from Qt into Python) after which the
timer is killed; ``call_later`` does the same with a delay, and cancelling such a handle leaves
its Qt timer (and the handle) alive until the delay runs out. A request through the endpoint
makes dozens of callbacks and sets several 30-60 s deadlines that are cancelled at once, so under
load thousands of dead timers sat in Qt's timer list and in memory, and each callback paid two
Qt round trips.

Here ready callbacks wait in a deque and timers in a heap, as in ``asyncio.BaseEventLoop``; one
single-shot Qt timer wakes the loop when the first of them is due, and each wake-up runs every
callback that is ready then. Cancelled timers are dropped from the heap (all at once when they
are many), never left armed.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import math
from collections.abc import Callable, Coroutine
from contextvars import Context
from typing import Any, TypeVar

import qasync
from PySide6.QtCore import Qt, QTimer

T = TypeVar("T")

_CLEANUP_AT = 100  # cancelled timers in the heap before it is rebuilt without them


class QtEventLoop(qasync.QEventLoop):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._due: collections.deque[asyncio.Handle] = collections.deque()
        self._heap: list[asyncio.TimerHandle] = []
        self._cancelled_in_heap = 0
        self._waker = QTimer()
        self._waker.setSingleShot(True)
        self._waker.setTimerType(Qt.TimerType.PreciseTimer)
        self._waker.timeout.connect(self._run_due)
        self._wake_at: float | None = None  # when the waker fires (loop time), if armed

    # -- scheduling (asyncio's API) ----------------------------------------------------------
    def call_soon(self, callback: Callable[..., object], *args: Any,
                  context: Context | None = None) -> asyncio.Handle:
        self._check_closed()
        handle = asyncio.Handle(callback, args, self, context)
        self._due.append(handle)
        self._wake(self.time())
        return handle

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any,
                   context: Context | None = None) -> asyncio.TimerHandle:
        return self.call_at(self.time() + delay, callback, *args, context=context)

    def call_at(self, when: float, callback: Callable[..., object], *args: Any,
                context: Context | None = None) -> asyncio.TimerHandle:
        self._check_closed()
        timer = asyncio.TimerHandle(when, callback, args, self, context)
        heapq.heappush(self._heap, timer)
        timer._scheduled = True  # type: ignore[attr-defined]
        self._wake(when)
        return timer

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        if handle._scheduled:  # type: ignore[attr-defined]
            self._cancelled_in_heap += 1
            if self._cancelled_in_heap > _CLEANUP_AT \
                    and self._cancelled_in_heap * 2 > len(self._heap):
                self._drop_cancelled()

    def _drop_cancelled(self) -> None:
        live = []
        for timer in self._heap:
            if timer.cancelled():
                timer._scheduled = False  # type: ignore[attr-defined]
            else:
                live.append(timer)
        heapq.heapify(live)
        self._heap = live
        self._cancelled_in_heap = 0

    # -- running ----------------------------------------------------------------------------
    def _wake(self, when: float) -> None:
        """Have the Qt timer fire by ``when`` (loop time)."""
        if self._wake_at is not None and self._wake_at <= when:
            return
        self._wake_at = when
        self._waker.start(max(0, math.ceil((when - self.time()) * 1000)))

    def _run_due(self) -> None:
        """Run what is ready now, as one iteration of asyncio's loop does; then sleep in Qt
        until the next timer is due."""
        self._wake_at = None
        end = self.time() + self._clock_resolution
        heap = self._heap
        while heap and (heap[0].cancelled() or heap[0].when() <= end):
            timer = heapq.heappop(heap)
            timer._scheduled = False  # type: ignore[attr-defined]
            if timer.cancelled():
                self._cancelled_in_heap -= 1
            else:
                self._due.append(timer)
        for _ in range(len(self._due)):  # not the ones these callbacks add: they are next
            handle = self._due.popleft()
            if not handle.cancelled():
                handle._run()
        if self._due:
            self._wake(self.time())
        elif heap:
            self._wake(heap[0].when())

    def close(self) -> None:
        self._waker.stop()
        self._due.clear()
        self._heap.clear()
        super().close()


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on the tray's loop (the QApplication must exist)."""
    with asyncio.Runner(loop_factory=QtEventLoop) as runner:
        return runner.run(main)
