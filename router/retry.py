"""When a retry can help: the soonest moment one of the providers a request went past could
answer again, for ``Retry-After`` — or none, when nothing will change by itself.

A provider that is down comes back at the next probe when it is probed in the background (a
good probe closes its breaker), else when its breaker rests out; one that is rate limited or out
of credit when its cooldown or its account's limit ends (never by itself for credit that only
the user can add); one over its daily budget at the reset (00:00 UTC). Disabled, keyless,
rejected-key, not-allowed and model-less providers never come back by themselves.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from router.errors import Attempt, Outcome
from router.health import HALF_OPEN_AFTER_S, Breaker, HealthBook, ProviderHealth

# The SDKs (openai, anthropic) honour Retry-After up to a minute; past that a retry is useless.
RETRY_HORIZON_S = 60.0

_DOWN = {Outcome.REFUSED, Outcome.CIRCUIT_OPEN, Outcome.TIMEOUT, Outcome.SERVER_ERROR,
         Outcome.BAD_RESPONSE, Outcome.STREAM_CUT, Outcome.BUSY}
_COOLING = {Outcome.RATE_LIMITED, Outcome.OUT_OF_CREDITS}


def back_in(outcome: Outcome, health: ProviderHealth, now: float, probe_every_s: float | None,
            budget_reset_s: float) -> float | None:
    """Seconds until the provider could serve again, or None if it won't by itself."""
    if outcome in _COOLING:  # a limit of its account, else a cooldown (429)
        ends = [hold.until for hold in health.holds.values()] or [health.cooldown_until]
        left = max(0.0, min(ends) - now)
        return None if math.isinf(left) else left  # inf: until the user acts
    if outcome is Outcome.OVER_BUDGET:
        return budget_reset_s
    if outcome not in _DOWN:
        return None
    next_probe = None if probe_every_s is None else max(0.0, health.snapshot_at + probe_every_s - now)
    if outcome is Outcome.BUSY:  # loading or downloading: the next probe says when it is ready
        return 0.0 if next_probe is None else next_probe
    if health.breaker is not Breaker.OPEN:
        return 0.0  # nothing holds it back: the next request tries it again
    rested = max(0.0, health.opened_at + HALF_OPEN_AFTER_S - now)
    return rested if next_probe is None else min(rested, next_probe)


def soonest(attempts: Iterable[Attempt], health: HealthBook, probe_every_s: Mapping[str, float],
            budget_reset_s: float) -> float | None:
    """The soonest any of the attempts' providers could serve again (at least 1 s), or None."""
    now = health.clock()
    times = [back_in(a.outcome, health[a.provider], now, probe_every_s.get(a.provider),
                     budget_reset_s) for a in attempts]
    known = [t for t in times if t is not None]
    return max(1.0, min(known)) if known else None


# Errors the same request meets again however often it is retried: the request's own fault
# (400), a wrong token (401), a refused host or origin (403), an unknown model or path (404), a
# body over the limit (413). The SDKs (and the agents built on them) retry some of these with
# back-off unless told not to.
NEVER_RETRIED = frozenset({400, 401, 403, 404, 413})


def no_retry_header(status: int) -> dict[str, str]:
    """``x-should-retry: false`` for an error no retry can fix, else nothing."""
    return {"x-should-retry": "false"} if status in NEVER_RETRIED else {}


def retry_headers(after_s: float | None) -> dict[str, str]:
    """``Retry-After`` when a provider can be back, and the SDKs' ``x-should-retry: false``
    when no retry within their horizon can help (they then show the error at once)."""
    headers: dict[str, str] = {}
    if after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(after_s)))
    if after_s is None or after_s > RETRY_HORIZON_S:
        headers["x-should-retry"] = "false"
    return headers
