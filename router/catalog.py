"""Which models exist: the aliases, and what each provider is known to list."""

from __future__ import annotations

from router.config import Config
from router.errors import UnknownModel
from router.health import HealthBook
from router.pricing import Pricer


def model_lists(config: Config, health: HealthBook, pricer: Pricer) -> dict[str, frozenset[str] | None]:
    """Each enabled provider's known model ids (None where we don't know them): exo's from its
    last probe, the cloud's from their price lists."""
    lists: dict[str, frozenset[str] | None] = {}
    for p in config.providers:
        if not p.enabled:
            continue
        snapshot = health[p.id].snapshot
        table = pricer.tables.get(p.id)
        if snapshot is not None and snapshot.models is not None:
            lists[p.id] = snapshot.models
        elif table is not None:
            lists[p.id] = frozenset(table.prices)
        else:
            lists[p.id] = None
    return lists


def known_models(config: Config, lists: dict[str, frozenset[str] | None]) -> dict[str, str]:
    models = {name: "exo-bridge" for name in config.models}
    for provider_id, ids in lists.items():
        for model in sorted(ids or ()):
            models.setdefault(model, provider_id)
    return models


def check_model(config: Config, lists: dict[str, frozenset[str] | None], model: object) -> None:
    """Raise UnknownModel when the name is no alias and every enabled provider's list is known
    and none has it."""
    if not isinstance(model, str) or model in config.models:
        return
    if any(ids is None for ids in lists.values()):
        return
    base = model.split(":", 1)[0]
    if not any(model in ids or base in ids for ids in lists.values() if ids is not None):
        aliases = ", ".join(config.models) or "(none)"
        raise UnknownModel(f"model {model!r} is not an alias and no enabled provider lists it; "
                           f"aliases: {aliases}")
