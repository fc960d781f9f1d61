"""The adapter protocol: what the router needs to know about one kind of provider.

An adapter is declarative: its kind's description (``Kind``: local or cloud, key, default
address, deadlines, nodes, how cost is known, its price list), URLs, auth headers,
request/response mapping, error classification and a cheap probe. It never retries and never
fails over. Nothing outside ``router/providers/`` asks which kind a provider is: it asks the
kind's description (tests/test_shape.py holds it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from router.errors import ProviderFailure
from router.money.terms import CostSource as CostSource  # the kinds' cost source

if TYPE_CHECKING:
    import httpx

    from router.exo.cluster import Cluster
    from router.keys import Secret
    from router.money.prices import PriceTable
    from router.provider_settings import ProviderSettings
    from router.providers.account import AccountReport


class Role(StrEnum):
    """Where a provider runs: on the user's own machines (free), or in the cloud."""

    LOCAL = "local"
    CLOUD = "cloud"


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of provider, as the router and the config see it."""

    name: str  # what ``kind =`` says in the config
    role: Role
    takes_key: bool  # an API key may be given (keychain or api_key_env)
    needs_key: bool  # nothing is sent without one
    bills: bool  # its answers cost money (it is used only while the ledger can record)
    default_base_url: str | None  # None: the config must name the server
    deadlines: tuple[float, float, float]  # connect, first token, idle (seconds)
    several_nodes: bool  # base_urls: any node of a cluster
    cost: CostSource
    price_list: str | None = None  # path (under base_url) of its price list, if it has one
    reports_account: bool = False  # its key call reports credit left, the key's cap and spend
    free_suffix: str | None = None  # a model id ending in this is a free variant (no charge)

    @property
    def local(self) -> bool:
        return self.role is Role.LOCAL

    def is_free_variant(self, model_id: str) -> bool:
        """Whether this kind serves ``model_id`` without charge (OpenRouter's ``:free``)."""
        return self.free_suffix is not None and model_id.endswith(self.free_suffix)


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
    account: AccountReport | None = None  # what the key call said of the account, if it says
    cluster: Cluster | None = None  # a local cluster's nodes, loaded models and downloads


@dataclass(frozen=True, slots=True)
class Call:
    """One request to a provider's own control API, as its adapter describes it."""

    method: str
    url: str
    body: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """A placement's dry run: whether the model fits, on which nodes, or why not."""

    fits: bool
    detail: str
    nodes: tuple[str, ...] = ()


class ClusterApi(Protocol):
    """A local cluster's control requests (declarative: which request, and what its answer
    means); router/exo/ops.py sends them, router/exo/companion.py decides when."""

    def placement(self, node: str, model: str) -> Call:
        """The dry run: would ``model`` fit, and where."""
        ...

    def place(self, node: str, model: str) -> Call: ...

    def unload(self, node: str, instance: str) -> Call: ...

    def cancel(self, node: str, completion_id: str) -> Call | None:
        """Stop a generation in flight, by the id its answer carries (None: not possible)."""
        ...

    def verdict(self, status: int, body: bytes) -> Verdict:
        """What the dry run's answer says."""
        ...


@dataclass(frozen=True, slots=True)
class PromptRead:
    """How far a provider has read the prompt before its first token (exo's prefill)."""

    done: int  # prompt tokens read
    total: int  # prompt tokens in all (> 0)

    @property
    def percent(self) -> int:
        return min(100, 100 * self.done // self.total)


class Adapter(Protocol):
    kind: ClassVar[Kind]
    cluster_api: ClassVar[ClusterApi | None]  # a local cluster's control requests, if it has them
    # The start of an SSE comment line that reports how far the prompt has been read (None: the
    # provider sends none); ``prompt_read`` reads the rest of such a line.
    progress_comment: ClassVar[bytes | None]

    def prompt_read(self, report: bytes) -> PromptRead | None:
        """A progress comment's payload (after ``progress_comment``) as how far the prompt has
        been read; None when it says nothing usable."""
        ...

    def chat_url(self, base_url: str) -> str: ...

    def headers(self, key: Secret | None) -> dict[str, str]: ...

    def body(self, request: Mapping[str, Any], model_id: str) -> dict[str, Any]: ...

    def normalise(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Turn one upstream ``data:`` object into standard ``chat.completion.chunk`` dicts.

        Raises ProviderFailure when the object is an error.
        """
        ...

    def classify(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderFailure: ...

    async def probe(self, http: httpx.AsyncClient, provider: ProviderSettings,
                    key: Secret | None) -> Snapshot:
        """A cheap check: liveness/readiness for exo, a free authenticated call for the cloud."""
        ...

    @property
    def done_marker_required(self) -> bool:
        """Whether a stream must end with ``[DONE]`` (legacy exo never sent one)."""
        ...

    def parse_prices(self, listing: Any, now: float) -> PriceTable:
        """Its price list (``kind.price_list``) as a PriceTable; the model ids it lists."""
        ...
