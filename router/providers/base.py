"""The adapter protocol: what the router needs to know about one kind of provider.

An adapter is declarative: URLs, auth headers, request/response mapping, error
classification and a cheap probe. It never retries and never fails over.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from router.config import ProviderConfig
from router.errors import ProviderFailure
from router.keys import Secret

if TYPE_CHECKING:
    import httpx


class HealthState(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"
    BUSY = "busy"
    DISABLED = "disabled"
    NO_KEY = "no-key"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one probe (or key check) learned about a provider."""

    state: HealthState
    detail: str
    latency_ms: float = 0.0
    node: str | None = None  # the base URL that answered (exo: one node of the cluster)
    models: frozenset[str] | None = None  # ids the provider knows; None: not known
    ready: frozenset[str] | None = None  # ids loaded and ready now; None: assume ready
    busy: Mapping[str, str] = field(default_factory=dict)  # model id -> why it is busy
    download_progress: float | None = None  # 0-100 while a model downloads
    invalid_key: bool = False


class Adapter(Protocol):
    kind: ClassVar[str]

    def chat_url(self, base_url: str) -> str: ...

    def headers(self, key: Secret | None) -> dict[str, str]: ...

    def body(self, request: Mapping[str, Any], model_id: str) -> dict[str, Any]: ...

    def normalise(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Turn one upstream ``data:`` object into standard ``chat.completion.chunk`` dicts.

        Raises ProviderFailure when the object is an error.
        """
        ...

    def classify(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderFailure: ...

    async def probe(self, http: httpx.AsyncClient, provider: ProviderConfig,
                    key: Secret | None) -> Snapshot:
        """A cheap check: liveness/readiness for exo, a free authenticated call for the cloud."""
        ...

    @property
    def done_marker_required(self) -> bool:
        """Whether a stream must end with ``[DONE]`` (legacy exo never sent one)."""
        ...
