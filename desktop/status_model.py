"""What the tray shows, computed from the router's provider statuses (no Qt here).

green  = requests go to exo (free); yellow = degraded: exo can't serve but the cloud can, or a
budget is above 80%; red = nothing can serve; grey = starting or paused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from router import HealthState, LimitCause, ProviderStatus, Role, usd

ALERT_FRACTION = 0.8


class Light(StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"
    GREY = "grey"


@dataclass(frozen=True, slots=True)
class ProviderRow:
    """One provider in the menu: a coloured dot, its name, today's use and, when it is not
    healthy, why in a few words (the full detail in the tooltip)."""

    id: str
    light: Light
    name: str
    usage: str  # today's requests and cost against the limits, a download, the account
    reason: str | None
    detail: str

    @property
    def text(self) -> str:
        return " · ".join(part for part in (self.name, self.usage, self.reason) if part)


@dataclass(frozen=True, slots=True)
class TrayView:
    light: Light
    tooltip: str
    lines: tuple[str, ...]  # one per provider (the rows' text), then any note line
    rows: tuple[ProviderRow, ...] = ()


def _fraction(status: ProviderStatus) -> float:
    used = (status.requests_today, status.tokens_today, status.cost_today_usd)
    limits = (status.limits.get("requests"), status.limits.get("tokens"), status.limits.get("cost_usd"))
    return max((u / lim for u, lim in zip(used, limits, strict=True) if lim), default=0.0)


_LIMIT_WORDS = {LimitCause.IN_FLIGHT: "paid spending in flight",
                LimitCause.KEY_LIMIT: "credit limit", LimitCause.CREDITS: "out of credit",
                LimitCause.REQUEST_COST: "balance too low",
                LimitCause.FREE_QUOTA: "free requests used up"}
_STATE_WORDS: dict[HealthState, str | None] = {
    HealthState.HEALTHY: None, HealthState.DISABLED: "turned off", HealthState.NO_KEY: "no key",
    HealthState.UNKNOWN: "not checked yet"}
REASON_CHARS = 40


def _clock_time(when: datetime, now: datetime | None = None) -> str:
    """14:00 today, else Tue 14:00 (local time)."""
    local = when.astimezone()
    today = (now or datetime.now().astimezone()).date()
    return f"{local:%H:%M}" if local.date() == today else f"{local:%a %H:%M}"


def _short(detail: str) -> str:
    first = detail.split(" · ")[0].split("; ")[0].strip()
    return first if len(first) <= REASON_CHARS else first[:REASON_CHARS - 1].rstrip() + "…"


def provider_reason(status: ProviderStatus, now: datetime | None = None) -> str | None:
    """Why a provider is not plainly healthy, in a few words; None when it is."""
    state, detail = status.state, status.detail
    if state in _STATE_WORDS:
        return _STATE_WORDS[state]
    if status.invalid_key:
        return "key invalid"
    if status.limit is not None:
        words = _LIMIT_WORDS.get(status.limit, str(status.limit))
        return (f"{words} until {_clock_time(status.limit_ends, now)}"
                if status.limit_ends is not None else words)
    if status.over_budget:
        return "daily limit reached"
    if "ledger cannot record" in detail:
        return "ledger cannot record"
    if "no model loaded" in detail:
        return "model not loaded"
    if state is HealthState.DOWN and status.role is Role.LOCAL and (
            "refused" in detail or "connect" in detail):
        return "not running"
    return _short(detail) or str(state)


def provider_light(status: ProviderStatus) -> Light:
    """green healthy; yellow degraded, limited or busy; red down; grey unknown, off or no key."""
    if status.state in (HealthState.UNKNOWN, HealthState.DISABLED, HealthState.NO_KEY):
        return Light.GREY
    if status.state is HealthState.DOWN:
        return Light.RED
    if status.state is HealthState.HEALTHY and not status.over_budget and status.limit is None:
        return Light.GREEN
    return Light.YELLOW


def provider_usage(status: ProviderStatus) -> str:
    """Today's figures as router/money/figures.py defines them (the cost window and `exo-bridge
    status` count the same way), a download, the account."""
    usage = status.day_text()
    if status.download_progress is not None:
        usage += f" · downloading {status.download_progress:g}%"
    if status.account is not None and (account := status.account.summary()):
        usage += f" · {account}"
    return usage


def provider_row(status: ProviderStatus, now: datetime | None = None) -> ProviderRow:
    detail = f"{status.name}: {status.state}" + (f" — {status.detail}" if status.detail else "")
    return ProviderRow(status.id, provider_light(status), status.name, provider_usage(status),
                       provider_reason(status, now), detail)


def provider_line(status: ProviderStatus, now: datetime | None = None) -> str:
    return provider_row(status, now).text


def tray_view(statuses: Sequence[ProviderStatus], *, paused: bool = False,
              starting: bool = False, ledger_problem: str | None = None,
              warming: str | None = None) -> TrayView:
    """``warming``: a model warming on the local cluster, in words (desktop/cluster_model.py)."""
    view = _tray_view(statuses, paused=paused, starting=starting)
    if warming is not None and not starting:
        view = TrayView(view.light, f"{view.tooltip} · {warming}", view.lines, view.rows)
    if ledger_problem is None or starting:
        return view
    light = Light.YELLOW if view.light is Light.GREEN else view.light
    return TrayView(light, f"{view.tooltip} · the usage ledger cannot record (paid providers off)",
                    (*view.lines, f"Usage ledger: cannot record — {ledger_problem}"), view.rows)


def _tray_view(statuses: Sequence[ProviderStatus], *, paused: bool, starting: bool) -> TrayView:
    rows = tuple(provider_row(s) for s in statuses)
    lines = tuple(row.text for row in rows)
    cost = sum(s.cost_today_usd for s in statuses)
    today = f"{usd(cost, cents=True)} today"
    exo = next((s for s in statuses if s.role is Role.LOCAL and s.state is not HealthState.DISABLED),
               None)
    cloud = [s for s in statuses if s.role is Role.CLOUD and s.can_serve]
    if starting:
        return TrayView(Light.GREY, "Exo Bridge starting…", lines, rows)
    if paused:
        local = "Exo Local serving" if exo is not None and exo.can_serve else "Exo offline"
        return TrayView(Light.GREY, f"{local} · cloud failover paused · {today}", lines, rows)
    if exo is not None and exo.can_serve:
        budget_high = any(_fraction(s) >= ALERT_FRACTION for s in statuses)
        credit_high = any(s.account is not None and s.account.level is not None for s in statuses)
        light = Light.YELLOW if budget_high or credit_high else Light.GREEN
        note = " · a daily budget is above 80%" if budget_high else \
            " · a key's credit is 80% used" if credit_high else ""
        return TrayView(light, f"{exo.name} serving · {today}{note}", lines, rows)
    why = "Exo offline" if exo is None or exo.state is HealthState.DOWN else f"Exo {exo.state}"
    if cloud:
        return TrayView(Light.YELLOW, f"{why} — using {cloud[0].name} · {today}", lines, rows)
    return TrayView(Light.RED, f"{why} — no provider can answer · {today}", lines, rows)
