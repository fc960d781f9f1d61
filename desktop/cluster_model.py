"""What the tray shows of the local exo cluster (no Qt here): a submenu with each node (memory
used/total, the models it holds), the downloads (speed, time left), what is warming, and what is
stuck, with the actions it offers — "Load … on exo" for a model offered (``warm_on_exo =
"ask"``), "Reload … on exo" and "Unload …" for a stuck one; the offers and reloads also sit in
the main menu, where they are seen."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from router import (
    Cluster,
    Problem,
    ProviderConfig,
    Stage,
    Warming,
    cluster_lines,
    problem_line,
    warming_line,
)


class Act(StrEnum):
    WARM = "warm"  # load it on the cluster (the user's yes to an offer)
    DECLINE = "decline"  # no to an offer: not offered again in this run
    RELOAD = "reload"
    UNLOAD = "unload"


@dataclass(frozen=True, slots=True)
class Item:
    text: str
    act: Act | None = None  # None: a line to read, not to click
    model: str = ""


@dataclass(frozen=True, slots=True)
class ClusterMenuView:
    title: str  # the submenu's own line
    items: tuple[Item, ...]  # in the submenu
    main: tuple[Item, ...]  # in the main menu too: offers and reloads


def cluster_menu(found: tuple[ProviderConfig, Cluster] | None, warmings: Sequence[Warming] = (),
                 problems: Sequence[Problem] = ()) -> ClusterMenuView | None:
    """None when there is no local cluster to show (none configured, or never reached)."""
    if found is None:
        return None
    provider, cluster = found
    title = f"{provider.name} cluster: {_count(len(cluster.nodes), 'node')}, " \
            f"{_count(sum(1 for i in cluster.instances if i.ready), 'model')} ready"
    items = [Item(line) for line in cluster_lines(cluster)]
    main: list[Item] = []
    for warming in warmings:
        if warming.stage is Stage.OFFERED:
            offer = Item(f"Load {warming.name} on exo ({warming.detail})", Act.WARM, warming.model)
            items += [offer, Item(f"Don't load {warming.name}", Act.DECLINE, warming.model)]
            main.append(offer)
        else:
            items.append(Item(warming_line(warming)))
    for problem in problems:
        reload = Item(f"Reload {problem.name} on exo", Act.RELOAD, problem.model)
        items += [Item(f"⚠ {problem_line(problem)}"), reload]
        if problem.instance is not None:
            items.append(Item(f"Unload {problem.name} (free its memory)", Act.UNLOAD, problem.model))
        main.append(reload)
    return ClusterMenuView(title, tuple(items), tuple(dict.fromkeys(main)))


def warming_note_line(warmings: Sequence[Warming]) -> str | None:
    """The tooltip's part for a model warming now, e.g. "warming Qwen3 8B: loading 12/36 layers"."""
    for warming in warmings:
        if warming.stage.active:
            return f"warming {warming.name}: {warming.stage}" + \
                (f" {warming.detail}" if warming.detail else "")
    return None


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"
