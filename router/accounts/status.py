"""What an account's figures mean: how near the key is to its walls (its cap, the user's credit
floor, the day's free-model requests), and the account as the displays show it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from router.accounts.reconcile import Reconciliation
from router.events import CreditLevel, CreditWall
from router.money.figures import free_requests_text
from router.money.usd import usd
from router.providers.account import AccountReport, FreeRequests

FREE_NEARLY_USED = 0.9  # the day's free-model requests are "nearly gone"
_LEVELS = ((1.0, CreditLevel.REACHED), (0.95, CreditLevel.CLOSE), (0.8, CreditLevel.NEARLY))
_ORDER = (None, CreditLevel.NEARLY, CreditLevel.CLOSE, CreditLevel.REACHED)


def credit_position(report: AccountReport, floor: float | None) -> tuple[CreditWall, float, float] | None:
    """(the wall, credit left above it, the whole way from the cap to it), when the key has a cap."""
    if report.limit_usd is None or report.remaining_usd is None:
        return None
    wall_at = floor or 0.0
    wall = CreditWall.CREDIT_FLOOR if floor else CreditWall.KEY_LIMIT
    return wall, report.remaining_usd - wall_at, report.limit_usd - wall_at


def credit_level(left: float, span: float) -> CreditLevel | None:
    if span <= 0:
        return CreditLevel.REACHED if left <= 0 else None
    used = 1.0 - left / span
    return next((level for share, level in _LEVELS if used >= share - 1e-9), None)


def rises(level: CreditLevel, above: CreditLevel | None) -> bool:
    """Whether ``level`` is nearer the wall than ``above`` (None: no level yet)."""
    return _ORDER.index(level) > _ORDER.index(above)


def free_level(free: FreeRequests) -> CreditLevel | None:
    if free.remaining <= 0:
        return CreditLevel.REACHED
    return CreditLevel.NEARLY if free.used >= FREE_NEARLY_USED * free.limit else None


@dataclass(frozen=True, slots=True)
class AccountStatus:
    """An account as the displays show it: what its key call said, and what that means."""

    checked_at: datetime
    report: AccountReport
    credit_floor_usd: float | None
    credit: tuple[CreditWall, float, float] | None  # (wall, left above it, the way to it)
    level: CreditLevel | None
    free_requests: FreeRequests | None  # today's, with this process's own since the key call
    free_level: CreditLevel | None
    reconciliation: Reconciliation | None = None  # today's ledger vs bill, if checked

    @property
    def floor_unchecked(self) -> bool:
        """A credit floor is set, but the key has no cap: its key call shows no credit left."""
        return self.credit_floor_usd is not None and self.credit is None

    def summary(self) -> str:
        """One short line (the tray's provider line)."""
        parts = []
        report = self.report
        if report.remaining_usd is not None and report.limit_usd is not None:
            parts.append(f"credit {usd(report.remaining_usd, cents=True)} of "
                         f"{usd(report.limit_usd, cents=True)} left"
                         + (f" ({self.level} of the way to {_WALLS[self.credit[0]]})"
                            if self.level and self.credit else ""))
        if self.free_requests is not None:
            parts.append(free_requests_text(self.free_requests.used, self.free_requests.limit))
        if self.reconciliation is not None and self.reconciliation.drifted:
            parts.append(f"ledger vs bill: {self.reconciliation.text()}")
        return " · ".join(parts)

    def lines(self) -> list[str]:
        """Everything, for `exo-bridge status`."""
        report = self.report
        cap = ("no credit limit on the key" if report.limit_usd is None else
               f"{usd(report.remaining_usd or 0.0, cents=True)} of "
               f"{usd(report.limit_usd, cents=True)} left"
               + (f", resets {report.limit_reset} ({report.limit_resets_at:%Y-%m-%d %H:%M} UTC)"
                  if report.limit_resets_at else ", never resets"))
        lines = [f"credit: {cap}" + (f" — {self.level} of the way to {_WALLS[self.credit[0]]}"
                                      if self.level and self.credit else "")]
        if self.floor_unchecked:
            lines.append(f"credit floor {usd(self.credit_floor_usd or 0.0, cents=True)}: cannot "
                         "be checked (the key has no credit limit, so its key call shows no "
                         "credit left)")
        spent = [f"{label} {usd(value)}" for label, value in (
            ("today", report.usage_daily_usd), ("this week", report.usage_weekly_usd),
            ("this month", report.usage_monthly_usd)) if value is not None]
        if spent:
            lines.append("billed to the key: " + ", ".join(spent))
        if self.free_requests is not None:
            free = self.free_requests
            lines.append(f"{free_requests_text(free.used, free.limit)}, {free.remaining:,} left"
                         + (" (nearly gone)" if self.free_level else ""))
        if report.expires_at is not None:
            lines.append(f"key expires {report.expires_at:%Y-%m-%d %H:%M} UTC")
        if self.reconciliation is not None:
            mark = " — DRIFT" if self.reconciliation.drifted else ""
            lines.append(f"ledger vs bill today: {self.reconciliation.text()}{mark}")
        return lines

    def as_json(self) -> dict[str, Any]:
        free = self.free_requests
        return {"checked_at": self.checked_at.isoformat(), **self.report.as_json(),
                "credit_floor_usd": self.credit_floor_usd,
                "credit_wall": None if self.credit is None else str(self.credit[0]),
                "credit_level": None if self.level is None else str(self.level),
                "free_requests_today": None if free is None else {
                    "used": free.used, "limit": free.limit, "remaining": free.remaining},
                "free_requests_level": None if self.free_level is None else str(self.free_level),
                "reconciliation": None if self.reconciliation is None
                else self.reconciliation.as_json()}


_WALLS = {CreditWall.KEY_LIMIT: "the key's limit", CreditWall.CREDIT_FLOOR: "your credit floor",
          CreditWall.FREE_REQUESTS: "today's free requests"}
