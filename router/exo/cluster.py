"""A local cluster as the router sees it: its nodes (name, memory), the models loaded on them
with each runner's phase, the downloads in progress and the model catalogue.

Neutral types, filled by a local provider's adapter from its own wire format (exo:
router/providers/exo_state.py) and read by the companion (router/exo/companion.py), ``status``
and the tray. Nothing here knows a wire format or does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

GB = 1_000_000_000


class Phase(StrEnum):
    """Where one runner of a loaded model is, in the order it gets there."""

    STARTING = "starting"  # created, no status yet (or idle, its files already here)
    DOWNLOADING = "downloading"  # idle while its shard downloads
    CONNECTING = "connecting"  # joining the other nodes of a multi-node instance
    LOADING = "loading"  # layers into memory
    WARMING = "warming up"
    READY = "ready"
    RUNNING = "running"  # ready, answering now
    STOPPING = "stopping"
    FAILED = "failed"

    @property
    def serving(self) -> bool:
        return self in (Phase.READY, Phase.RUNNING)


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    name: str  # the machine's friendly name, else a short id
    ram_total: int  # bytes
    ram_available: int

    @property
    def ram_used(self) -> int:
        return max(0, self.ram_total - self.ram_available)


@dataclass(frozen=True, slots=True)
class Runner:
    """One shard of a loaded model, on one node."""

    id: str
    node: str
    phase: Phase
    layers_loaded: int = 0
    total_layers: int = 0
    error: str = ""  # why it failed


@dataclass(frozen=True, slots=True)
class Instance:
    """A model placed on the cluster: its runners, one per node it spans."""

    id: str
    model: str
    runners: tuple[Runner, ...]

    @property
    def ready(self) -> bool:
        return bool(self.runners) and all(r.phase.serving for r in self.runners)

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(r.node for r in self.runners)

    @property
    def failed(self) -> tuple[Runner, ...]:
        return tuple(r for r in self.runners if r.phase is Phase.FAILED)

    @property
    def phase(self) -> Phase:
        """The phase of its slowest runner (what it waits for)."""
        if not self.runners:
            return Phase.STARTING
        if self.failed:
            return Phase.FAILED
        order = list(Phase)
        return min((r.phase for r in self.runners), key=order.index)


class Transfer(StrEnum):
    PENDING = "pending"
    ONGOING = "ongoing"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Download:
    node: str
    model: str
    state: Transfer
    done_bytes: int = 0
    total_bytes: int = 0
    speed: float = 0.0  # bytes per second
    eta_s: float | None = None
    error: str = ""

    @property
    def percent(self) -> float:
        if self.total_bytes <= 0:
            return 100.0 if self.state is Transfer.COMPLETED else 0.0
        return round(min(100.0, 100.0 * self.done_bytes / self.total_bytes), 1)


@dataclass(frozen=True, slots=True)
class Card:
    """A model the cluster can run (its catalogue)."""

    id: str
    name: str  # "Llama 3.2 3B", else the id's last part
    size_bytes: int  # its weights: the memory a placement needs


@dataclass(frozen=True, slots=True)
class Cluster:
    """What one look at the cluster showed. ``gone``: nodes it knew that are no longer in it."""

    nodes: tuple[Node, ...] = ()
    instances: tuple[Instance, ...] = ()
    downloads: tuple[Download, ...] = ()
    catalogue: Mapping[str, Card] = field(default_factory=dict)
    gone: Mapping[str, str] = field(default_factory=dict)  # node id -> its name
    # indexes, so that a look per node or per model is not a walk through thousands of them
    _names: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)
    _of_model: dict[str, Instance] = field(default_factory=dict, init=False, repr=False,
                                           compare=False)

    def __post_init__(self) -> None:
        self._names.update((node.id, node.name) for node in self.nodes)
        for instance in self.instances:
            self._of_model.setdefault(instance.model, instance)  # the first, as exo lists them

    def node_name(self, node_id: str) -> str:
        return self._names.get(node_id) or self.gone.get(node_id) or short_id(node_id)

    def instance_of(self, model: str) -> Instance | None:
        return self._of_model.get(model)

    def models_on(self, node_id: str) -> tuple[str, ...]:
        return tuple(i.model for i in self.instances if node_id in i.nodes)

    def downloading(self, model: str) -> tuple[Download, ...]:
        return tuple(d for d in self.downloads if d.model == model
                     and d.state in (Transfer.ONGOING, Transfer.PENDING))

    @property
    def downloading_any(self) -> bool:
        return any(d.state in (Transfer.ONGOING, Transfer.PENDING) for d in self.downloads)

    def model_name(self, model: str) -> str:
        card = self.catalogue.get(model)
        return card.name if card is not None else short_model(model)


def short_id(node_id: str) -> str:
    return node_id[-8:] if len(node_id) > 12 else node_id


def short_model(model_id: str) -> str:
    return model_id.rsplit("/", 1)[-1].removesuffix("-4bit").removesuffix("-Instruct")


def gigabytes(size: float) -> str:
    return f"{size / GB:.1f} GB"


class Stage(StrEnum):
    """Where warming a model on the cluster is."""

    CHECKING = "checking"  # the placement's dry run
    OFFERED = "offered"  # it fits; waiting for the user's yes (warm_on_exo = "ask")
    PLACING = "placing"  # placed; waiting for the cluster to create it
    DOWNLOADING = "downloading"
    LOADING = "loading"
    WARMING = "warming up"
    READY = "ready"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        return self in (Stage.CHECKING, Stage.PLACING, Stage.DOWNLOADING, Stage.LOADING,
                        Stage.WARMING)


@dataclass(frozen=True, slots=True)
class Warming:
    """One model being warmed (or offered, or that could not be), as the displays show it."""

    provider: str
    model: str
    name: str
    stage: Stage
    detail: str = ""  # progress ("43% · 12.5 MB/s · 1 min left"), or why it failed
    progress: float | None = None  # 0-100 of the current stage


@dataclass(frozen=True, slots=True)
class Problem:
    """A model stuck on the cluster: which, on which node, and why. ``instance`` is None when
    the cluster has already removed it (a node dropped out, too many failed starts)."""

    provider: str
    model: str
    name: str
    node: str
    node_name: str
    reason: str
    instance: str | None = None
    kind: str = "failed"  # failed | stuck | timeouts | lost: what stays the same while it lasts

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.provider, self.model, self.node, self.kind
