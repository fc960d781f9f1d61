"""Every number from outside — a provider's answer (exo's state, a key call, a price list, a
usage block), a header — is checked here, where it enters, before anything computes with it.

A number is usable when it is a real number (never a bool), finite, within the range its field
can take, and, as text, short. Anything else (``NaN``, ``Infinity``, ``1e400``, a 400-digit
integer, ``"12"`` where a number belongs, a list) is None: the caller treats the field as unknown
and goes on. Nothing here raises: Python's ``float(10**400)``, ``math.isfinite(10**400)``,
``10**400 / 1000`` and ``int("9" * 5000)`` all do, so an integer is compared exactly before it
is ever converted, and text longer than MAX_TEXT_CHARS is never parsed.
"""

from __future__ import annotations

import math

MAX_TEXT_CHARS = 40  # "-1.2345678901234567e+308" and any real header value fit


def number(value: object, low: float, high: float, *, text: bool = False) -> float | None:
    """``value`` as a finite float in ``[low, high]``, or None. With ``text``, a short decimal
    string (a header, a price list's ``"0.000003"``) counts too."""
    if text and isinstance(value, str):
        value = _parsed(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if not low <= value <= high:  # exact for an int of any size: no conversion yet
        return None
    try:
        return float(value)
    except OverflowError:  # an int beyond any float, within bounds of infinity
        return None


def whole(value: object, low: int, high: int, *, text: bool = False,
          fraction: bool = False) -> int | None:
    """``value`` as an integer in ``[low, high]``, or None. A float with no fraction counts;
    with ``fraction``, any finite float counts, its fraction dropped (``1.5e9`` bytes)."""
    if text and isinstance(value, str):
        value = _parsed(value)
    if isinstance(value, float) and math.isfinite(value) and (fraction or value.is_integer()):
        value = int(value)  # finite: never raises
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if low <= value <= high else None


def _parsed(text: str) -> float | None:
    stripped = text.strip()
    if not stripped or len(stripped) > MAX_TEXT_CHARS:
        return None
    try:
        return float(stripped)
    except ValueError:
        return None
