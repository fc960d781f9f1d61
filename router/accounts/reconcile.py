"""Ledger vs bill: what the ledger recorded for a provider on a UTC day against what the
provider's key call says the key was billed that day (OpenRouter's ``usage_daily``).

A drift over 5% of the bill and over a cent is flagged. Each check is appended, as one JSON
line that is never rewritten, to ``reconciliations.jsonl`` beside the ledger (0600), so
`exo-bridge usage` and the cost window show the latest check of each day; a line of the wrong
shape (a torn write, a hand edit) is skipped, and a file that cannot be written costs only the
record of the check, never the check itself.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from router.money.usd import usd
from router.numbers import number

log = logging.getLogger(__name__)

DRIFT_FRACTION = 0.05  # of the bill
DRIFT_MIN_USD = 0.01
FILE = "reconciliations.jsonl"
_READ_BYTES = 1 << 20  # the newest checks (a year of daily checks is ~60 KB)
_MAX_USD = 10_000_000.0


@dataclass(frozen=True, slots=True)
class Reconciliation:
    day: str  # YYYY-MM-DD, UTC
    provider: str
    recorded_usd: float  # the ledger's cost for the day (failed attempts' included)
    billed_usd: float  # what the provider's key call says was billed that day
    checked_at: datetime

    @property
    def drift_usd(self) -> float:
        return self.recorded_usd - self.billed_usd

    @property
    def drift_fraction(self) -> float | None:
        return self.drift_usd / self.billed_usd if self.billed_usd else None

    @property
    def drifted(self) -> bool:
        drift = abs(self.drift_usd)
        return drift > DRIFT_MIN_USD and drift > DRIFT_FRACTION * self.billed_usd

    def text(self) -> str:
        share = self.drift_fraction
        pct = f", {share:+.1%}" if share is not None else ""
        sign = "+" if self.drift_usd >= 0 else "-"
        return (f"recorded {usd(self.recorded_usd)}, billed {usd(self.billed_usd)} "
                f"(drift {sign}{usd(abs(self.drift_usd))}{pct})")

    def as_json(self) -> dict[str, Any]:
        share = self.drift_fraction
        return {"day": self.day, "provider": self.provider,
                "recorded_usd": round(self.recorded_usd, 10),
                "billed_usd": round(self.billed_usd, 10),
                "drift_usd": round(self.drift_usd, 10),
                "drift_fraction": None if share is None else round(share, 6),
                "drifted": self.drifted, "checked_at": self.checked_at.isoformat()}


def append(directory: Path, check: Reconciliation) -> bool:
    """Record a check (one append: several processes may write at once). False when it could
    not be written (the check still stands; the reason is logged)."""
    line = json.dumps({"day": check.day, "provider": check.provider,
                       "recorded_usd": check.recorded_usd, "billed_usd": check.billed_usd,
                       "checked_at": check.checked_at.isoformat()}, allow_nan=False) + "\n"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / FILE, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"  # a write cut by kill -9
            os.write(fd, (("\n" if torn else "") + line).encode())
        finally:
            os.close(fd)
    except OSError as exc:
        log.warning("could not record the ledger-vs-bill check in %s: %s", directory / FILE,
                    exc.strerror or exc)
        return False
    return True


def load(directory: Path, since: date, until: date) -> list[Reconciliation]:
    """The latest check of each (day, provider) between ``since`` and ``until``, by day."""
    try:
        with open(directory / FILE, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - _READ_BYTES))
            data = handle.read(_READ_BYTES)
    except OSError:
        return []
    latest: dict[tuple[str, str], Reconciliation] = {}
    for raw in data.splitlines():
        check = _parse(raw)
        if check is None or not since.isoformat() <= check.day <= until.isoformat():
            continue
        key = (check.day, check.provider)
        if key not in latest or check.checked_at >= latest[key].checked_at:
            latest[key] = check
    return [latest[key] for key in sorted(latest)]


def _parse(raw: bytes) -> Reconciliation | None:
    try:
        data = json.loads(raw)
        day = date.fromisoformat(data["day"]).isoformat()
        checked = datetime.fromisoformat(data["checked_at"])
        recorded, billed = _money(data["recorded_usd"]), _money(data["billed_usd"])
        provider = data["provider"]
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    if recorded is None or billed is None or not isinstance(provider, str) or len(provider) > 64:
        return None
    if checked.tzinfo is None:
        checked = checked.replace(tzinfo=UTC)
    return Reconciliation(day, provider, recorded, billed, checked)


def _money(value: Any) -> float | None:
    return number(value, 0, _MAX_USD)
