"""What `status` and `usage` say of the cloud accounts: the limit holding a provider back and
when it ends, what its key call said (credit, the key's limit, the day's free-model requests),
and the ledger against the bill (`usage --reconcile`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from router.accounts import reconcile
from router.accounts.reconcile import Reconciliation
from router.config import Config, ProviderConfig
from router.core import Router
from router.probing import ProviderStatus

if TYPE_CHECKING:
    from router.ledger.ledger import Ledger


def limit_json(status: ProviderStatus) -> dict[str, Any] | None:
    if status.limit is None:
        return None
    return {"cause": str(status.limit),
            "ends_at": status.limit_ends.isoformat() if status.limit_ends else None}


def account_json(status: ProviderStatus) -> dict[str, Any] | None:
    return status.account.as_json() if status.account is not None else None


def status_lines(status: ProviderStatus) -> list[str]:
    """The lines under a provider's in `status`: its limit and its account."""
    lines = []
    if status.limit is not None:
        ends = (f"ends {status.limit_ends:%Y-%m-%d %H:%M:%S} UTC" if status.limit_ends
                else "ends when you act (add credit or raise the key's limit, then run "
                "`exo-bridge status` or the tray's Check accounts now)")
        lines.append(f"limit: {status.limit.meaning} — {ends}")
    if status.account is not None:
        lines += status.account.lines()
    return lines


async def reconcile_now(config: Config, ledger: Ledger) -> list[tuple[ProviderConfig,
                                                                     Reconciliation | str]]:
    """Each provider whose key call tells the day's bill: its key call now, then the check."""
    async with Router(config, ledger=ledger) as router:
        await router.keys_ready()
        return await router.account_watch.reconcile_now()


def report_checks(checks: Sequence[tuple[ProviderConfig, Reconciliation | str]]) -> bool:
    """Say on stderr what could not be checked; True when every check was made."""
    if not checks:
        print("exo-bridge: nothing to reconcile: no enabled provider with a key reports the "
              "day's bill (OpenRouter does)", file=sys.stderr)
    failed = [(p, why) for p, why in checks if isinstance(why, str)]
    for provider, why in failed:
        print(f"exo-bridge: {provider.id}: {why}", file=sys.stderr)
    return not failed


def stored_checks(ledger: Ledger, since: date, until: date) -> list[Reconciliation]:
    return reconcile.load(ledger.directory, since, until)


def print_checks(checks: Sequence[Reconciliation]) -> None:
    if not checks:
        return
    print("\nledger vs bill (the provider's own figure for the key, per UTC day):")
    for check in checks:
        mark = "  DRIFT" if check.drifted else ""
        print(f"{check.day:<11} {check.provider:<14} {check.text()}{mark}")
