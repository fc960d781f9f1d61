"""The one bridge between the router (plain callbacks, asyncio) and Qt (signals).

Router events become Qt signals; widgets ask the bridge to run coroutines, and a failure is
reported through ``error`` instead of vanishing in a garbage-collected task.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import QObject, Signal

from router import (
    AccountLimited,
    BillDrift,
    BudgetAlert,
    ClusterProblem,
    CostAnomaly,
    CreditAlert,
    ExoBridgeError,
    Failover,
    HealthChanged,
    LedgerProblem,
    ModelWarming,
    NodeChanged,
    PromptProgress,
    RequestFinished,
    Router,
    UsageInvalid,
)

log = logging.getLogger(__name__)


class Bridge(QObject):
    health_changed = Signal(object)  # router.HealthChanged
    failover = Signal(object)  # router.Failover
    request_finished = Signal(object)  # router.RequestFinished
    prompt_progress = Signal(object)  # router.PromptProgress (a long prompt being read)
    budget_alert = Signal(object)  # router.BudgetAlert
    cost_anomaly = Signal(object)  # router.CostAnomaly
    usage_invalid = Signal(object)  # router.events.UsageInvalid
    ledger_problem = Signal(object)  # router.events.LedgerProblem
    cluster = Signal(object)  # router.ModelWarming, NodeChanged, ClusterProblem (the exo companion)
    account = Signal(object)  # router.CreditAlert, AccountLimited, BillDrift
    error = Signal(str)  # a user-facing message

    def __init__(self, router: Router):
        super().__init__()
        self.router = router
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unsubscribe = router.subscribe(self._on_event)
        self._signals: dict[type, Any] = {
            HealthChanged: self.health_changed, Failover: self.failover,
            RequestFinished: self.request_finished, PromptProgress: self.prompt_progress,
            BudgetAlert: self.budget_alert,
            CostAnomaly: self.cost_anomaly, UsageInvalid: self.usage_invalid,
            LedgerProblem: self.ledger_problem, ModelWarming: self.cluster, NodeChanged: self.cluster,
            ClusterProblem: self.cluster, CreditAlert: self.account,
            AccountLimited: self.account, BillDrift: self.account}

    def _on_event(self, event: object) -> None:
        signal = self._signals.get(type(event))
        if signal is not None:
            signal.emit(event)

    def run(self, coroutine: Coroutine[Any, Any, Any],
            on_done: Callable[[Any], None] | None = None) -> asyncio.Task[Any]:
        """Run a coroutine on the loop; its result goes to ``on_done``, a failure to ``error``."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._finished(t, on_done))
        return task

    def _finished(self, task: asyncio.Task[Any], on_done: Callable[[Any], None] | None) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            if on_done is not None:
                on_done(task.result())
            return
        if isinstance(exc, ExoBridgeError):
            self.error.emit(str(exc))
        else:
            log.error("background task failed", exc_info=exc)
            self.error.emit(f"Something went wrong ({exc.__class__.__name__}); see the log.")

    def close(self) -> None:
        self._unsubscribe()
        for task in self._tasks:
            task.cancel()
