"""The attempt-outcome vocabulary and the exception tree.

Every provider considered for a request ends with exactly one :class:`Outcome`:
either a call was made (``ok`` … ``cancelled``) or it was skipped without one
(``busy`` … ``not-allowed``, latency 0).

Exceptions::

    ExoBridgeError                 anything we raise on purpose; str() is a user-facing message
    ├── ConfigError                a config file we cannot use (file, line, fix)
    ├── KeychainUnavailable        no OS keychain; environment keys still work
    ├── LedgerUnavailable          the usage ledger cannot be opened or written (path, fix)
    │   └── LedgerCorrupt          SQLite says the file is damaged (it is moved aside)
    ├── EndpointError              the local endpoint cannot start (port in use, bad address)
    ├── ClusterActionFailed        a local cluster would not warm, reload or unload a model (why)
    ├── ProviderFailure            one attempt failed (internal: carries the outcome)
    └── RoutingError               a request that got no answer (carries the attempts)
        ├── RequestRejected        the request's own fault (400): not sent to other providers
        │   └── Unmappable         (router.endpoint.apis.common) a Responses/Messages request we cannot
        │                          express as a chat completion (400, naming the field)
        ├── NoProviderAvailable    every provider failed or was skipped
        ├── StreamBroken           a stream failed after its first token
        └── UnknownModel           no alias and no provider's model list has it (404)

Outside the tree, one ValueError of a parsing layer: router.http.body.BodyError (an answer over its
limits), turned into a bad-response ProviderFailure where it is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from router.money.terms import CostSource, Flag


class Outcome(StrEnum):
    OK = "ok"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate-limited"
    INVALID_KEY = "invalid-key"
    OUT_OF_CREDITS = "out-of-credits"
    MODEL_UNAVAILABLE = "model-unavailable"
    SERVER_ERROR = "server-error"
    BAD_RESPONSE = "bad-response"
    STREAM_CUT = "stream-cut"
    BAD_REQUEST = "bad-request"
    CANCELLED = "cancelled"
    # skipped without a call
    BUSY = "busy"
    CIRCUIT_OPEN = "circuit-open"
    OVER_BUDGET = "over-budget"
    NO_KEY = "no-key"
    DISABLED = "disabled"
    NOT_ALLOWED = "not-allowed"

    @property
    def by_policy(self) -> bool:
        """Skipped for the user's own settings (disabled, no key, not allowed): passing such a
        provider is no failover."""
        return self in (Outcome.DISABLED, Outcome.NOT_ALLOWED, Outcome.NO_KEY)


class LimitCause(StrEnum):
    """Why a provider's account refused a request (a 402 and its kin), as its adapter read the
    provider's answer; router/policy.py decides what each means (how long, for which models)."""

    IN_FLIGHT = "in-flight-budget"  # too much paid spending in flight at once: a short wait
    KEY_LIMIT = "key-limit"  # the key's own spending cap: until it resets
    CREDITS = "credits"  # the account's balance: until credit is added
    REQUEST_COST = "request-cost"  # this request alone costs more than the balance allows
    FREE_QUOTA = "free-quota"  # the day's free-model requests are used up: until 00:00 UTC

    @property
    def meaning(self) -> str:
        return _LIMIT_MEANINGS[self]


_LIMIT_MEANINGS = {
    LimitCause.IN_FLIGHT: "too much paid spending in flight",
    LimitCause.KEY_LIMIT: "the key's credit limit is reached",
    LimitCause.CREDITS: "out of credits",
    LimitCause.REQUEST_COST: "this request costs more than the balance allows",
    LimitCause.FREE_QUOTA: "today's free-model requests are used up",
}


@dataclass(frozen=True, slots=True)
class Attempt:
    """One provider's part in one request."""

    provider: str
    outcome: Outcome
    detail: str = ""
    latency_ms: float = 0.0
    model: str | None = None
    called: bool = True
    # What the attempt produced, for the ledger (tokens seen even when it failed).
    ttft_ms: float | None = None
    usage: dict[str, Any] | None = None
    cost_usd: float = 0.0
    cost_source: CostSource = CostSource.FREE
    flags: tuple[Flag, ...] = ()
    day: str | None = None  # the UTC day its budget hold counts on (it was reserved then)
    reservation: str | None = None  # the ledger's hold its row replaces

    def as_dict(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "outcome": str(self.outcome),
            "detail": self.detail,
            "latency_ms": round(self.latency_ms, 2),
        }


def describe_attempts(attempts: Sequence[Attempt], joiner: str = "; ") -> str:
    """Each provider tried and what happened, as people read it (errors, the chat's route
    line, ``ask``)."""
    return joiner.join(f"{a.provider}: {a.outcome}" + (f" ({a.detail})" if a.detail else "")
                       for a in attempts)


class ExoBridgeError(Exception):
    """Base of every error we raise on purpose. ``str()`` is fit to show a user."""


class ConfigError(ExoBridgeError):
    def __init__(self, path: str, message: str, *, line: int | None = None, fix: str = ""):
        self.path = path
        self.line = line
        self.message = message
        self.fix = fix
        where = f"{path}, line {line}" if line else path
        text = f"config error in {where}: {message}"
        super().__init__(f"{text}\n  fix: {fix}" if fix else text)


class KeychainUnavailable(ExoBridgeError):
    """No usable OS keychain (no Secret Service, locked, or no backend)."""


class LedgerUnavailable(ExoBridgeError):
    """The ledger cannot be opened or written (the message names the path and the fix)."""


class LedgerCorrupt(LedgerUnavailable):
    """SQLite says the file is damaged."""


class EndpointError(ExoBridgeError):
    """The endpoint cannot start (port in use, bad address)."""


class ClusterActionFailed(ExoBridgeError):
    """A local cluster would not warm, reload or unload a model; the message says why."""


class ProviderFailure(ExoBridgeError):
    """One attempt at one provider failed; ``outcome`` says why, and ``limit`` which of the
    account's limits refused it (when one did)."""

    def __init__(self, outcome: Outcome, detail: str, *, retry_after_s: float | None = None,
                 status: int | None = None, limit: LimitCause | None = None):
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail
        self.retry_after_s = retry_after_s
        self.status = status
        self.limit = limit


class RoutingError(ExoBridgeError):
    def __init__(self, message: str, attempts: Sequence[Attempt] = (), *,
                 retry_after_s: float | None = None):
        super().__init__(message)
        self.attempts = tuple(attempts)
        self.retry_after_s = retry_after_s


class RequestRejected(RoutingError):
    """The request itself is malformed: a provider said 400, or we did before sending."""


class NoProviderAvailable(RoutingError):
    """Every provider considered failed or was skipped."""

    @property
    def only_limits(self) -> bool:
        """True when every provider that could have served was held back by a budget or a
        rate limit (the others being down, keyless, disabled or without the model)."""
        limit = {Outcome.OVER_BUDGET, Outcome.RATE_LIMITED, Outcome.OUT_OF_CREDITS}
        cannot_serve = {Outcome.DISABLED, Outcome.NO_KEY, Outcome.NOT_ALLOWED, Outcome.REFUSED,
                        Outcome.CIRCUIT_OPEN, Outcome.MODEL_UNAVAILABLE, Outcome.BUSY,
                        Outcome.INVALID_KEY}
        outcomes = {a.outcome for a in self.attempts}
        return bool(outcomes & limit) and outcomes <= limit | cannot_serve


class StreamBroken(RoutingError):
    """A provider failed after the first content token had been delivered."""


class UnknownModel(RoutingError):
    """No alias and no enabled provider's model list has this model."""
