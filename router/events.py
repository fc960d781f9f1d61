"""Router events, delivered to plain callbacks (the desktop bridge turns them into signals).
They carry typed values (outcomes, states, roles), never text for a listener to match."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from router.errors import LimitCause, Outcome
from router.exo.events import ClusterProblem, ModelWarming, NodeChanged
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
class PromptProgress:
    """A provider read more of a request's prompt before its first token (exo's prefill of a
    long prompt): ``done`` of ``total`` prompt tokens."""

    request_id: str
    provider: str
    done: int
    total: int

    @property
    def percent(self) -> int:
        return min(100, 100 * self.done // self.total) if self.total > 0 else 0


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


class CreditWall(StrEnum):
    """What a credit warning is about."""

    KEY_LIMIT = "key-limit"  # the key's spending cap
    CREDIT_FLOOR = "credit-floor"  # the credit_floor_usd the user set
    FREE_REQUESTS = "free-requests"  # the day's free-model requests


class CreditLevel(StrEnum):
    NEARLY = "80%"  # of the way to the wall (free requests: 90% used)
    CLOSE = "95%"
    REACHED = "reached"


@dataclass(frozen=True, slots=True)
class CreditAlert:
    """The provider's key call shows it nearing (or at) a wall: ``left`` of ``of`` (dollars, or
    requests), back at ``resets_at`` if the wall resets."""

    provider: str
    wall: CreditWall
    level: CreditLevel
    left: float
    of: float
    resets_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AccountLimited:
    """A limit of the provider's account started holding it back (``ends_at`` None: until the
    user acts)."""

    provider: str
    cause: LimitCause
    ends_at: datetime | None
    detail: str  # for people


@dataclass(frozen=True, slots=True)
class BillDrift:
    """What the ledger recorded for the provider on a UTC day and what its key call says it
    billed differ by more than 5% and more than a cent."""

    provider: str
    day: str
    recorded_usd: float
    billed_usd: float


Event = (Failover | HealthChanged | PromptProgress | RequestFinished | BudgetAlert | CostAnomaly
         | UsageInvalid | LedgerProblem | ModelWarming | NodeChanged | ClusterProblem | CreditAlert
         | AccountLimited | BillDrift)
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


def progress_text(provider_name: str, percent: int) -> str:
    """A PromptProgress as people read it, the same in the chat window and ``ask --stream``:
    ``exo: reading the prompt 63%``."""
    return f"{provider_name}: reading the prompt {percent}%"
