"""What the tray shows, computed from the router's provider statuses (no Qt here).

green  = requests go to exo (free); yellow = degraded: exo can't serve but the cloud can, or a
budget is above 80%; red = nothing can serve; grey = starting or paused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from router import HealthState, ProviderStatus, Role, usd

ALERT_FRACTION = 0.8


class Light(StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"
    GREY = "grey"


@dataclass(frozen=True, slots=True)
class TrayView:
    light: Light
    tooltip: str
    lines: tuple[str, ...]  # one per provider, for the menu


def _fraction(status: ProviderStatus) -> float:
    used = (status.requests_today, status.tokens_today, status.cost_today_usd)
    limits = (status.limits.get("requests"), status.limits.get("tokens"), status.limits.get("cost_usd"))
    return max((u / lim for u, lim in zip(used, limits, strict=True) if lim), default=0.0)


def provider_line(status: ProviderStatus) -> str:
    limit = status.limits.get("requests")
    requests = f"{status.requests_today}/{limit:g}" if limit else f"{status.requests_today}"
    cost = "free" if status.role is Role.LOCAL else usd(status.cost_today_usd, cents=True)
    if status.limits.get("cost_usd"):
        cost += f"/{usd(status.limits['cost_usd'] or 0, cents=True)}"
    line = f"{status.name}: {status.state} · {requests} requests · {cost} today"
    if status.download_progress is not None:
        line += f" · downloading {status.download_progress:g}%"
    if status.limit is not None and status.state is HealthState.DEGRADED:
        line += f" · {status.detail}"  # which limit, and when it ends
    if status.account is not None and (account := status.account.summary()):
        line += f" · {account}"
    return line


def tray_view(statuses: Sequence[ProviderStatus], *, paused: bool = False,
              starting: bool = False, ledger_problem: str | None = None,
              warming: str | None = None) -> TrayView:
    """``warming``: a model warming on the local cluster, in words (desktop/cluster_model.py)."""
    view = _tray_view(statuses, paused=paused, starting=starting)
    if warming is not None and not starting:
        view = TrayView(view.light, f"{view.tooltip} · {warming}", view.lines)
    if ledger_problem is None or starting:
        return view
    light = Light.YELLOW if view.light is Light.GREEN else view.light
    return TrayView(light, f"{view.tooltip} · the usage ledger cannot record (paid providers off)",
                    (*view.lines, f"Usage ledger: cannot record — {ledger_problem}"))


def _tray_view(statuses: Sequence[ProviderStatus], *, paused: bool, starting: bool) -> TrayView:
    lines = tuple(provider_line(s) for s in statuses)
    cost = sum(s.cost_today_usd for s in statuses)
    today = f"{usd(cost, cents=True)} today"
    exo = next((s for s in statuses if s.role is Role.LOCAL and s.state is not HealthState.DISABLED),
               None)
    cloud = [s for s in statuses if s.role is Role.CLOUD and s.can_serve]
    if starting:
        return TrayView(Light.GREY, "Exo Bridge starting…", lines)
    if paused:
        local = "Exo Local serving" if exo is not None and exo.can_serve else "Exo offline"
        return TrayView(Light.GREY, f"{local} · cloud failover paused · {today}", lines)
    if exo is not None and exo.can_serve:
        budget_high = any(_fraction(s) >= ALERT_FRACTION for s in statuses)
        credit_high = any(s.account is not None and s.account.level is not None for s in statuses)
        light = Light.YELLOW if budget_high or credit_high else Light.GREEN
        note = " · a daily budget is above 80%" if budget_high else \
            " · a key's credit is 80% used" if credit_high else ""
        return TrayView(light, f"{exo.name} serving · {today}{note}", lines)
    why = "Exo offline" if exo is None or exo.state is HealthState.DOWN else f"Exo {exo.state}"
    if cloud:
        return TrayView(Light.YELLOW, f"{why} — using {cloud[0].name} · {today}", lines)
    return TrayView(Light.RED, f"{why} — no provider can answer · {today}", lines)
