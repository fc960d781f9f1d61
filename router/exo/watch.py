"""Watching a local cluster over time: nodes that drop out or come back, and models that are
stuck — a runner that failed, loading (or downloading, or warming up) that stopped moving, a
node gone with the model on it, requests that keep missing the first-token deadline — each
named by model, node and reason. Fed by every probe and every request's end; no I/O here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from router.config import ProviderConfig
from router.exo.cluster import Cluster, Instance, Phase, Problem, Runner, Transfer
from router.exo.events import ClusterProblem, NodeChanged
from router.exo.view import duration, failures

STUCK_AFTER_S = 120.0  # a runner whose progress has not moved for this long is stuck
TIMEOUTS_IN_A_ROW = 3  # requests that missed the first-token deadline, one after the other

Emit = Callable[[NodeChanged | ClusterProblem], None]


@dataclass
class _Mark:
    progress: tuple[object, ...]
    since: float


@dataclass
class ClusterWatch:
    """One local provider's cluster, probe after probe."""

    provider: ProviderConfig
    emit: Emit
    stuck_after_s: float = STUCK_AFTER_S
    last: Cluster | None = None
    problems: dict[tuple[str, str, str, str], Problem] = field(default_factory=dict)
    lost: dict[str, Problem] = field(default_factory=dict)  # model -> removed with a node
    timeouts: dict[str, int] = field(default_factory=dict)  # model -> first-token misses in a row
    _marks: dict[str, _Mark] = field(default_factory=dict)  # runner id -> its progress

    def see(self, cluster: Cluster, now: float) -> tuple[str, ...]:
        """Take in one probe's cluster; the ids of nodes that joined since the last one."""
        joined = self._nodes(cluster)
        for instance in cluster.instances:
            self.lost.pop(instance.model, None)
        self._update_problems(cluster, now)
        self.last = cluster
        return joined

    def _nodes(self, cluster: Cluster) -> tuple[str, ...]:
        before = self.last
        if before is None:
            return ()
        now_ids = {n.id for n in cluster.nodes}
        before_ids = {n.id for n in before.nodes}  # once a probe: 12,000 nodes are 12,000 looks
        left = [node for node in before.nodes if node.id not in now_ids]
        for node in left:
            self.emit(NodeChanged(self.provider.id, node.id, node.name, joined=False))
        if left:
            self._lose_models_on({node.id: node.name for node in left}, before, cluster)
        joined = tuple(n.id for n in cluster.nodes if n.id not in before_ids)
        for node in cluster.nodes:
            if node.id not in before_ids:
                self.emit(NodeChanged(self.provider.id, node.id, node.name, joined=True))
        return joined

    def _lose_models_on(self, left: dict[str, str], before: Cluster, cluster: Cluster) -> None:
        """The models exo unloaded because a node they were on left (``left``: id -> name)."""
        for instance in before.instances:
            on = [node for node in instance.nodes if node in left]
            if not on or cluster.instance_of(instance.model) is not None:
                continue
            node, name = on[-1], left[on[-1]]
            self.lost[instance.model] = Problem(
                self.provider.id, instance.model, before.model_name(instance.model), node, name,
                f"node {name} dropped out of the cluster; exo unloaded the model", kind="lost")

    # -- requests ---------------------------------------------------------------------------
    def missed_first_token(self, model: str, now: float) -> None:
        self.timeouts[model] = self.timeouts.get(model, 0) + 1
        if self.last is not None:
            self._update_problems(self.last, now)

    def answered(self, model: str, now: float) -> None:
        if self.timeouts.pop(model, None) is not None and self.last is not None:
            self._update_problems(self.last, now)

    def forget(self, model: str) -> None:
        """The user acted on the model (reload, unload): its problems are old news."""
        self.timeouts.pop(model, None)
        self.lost.pop(model, None)
        for key in [k for k in self.problems if k[1] == model]:
            del self.problems[key]

    # -- problems ---------------------------------------------------------------------------
    def current(self, cluster: Cluster, now: float) -> list[Problem]:
        found = failures(self.provider.id, cluster)
        failed = {(p.model, p.node) for p in found}
        fetched = _fetched(cluster)
        for instance in cluster.instances:
            for runner in instance.runners:
                reason = self._stuck(runner, fetched.get((runner.node, instance.model), 0), now)
                if reason and (instance.model, runner.node) not in failed:
                    found.append(self._problem(instance, runner.node, reason, cluster, "stuck"))
            misses = self.timeouts.get(instance.model, 0)
            if misses >= TIMEOUTS_IN_A_ROW and instance.runners:
                found.append(self._problem(instance, instance.runners[0].node,
                                           f"{misses} requests in a row got no first token within "
                                           f"{self.provider.first_token_timeout_s:g} s", cluster,
                                           "timeouts"))
        return [*found, *self.lost.values()]

    def _problem(self, instance: Instance, node: str, reason: str, cluster: Cluster,
                 kind: str) -> Problem:
        return Problem(self.provider.id, instance.model, cluster.model_name(instance.model), node,
                       cluster.node_name(node), reason, instance.id, kind)

    def _update_problems(self, cluster: Cluster, now: float) -> None:
        present = {r.id for i in cluster.instances for r in i.runners}
        self._marks = {rid: mark for rid, mark in self._marks.items() if rid in present}
        current = {p.key: p for p in self.current(cluster, now)}
        for key, problem in current.items():
            if key not in self.problems:
                self.emit(ClusterProblem(problem))
        for key, problem in self.problems.items():
            if key not in current:
                self.emit(ClusterProblem(problem, cleared=True))
        self.problems = current

    def _stuck(self, runner: Runner, fetched: int, now: float) -> str | None:
        """Why the runner is stuck: its progress (``fetched``: the bytes of its model downloaded
        on its node) has not moved for ``stuck_after_s``."""
        if runner.phase.serving or runner.phase in (Phase.FAILED, Phase.STOPPING):
            self._marks.pop(runner.id, None)
            return None
        progress = (runner.phase, runner.layers_loaded, fetched)
        mark = self._marks.get(runner.id)
        if mark is None or mark.progress != progress:
            self._marks[runner.id] = _Mark(progress, now)
            return None
        still = now - mark.since
        if still < self.stuck_after_s:
            return None
        if runner.phase is Phase.LOADING:
            return (f"loading stuck at {runner.layers_loaded}/{runner.total_layers} layers for "
                    f"{duration(still)}")
        if runner.phase is Phase.DOWNLOADING:
            return f"download not moving for {duration(still)}"
        return f"{runner.phase} for {duration(still)}"


def _fetched(cluster: Cluster) -> dict[tuple[str, str], int]:
    """(node, model) -> bytes downloaded so far, over the downloads in progress: one pass, not
    one per runner (an instance on thousands of nodes)."""
    fetched: dict[tuple[str, str], int] = {}
    for download in cluster.downloads:
        if download.state in (Transfer.ONGOING, Transfer.PENDING):
            key = (download.node, download.model)
            fetched[key] = fetched.get(key, 0) + download.done_bytes
    return fetched
