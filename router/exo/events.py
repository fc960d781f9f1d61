"""What the exo companion (router/exo/companion.py) tells listeners: warming, nodes, problems.
Typed values, like router/events.py's; the desktop turns them into notifications."""

from __future__ import annotations

from dataclasses import dataclass

from router.exo.cluster import Problem, Stage


@dataclass(frozen=True, slots=True)
class ModelWarming:
    """Warming ``model`` moved on: offered (ask first), placed, ready (back to free), failed."""

    provider: str
    model: str
    name: str  # "Llama 3.2 3B"
    stage: Stage
    detail: str = ""  # what it needs and where (offered), why not (failed)


@dataclass(frozen=True, slots=True)
class NodeChanged:
    """A node of a local cluster dropped out (``joined`` False) or came back."""

    provider: str
    node: str
    name: str
    joined: bool


@dataclass(frozen=True, slots=True)
class ClusterProblem:
    """A model got stuck on the cluster (``problem``), or is fine again (``cleared``)."""

    problem: Problem
    cleared: bool = False
