"""What each figure the displays show means, said once: the tray's menu and status window, the
cost window and `exo-bridge status` all write a provider's day with these functions.

- **requests**: requests a provider *answered* (the ledger's ``requests``; what the cost window,
  `exo-bridge usage` and the CSV count). Attempts that reached it without an answer (refused,
  stopped by the caller, failed) are **unanswered**, said apart, never counted as requests.
- **calls**: every attempt that reached it, answered or not. A daily request limit counts calls
  (each one costs the provider's quota), so against a limit the calls are shown: "7 of 1000
  calls".
- Every "X of Y" is *used* of the whole: a limit, a cost limit, the day's free-model requests.
"""

from __future__ import annotations

from router.money.usd import usd


def count_text(n: int | float, one: str, many: str | None = None) -> str:
    """``1 request``, ``1,234 requests``."""
    return f"{n:,.0f} {one if n == 1 else (many or one + 's')}"


def requests_text(answered: int, calls: int | None = None) -> str:
    """Requests answered, and the attempts that were not: ``5 requests (2 unanswered)``."""
    unanswered = 0 if calls is None else max(0, calls - answered)
    text = count_text(answered, "request")
    return f"{text} ({unanswered:,} unanswered)" if unanswered else text


def used_of(used: float, whole: float, unit: str = "") -> str:
    """``7 of 1,000 calls``: a share of a limit, always used of the whole."""
    return f"{used:,.0f} of {whole:,.0f}" + (f" {unit}" if unit else "")


def request_limit_text(calls: int, limit: float | None) -> str:
    """The daily request limit as used of it (``limit 7 of 1,000 calls``); "" with none."""
    return f"limit {used_of(calls, limit, 'calls')}" if limit else ""


def cost_text(cost_usd: float, limit_usd: float | None, *, free: bool = False) -> str:
    """The day's cost, of its limit: ``$0.12 of $1.00 today``, ``free today``."""
    spent = "free" if free else usd(cost_usd, cents=True)
    return f"{spent} of {usd(limit_usd, cents=True)} today" if limit_usd else f"{spent} today"


def free_requests_text(used: int, limit: int) -> str:
    """OpenRouter's free-model requests: ``free models 3 of 1,000 used today``."""
    return f"free models {used_of(used, limit)} used today"


def day_text(answered: int, calls: int, cost_usd: float, limits: dict[str, float | None], *,
             free: bool = False) -> str:
    """A provider's day in one line: its requests, its request limit, its cost."""
    parts = [requests_text(answered, calls), request_limit_text(calls, limits.get("requests")),
             cost_text(cost_usd, limits.get("cost_usd"), free=free)]
    return " · ".join(part for part in parts if part)
