"""How the cost window writes its figures: money and counts on the axes, dates under the bars,
rates only where the sample says something. Plain Python (no Qt, no pyqtgraph), so the window
can use it before the plots load and the tests can hammer it."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

DAY_S = 86400.0
MEANINGFUL_SAMPLE = 20  # below this many requests a percentage says more than the data does
MAX_PLACES = 12  # $0.000000000001: below that a tick reads $0.000000000000 (the axis is ~0)


def _places(spacing: float) -> int:
    """Decimal places that tell ticks `spacing` apart (a rounding step no larger than it)."""
    if not math.isfinite(spacing) or spacing <= 0:
        return 2
    return min(MAX_PLACES, max(0, -math.floor(math.log10(spacing))))


def money_tick(value: float, spacing: float) -> str:
    """A cost tick in US dollars: ``$0.12``, ``$0.000004``, ``$1,200``, never ``4e-06``.

    Whole dollars once the ticks are a dollar or more apart; otherwise at least cents, and as
    many places as the tick spacing needs, so neighbouring ticks never read the same."""
    if not math.isfinite(value):
        return ""
    places = _places(spacing)
    places = max(2, places) if places else 0
    text = f"{abs(value):,.{places}f}"
    negative = value < 0 and any(c not in "0.," for c in text)
    return f"{'-' if negative else ''}${text}"


_UNITS = ((1e9, "B"), (1e6, "M"), (1e3, "k"))


def count_unit(largest: float) -> tuple[float, str]:
    """The divisor and suffix for counts up to `largest`: plain below 10,000, then k, M, B."""
    for divisor, suffix in _UNITS:
        if abs(largest) >= max(divisor, 10_000):
            return divisor, suffix
    return 1.0, ""


def count_tick(value: float, spacing: float, largest: float | None = None) -> str:
    """A token or request tick: ``950``, ``12,500``... ``12.5k``, ``3M``; never ``1e+06``.

    `largest` is the axis's biggest tick, so every tick on one axis shares a suffix."""
    if not math.isfinite(value):
        return ""
    divisor, suffix = count_unit(abs(value) if largest is None else largest)
    places = _places(spacing / divisor) if math.isfinite(spacing) and spacing > 0 else 0
    text = f"{abs(value) / divisor:,.{places}f}"
    negative = value < 0 and any(c not in "0.," for c in text)
    return f"{'-' if negative else ''}{text}{suffix}"


def bucket_day(x: float) -> date:
    """The UTC day a position on the time axis (Unix seconds) falls in."""
    return datetime.fromtimestamp(math.floor(x / DAY_S) * DAY_S, UTC).date()


def date_tick(x: float, by: str) -> str:
    """The label of the bucket at `x`: ``Nov 28`` for a day or a week, ``Nov 2026`` for a month."""
    day = bucket_day(x)
    if by == "month":
        return day.strftime("%b %Y")
    return f"{day.strftime('%b')} {day.day}"


def period_of(x: float, by: str) -> str:
    """The ledger's period name (``2026-11-22``, a week's Monday, ``2026-11``) at position `x`."""
    day = bucket_day(x)
    if by == "month":
        return day.strftime("%Y-%m")
    if by == "week":
        day -= timedelta(days=day.weekday())
    return day.isoformat()


def period_title(period: str, by: str) -> str:
    """A period for people: ``Sat Nov 21 2026``, ``week of Nov 16 2026``, ``November 2026``."""
    day = date.fromisoformat(period if len(period) == 10 else f"{period}-01")
    if by == "month":
        return day.strftime("%B %Y")
    text = f"{day.strftime('%a %b')} {day.day} {day.year}"
    return f"week of {text[4:]}" if by == "week" else text


def count_text(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def failover_text(failovers: int, requests: int) -> str:
    """Failovers with their sample: counts below MEANINGFUL_SAMPLE requests, a rate above."""
    if requests <= 0:
        return "no failovers" if failovers <= 0 else count_text(failovers, "failover")
    if requests < MEANINGFUL_SAMPLE:
        return f"{count_text(failovers, 'failover')} in {count_text(requests, 'request')}"
    return f"failover rate {100.0 * failovers / requests:.1f}% (of {requests:,} requests)"


def contrast(colour: str, background: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours, 1 to 21 (3 is the floor for marks on a
    plot, 4.5 for text)."""
    def luminance(name: str) -> float:
        linear = []
        for i in (1, 3, 5):
            c = int(name[i:i + 2], 16) / 255
            linear.append(c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(colour), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)
