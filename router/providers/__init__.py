"""The registry: provider kind -> adapter. The only list of providers.

Adding a kind is one adapter module (its ``Kind`` description and what differs from the
OpenAI-shaped base) and one line here; nothing else in the router names a kind.

Imports: the core's vocabulary (errors, keys, redact, jsonio), a provider's settings
(router/provider_settings.py, never the config itself, which imports this registry), the HTTP
stack, money's price types and exo's cluster types; never routing, the ledger, the endpoint or
the CLI.
"""

from __future__ import annotations

from router.providers.base import Adapter, CostSource, HealthState, Kind, Role, Snapshot
from router.providers.exo import Exo
from router.providers.huggingface import HuggingFace
from router.providers.openai_compat import OpenAICompatible
from router.providers.openrouter import OpenRouter

_ADAPTERS: dict[str, type[Adapter]] = {cls.kind.name: cls for cls in (
    Exo,
    OpenRouter,
    HuggingFace,
    OpenAICompatible,
)}
def kind_names() -> tuple[str, ...]:
    return tuple(_ADAPTERS)


def adapter_for(kind: str) -> Adapter:
    """A fresh adapter for ``kind`` (config validation guarantees the kind exists)."""
    return _ADAPTERS[kind]()


def kind_named(name: str) -> Kind:
    """The description of a kind (config validation guarantees it exists)."""
    return _ADAPTERS[name].kind


__all__ = ["Adapter", "CostSource", "HealthState", "Kind", "Role", "Snapshot", "adapter_for",
           "kind_named", "kind_names"]
