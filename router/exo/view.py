"""A local cluster in words and in JSON, for ``status`` (text and ``--json``'s ``cluster``) and
the tray's submenu: each node's name, memory used/total and the models it holds, downloads with
speed and time left, what is warming, and what is stuck (which model, which node, why)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from router.exo.cluster import (
    Cluster,
    Download,
    Instance,
    Node,
    Phase,
    Problem,
    Stage,
    Transfer,
    Warming,
    gigabytes,
)

MB = 1_000_000


def failures(provider: str, cluster: Cluster) -> list[Problem]:
    """What one look shows is wrong: runners that failed (exo retries them, then gives up)."""
    return [Problem(provider, i.model, cluster.model_name(i.model), r.node, cluster.node_name(r.node),
                    f"runner failed: {r.error}", i.id) for i in cluster.instances for r in i.failed]


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def download_progress(downloads: Sequence[Download]) -> str:
    """"43% · 12.5 MB/s · 2 min left" over a model's shards (one per node)."""
    done = sum(d.done_bytes for d in downloads)
    total = sum(d.total_bytes for d in downloads)
    text = f"{100 * done / total:.0f}%" if total else "starting"
    speed = sum(d.speed for d in downloads)
    if speed > 0:
        text += f" · {speed / MB:.1f} MB/s"
    etas = [d.eta_s for d in downloads if d.eta_s is not None]
    if etas:
        text += f" · {duration(max(etas))} left"
    return text


def instance_state(instance: Instance, cluster: Cluster) -> str:
    """"ready", "downloading 43% · ...", "loading 12/28 layers", "failed on Mac mini: ..."."""
    phase = instance.phase
    if phase is Phase.FAILED:
        runner = instance.failed[0]
        return f"failed on {cluster.node_name(runner.node)}: {runner.error}"
    if phase is Phase.DOWNLOADING:
        return "downloading " + download_progress(cluster.downloading(instance.model))
    if phase is Phase.LOADING:
        loaded = sum(r.layers_loaded for r in instance.runners)
        total = sum(r.total_layers for r in instance.runners)
        return f"loading {loaded}/{total} layers" if total else "loading"
    return "ready" if instance.ready else str(phase)


def node_line(node: Node, cluster: Cluster) -> str:
    held = [f"{cluster.model_name(i.model)} ({instance_state(i, cluster)})" for i in cluster.instances
            if node.id in i.nodes]
    memory = (f"{node.ram_used / 1e9:.1f}/{gigabytes(node.ram_total)} RAM" if node.ram_total
              else "RAM unknown")  # exo sent none, or a number that cannot be true
    return f"{node.name} · {memory}" + (f" · {', '.join(held)}" if held else " · no model")


def download_line(download: Download, cluster: Cluster) -> str:
    where = f"{cluster.model_name(download.model)} on {cluster.node_name(download.node)}"
    if download.state is Transfer.FAILED:
        return f"{where}: download failed: {download.error}"
    return f"{where}: {download_progress([download])}"


def warming_line(warming: Warming) -> str:
    if warming.stage is Stage.OFFERED:
        return f"{warming.name}: can be loaded on exo ({warming.detail})"
    if warming.stage is Stage.FAILED:
        return f"{warming.name}: cannot be loaded on exo — {warming.detail}"
    return f"{warming.name}: {warming.stage}" + (f" {warming.detail}" if warming.detail else "")


def problem_line(problem: Problem) -> str:
    return f"{problem.name} on {problem.node_name}: {problem.reason}"


def cluster_lines(cluster: Cluster, warmings: Iterable[Warming] = (),
                  problems: Iterable[Problem] = ()) -> list[str]:
    lines = [node_line(n, cluster) for n in cluster.nodes]
    lines += [f"{name} · offline (dropped out)" for name in cluster.gone.values()]
    lines += [download_line(d, cluster) for d in cluster.downloads
              if d.state in (Transfer.ONGOING, Transfer.PENDING, Transfer.FAILED)]
    lines += [warming_line(w) for w in warmings]
    lines += [problem_line(p) for p in problems]
    return lines


def cluster_json(provider: str, cluster: Cluster, warmings: Iterable[Warming] = (),
                 problems: Iterable[Problem] = ()) -> dict[str, Any]:
    """``status --json``'s ``cluster``: bytes, seconds and percentages, no formatted numbers."""
    return {
        "provider": provider,
        "nodes": [{"id": n.id, "name": n.name, "ram_used_bytes": n.ram_used,
                   "ram_total_bytes": n.ram_total, "models": list(cluster.models_on(n.id))}
                  for n in cluster.nodes],
        "gone": [{"id": node_id, "name": name} for node_id, name in cluster.gone.items()],
        "models": [{"model": i.model, "name": cluster.model_name(i.model), "instance": i.id,
                    "nodes": list(i.nodes), "phase": str(i.phase), "ready": i.ready,
                    "state": instance_state(i, cluster)} for i in cluster.instances],
        "downloads": [{"node": d.node, "node_name": cluster.node_name(d.node), "model": d.model,
                       "state": str(d.state), "percent": d.percent, "done_bytes": d.done_bytes,
                       "total_bytes": d.total_bytes, "speed_bytes_per_s": round(d.speed),
                       "eta_s": None if d.eta_s is None else round(d.eta_s, 1), "error": d.error}
                      for d in cluster.downloads if d.state is not Transfer.COMPLETED],
        "warming": [{"model": w.model, "name": w.name, "stage": str(w.stage), "detail": w.detail,
                     "progress": w.progress} for w in warmings],
        "problems": [{"model": p.model, "name": p.name, "node": p.node, "node_name": p.node_name,
                      "reason": p.reason, "instance": p.instance} for p in problems],
    }
