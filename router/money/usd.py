"""Dollars as people read them, the same everywhere (CLI, tray, chat, cost window)."""

from __future__ import annotations

import math


def usd(amount: float, *, cents: bool = False) -> str:
    """``$1,234.56`` for totals read at a glance (``cents``); otherwise four decimals from a cent
    up and, below a cent, two significant digits — ``$0.000042``, never ``4.2e-05``."""
    if cents or amount == 0 or not math.isfinite(amount):
        return f"${amount:,.2f}" if math.isfinite(amount) else "$?"
    if abs(amount) >= 0.01:
        return f"${amount:,.4f}"
    places = min(12, 1 - math.floor(math.log10(abs(amount))))
    return f"${amount:.{places}f}"
