"""The registry: provider kind -> adapter. The only list of providers."""

from __future__ import annotations

from router.providers.base import Adapter, HealthState, Snapshot
from router.providers.exo import Exo
from router.providers.huggingface import HuggingFace
from router.providers.openai_compat import OpenAICompatible
from router.providers.openrouter import OpenRouter

_ADAPTERS: dict[str, type[Adapter]] = {
    "exo": Exo,
    "openrouter": OpenRouter,
    "huggingface": HuggingFace,
    "openai": OpenAICompatible,
}


def adapter_for(kind: str) -> Adapter:
    """A fresh adapter for ``kind`` (config validation guarantees the kind exists)."""
    return _ADAPTERS[kind]()


__all__ = ["Adapter", "HealthState", "Snapshot", "adapter_for"]
