"""The one rule for "a daily limit is passed", used wherever a hold is decided (in SQLite across
processes, router/ledger/store.py, and in this process, router/money/budget.py).

A new request is refused when today's use (rows plus every live hold) of any limited unit is at
or past its limit, whatever the request itself wants — a request whose cost is unknown before the
answer (no price table: a hold of $0) still cannot pass a USD limit already spent. It is also
refused when what it wants would take a unit past its limit. A hold that grows (a streaming
answer without max_tokens asking for more tokens) adds no request, so the request limit is not
asked again for it; every other unit is.
"""

from __future__ import annotations

from collections.abc import Iterable

# (limit or None, used today including holds, wanted now, unit name)
Check = tuple[float | None, float, float, str]


def passed(checks: Iterable[Check], *, growth: bool = False) -> tuple[str, float, float] | None:
    """(unit, used, limit) of the first limit this hold may not take, or None."""
    for limit, used, want, unit in checks:
        if limit is None or (growth and unit == "request"):
            continue
        if used >= limit or used + want > limit:
            return unit, used, limit
    return None
