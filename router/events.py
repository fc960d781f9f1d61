"""Router events, delivered to plain callbacks (the desktop bridge turns them into signals).
They carry typed values (outcomes, states, roles), never text for a listener to match."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from router.cluster_events import ClusterProblem, ModelWarming, NodeChanged
from router.errors import Outcome
from router.providers import HealthState, Role

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Failover:
    """A request went past ``from_provider`` (which failed for ``reason``) to ``to_provider``."""

    request_id: str
    from_provider: str
    to_provider: str
    reason: Outcome


@dataclass(frozen=True, slots=True)
class HealthChanged:
    provider: str
    old_state: HealthState
    new_state: HealthState
    detail: str  # for people; listeners decide on the fields
    recovered: bool  # True on fail-back: the provider can take traffic again
    role: Role = Role.CLOUD  # local: the user's own (free) cluster
    invalid_key: bool = False  # down because its key was rejected


@dataclass(frozen=True, slots=True)
class RequestFinished:
    """A request ended, answered or not. ``result`` is None when no answer was delivered."""

    request_id: str
    logical_model: str
    streamed: bool
    attempts: tuple[Any, ...]  # router.errors.Attempt, in order
    result: Any = None  # router.result.Result

    @property
    def ok(self) -> bool:
        return self.result is not None


class BudgetLevel(StrEnum):
    NEARLY = "80%"
    EXHAUSTED = "exhausted"


@dataclass(frozen=True, slots=True)
class BudgetAlert:
    """A provider's daily budget reached ``level``."""

    provider: str
    level: BudgetLevel
    detail: str


@dataclass(frozen=True, slots=True)
class CostAnomaly:
    provider: str
    request_id: str
    reported_usd: float
    expected_usd: float


@dataclass(frozen=True, slots=True)
class UsageInvalid:
    """A provider reported usage that cannot be true (announced once per provider)."""

    provider: str
    model: str


@dataclass(frozen=True, slots=True)
class LedgerProblem:
    """The usage ledger cannot record (``problem`` names the path and the fix), or can again
    (``problem`` is None). Paid providers are off meanwhile."""

    problem: str | None


Event = (Failover | HealthChanged | RequestFinished | BudgetAlert | CostAnomaly | UsageInvalid
         | LedgerProblem | ModelWarming | NodeChanged | ClusterProblem)
Listener = Callable[[Event], None]


class EventHub:
    """Subscribers are called in order; one that raises is logged and never breaks routing."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def emit(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("event listener %r failed on %s", listener,
                              type(event).__name__)
