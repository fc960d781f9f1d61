"""Which models exist: the aliases, and what each provider that could serve is known to list
(exo's from its last probe, the cloud's from their model and price lists, loaded at start when
serving)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Container, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from router.config import Config, ProviderConfig
from router.errors import UnknownModel
from router.host import RouterHost
from router.money.pricing import Pricer

if TYPE_CHECKING:

    pass


class CatalogHost(RouterHost, Protocol):
    """What the catalog needs of its Router besides router/host.py's."""

    pricer: Pricer

    def has_key(self, provider: ProviderConfig) -> bool: ...
    async def keys_ready(self) -> None: ...


Lists = dict[str, Collection[str] | None]
# How long a request for a name nobody is known to list waits for the lists loading at start.
LISTS_WAIT_S = 3.0
# A cloud list older than this is fetched again before a name it lacks is called unknown.
LIST_FRESH_S = 600.0


class Catalog:
    """The model questions of one Router."""

    def __init__(self, router: CatalogHost):
        self._router = router
        self.loading: asyncio.Task[None] | None = None  # the lists loading at start (serve)

    def lists(self) -> Lists:
        """The known model ids of each enabled provider that could serve (None where we don't
        know them yet). A keyless provider or one whose key was rejected cannot serve, so what it
        lists does not count."""
        router = self._router
        lists: Lists = {}
        for p in router.config.providers:
            health = router.health[p.id]
            if not p.enabled or (p.needs_key and not router.has_key(p)) or health.invalid_key:
                continue
            table = router.pricer.tables.get(p.id)
            if health.snapshot is not None and health.snapshot.models is not None:
                lists[p.id] = health.snapshot.models
            elif table is not None:
                lists[p.id] = table.prices.keys()
            else:
                lists[p.id] = None
        return lists

    def known_models(self) -> dict[str, str]:
        """Model id -> who serves it: the aliases, then every model a provider is known to list."""
        models = {name: "exo-bridge" for name in self._router.config.models}
        for provider_id, ids in self.lists().items():
            for model in sorted(ids or ()):
                models.setdefault(model, provider_id)
        return models

    async def check(self, model: object) -> None:
        """Raise UnknownModel for a name that is no alias and that no provider that could serve
        lists. A name nobody is known to list waits (briefly) for the lists still loading."""
        router = self._router
        if not isinstance(model, str) or model in router.config.models:
            return
        lists = self.lists()
        if undecided(router.config, lists, model):
            exo_unknown = [router.spawn(router.probe(p)) for p in router.config.providers
                           if p.enabled and p.traits.local and router.health[p.id].snapshot is None]
            await settle([*exo_unknown, router.spawn(router.keys_ready()), self.loading])
            lists = self.lists()
        if self.loading is not None and nobody_lists(router.config, lists, model):
            await self._refresh_old_lists()  # a model may have come out since they were fetched
            lists = self.lists()
        self.raise_if_unknown(model, lists=lists)

    async def _refresh_old_lists(self) -> None:
        router = self._router
        http = await router.http()
        await settle(router.spawn(router.pricer.refresh(http, p, max_age_s=LIST_FRESH_S))
                     for p in router.config.providers if p.id in router.pricer.tables)

    def raise_if_unknown(self, model: object, attempts: Iterable[Any] = (),
                         lists: Lists | None = None) -> None:
        config = self._router.config
        if nobody_lists(config, self.lists() if lists is None else lists, model):
            aliases = ", ".join(config.models) or "(none)"
            raise UnknownModel(f"model {model!r} is not an alias and no enabled provider lists "
                               f"it; aliases: {aliases}", tuple(attempts))


def _listed(ids: Container[str], model: str) -> bool:
    return model in ids or model.split(":", 1)[0] in ids  # `id:free`, `id:groq` are variants


def is_listed(config: Config, lists: Lists, model: str) -> bool:
    return model in config.models or any(_listed(ids, model) for ids in lists.values() if ids)


def undecided(config: Config, lists: Lists, model: object) -> bool:
    """True while a name is no alias, no known list has it and some list is not known yet."""
    return (isinstance(model, str) and not is_listed(config, lists, model)
            and any(ids is None for ids in lists.values()))


def nobody_lists(config: Config, lists: Lists, model: object) -> bool:
    """True when the name is no alias and every list that counts is known and none has it
    (with no provider able to serve, nothing is known: the request goes on)."""
    return (isinstance(model, str) and bool(lists) and not undecided(config, lists, model)
            and not is_listed(config, lists, model))


def unlisted(pricer: Pricer, provider: ProviderConfig, model_id: str) -> bool:
    """A cloud provider's known model list lacks this pass-through name (sending it would only
    earn a 400 or 404)."""
    table = pricer.tables.get(provider.id)
    return table is not None and not _listed(table.prices, model_id)


async def settle(waits: Iterable[asyncio.Task[Any] | None], timeout_s: float = LISTS_WAIT_S) -> None:
    """Wait up to ``timeout_s`` for the lists still loading (the router's tasks: they go on)."""
    pending = [w for w in waits if w is not None]
    if pending:
        await asyncio.wait(pending, timeout=timeout_s)
