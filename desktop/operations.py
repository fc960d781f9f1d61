"""The desktop's operations: the only desktop code that does the router's I/O (the keychain, the
ledger's queries, CSV files, the endpoint's token). Widgets call these and never touch a store
themselves (tests/test_shape.py holds it), in the manner of Anki's ``aqt/operations``.

Each operation is a coroutine: blocking work runs in a thread, off the GUI thread; a widget
hands it to ``Bridge.run(operation, on_done)``, which reports a failure to the user.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from router import crashes
from router.accounts import reconcile
from router.accounts.reconcile import Reconciliation
from router.config import Config, data_dir
from router.core import Router
from router.crashes import Crash, CrashWatch
from router.errors import KeychainUnavailable, NoProviderAvailable, RoutingError
from router.exo import discover as discovery
from router.exo.cluster import Warming
from router.exo.discover import Found
from router.keychain_helper import endpoint_token_in_helper, read_in_helper
from router.keys import (
    TOKEN_ENV,
    KeyStore,
    Secret,
    keychain_delete,
    keychain_get,
    keychain_set,
    regenerate_endpoint_token,
)
from router.ledger.ledger import Ledger
from router.ledger.usage import UsageRow, summary, write_csv
from router.probing import ProviderStatus
from router.providers import Snapshot
from router.result import Result
from router.setup_guide import Advice, router_guidance

if TYPE_CHECKING:
    from router.endpoint.server import EndpointServer


@dataclass(frozen=True, slots=True)
class KeyOperations:
    """A cloud provider's key in the OS keychain."""

    router: Router

    async def stored(self, provider_id: str) -> Secret | None:
        return await asyncio.to_thread(keychain_get, provider_id)

    async def save(self, provider_id: str, value: str) -> None:
        """Store the key, then have the router use it at once."""
        await asyncio.to_thread(keychain_set, provider_id, value)
        await self.router.reload_keys()

    async def remove(self, provider_id: str) -> bool:
        removed = await asyncio.to_thread(keychain_delete, provider_id)
        await self.router.reload_keys()
        return removed

    async def test(self, provider_id: str) -> Snapshot:
        """The cheap authenticated call, with the key as stored now."""
        return await self.router.test_key(provider_id)

    async def keychain_problem(self) -> str | None:
        """Why there is no usable keychain, or None."""
        def probe() -> str | None:
            try:
                keychain_get("exo-bridge-probe")
            except KeychainUnavailable as exc:
                return str(exc)
            return None
        return await asyncio.to_thread(probe)


@dataclass(frozen=True, slots=True)
class AccountOperations:
    """The cloud accounts' key calls (never a completion), on the user's word."""

    router: Router

    async def check_now(self) -> list[ProviderStatus]:
        """Credit, key limits and free-model requests now; a good answer ends a credit rest
        (the user says they added credit)."""
        await self.router.keys_ready()
        await self.router.account_watch.check_now()
        return self.router.statuses()


def open_ledger() -> Ledger:
    """The usage ledger of the data dir; one that cannot record still opens (exo answers, paid
    providers are off until it can, and the tray says why)."""
    return Ledger.in_dir(data_dir())


def keys_from_helper() -> KeyStore:
    """Keys from the environment, else from the keychain read in a short-lived helper process
    (keyring's Secret Service client and `cryptography` would otherwise stay resident)."""
    return KeyStore(reader=read_in_helper)


async def endpoint_token() -> Secret:
    """The local endpoint's token: the environment's, else the keychain's (made on first run),
    the keychain part in the helper process."""
    return await asyncio.to_thread(endpoint_token_in_helper)


async def start_endpoint(router: Router, token: Secret) -> EndpointServer:
    """The local endpoint on the router, listening (raises EndpointError: port in use...)."""
    from router.endpoint.server import EndpointServer  # aiohttp's server: loaded once the app is up

    server = EndpointServer(router, token=token, host=router.config.server.host,
                            port=router.config.server.port, drain_s=2.0)
    await server.start()
    return server


def watch_crashes(kind: str) -> tuple[CrashWatch, Crash | None]:
    """Crash reporting for this process, and the crash of an earlier run (or None)."""
    previous = crashes.detect()
    watch = CrashWatch(kind)
    watch.start()
    return watch, previous


def crash_reported() -> None:
    """The user was told of the last crash: not again."""
    crashes.mark_notified()


async def new_endpoint_token() -> Secret:
    """A new token for the local endpoint, stored in the keychain (where `exo-bridge token` and
    the next start read it); the running endpoint is handed it by the app."""
    return await asyncio.to_thread(regenerate_endpoint_token)


def token_from_environment() -> str | None:
    """The environment variable the endpoint's token comes from (the keychain's is then
    unused, and regenerating it changes nothing), or None."""
    return TOKEN_ENV if os.environ.get(TOKEN_ENV, "").strip() else None


@dataclass(frozen=True, slots=True)
class ExoOperations:
    """The local cluster's actions (the tray's menu items and notification buttons): load a
    model (the user's yes to an offer), reload a stuck one, unload one."""

    router: Router

    async def warm(self, model: str) -> Warming:
        return await self.router.companion.warm(model)

    async def reload(self, model: str) -> Warming:
        return await self.router.companion.reload(model)

    async def unload(self, model: str) -> None:
        await self.router.companion.unload(model)

    async def decline(self, model: str) -> None:
        self.router.companion.decline(model)


@dataclass(frozen=True, slots=True)
class UsageOperations:
    """The ledger's summaries for the cost window, and their export."""

    ledger: Ledger

    async def summary(self, since: date, until: date, by: str) -> list[UsageRow]:
        return await asyncio.to_thread(summary, self.ledger, since, until, by)

    async def reconciliations(self, since: date, until: date) -> list[Reconciliation]:
        """The ledger-vs-bill checks of the range (the latest of each day and provider)."""
        return await asyncio.to_thread(reconcile.load, self.ledger.directory, since, until)

    async def export_csv(self, rows: list[UsageRow], path: Path) -> Path:
        """The rows with the columns of `exo-bridge usage --csv`, written off the GUI thread."""
        def write() -> Path:
            with open(path, "w", newline="", encoding="utf-8") as handle:
                write_csv(rows, handle)
            return path
        return await asyncio.to_thread(write)


@dataclass(frozen=True, slots=True)
class TestAnswer:
    """The first-run assistant's test question: the answer, or what to do (per provider)."""

    result: Result | None
    advice: list[Advice] = field(default_factory=list)
    error: str = ""


@dataclass(frozen=True, slots=True)
class SetupOperations:
    """The first-run assistant's look for exo, its test question and its live settings."""

    router: Router
    candidates: Sequence[str] | None = None  # where exo is looked for (None: this machine's
    # usual addresses; tests: a fake's port)

    async def discover(self) -> list[Found]:
        """exo at the configured addresses and every candidate at once, on the router's own
        HTTP client (an exo the config already names, on another port or machine, is found
        too)."""
        usual = self.candidates if self.candidates is not None else discovery.CANDIDATES
        configured = [url for p in self.router.config.providers if p.traits.local
                      for url in p.base_urls]
        urls = list(dict.fromkeys([*configured, *usual]))
        return await discovery.discover(urls, http=await self.router.http())

    async def ask(self, question: str) -> TestAnswer:
        """A short question through the running router (the chat window's path)."""
        request = {"messages": [{"role": "user", "content": question}]}
        try:
            return TestAnswer(await self.router.chat(request))
        except NoProviderAvailable as exc:
            return TestAnswer(None, router_guidance(self.router, exc.attempts), str(exc))
        except RoutingError as exc:
            return TestAnswer(None, [], str(exc))

    def take(self, config: Config) -> None:
        """What the assistant wrote, in this running router at once (the file has it too)."""
        self.router.reconfigure(config)
