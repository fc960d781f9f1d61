"""exo's state, read as router.exo.cluster's types.

exo (src/exo/shared/types/state.py at b5375f8) serves its state as camelCase JSON, each union
value wrapped in its class name (``{"RunnerReady": {...}}``), and each part on its own under
``GET /state/<part>``: ``instances`` (each with ``shardAssignments``: ``modelId``,
``runnerToShard``, ``nodeToRunner``), ``runners`` (``RunnerIdle`` → ``RunnerConnecting`` /
``RunnerConnected`` → ``RunnerLoading {layersLoaded, totalLayers}`` → ``RunnerLoaded`` →
``RunnerWarmingUp`` → ``RunnerReady`` / ``RunnerRunning``; ``RunnerFailed {errorMessage,
diagnostics}``; ``RunnerShuttingDown`` / ``RunnerShutdown``), ``downloads`` (per node:
``DownloadPending | DownloadOngoing {downloadProgress} | DownloadCompleted | DownloadFailed
{errorMessage}``), ``nodeMemory`` (``ramTotal`` / ``ramAvailable`` as ``{inBytes}``) and
``nodeIdentities`` (``friendlyName``; kept after a node drops out, while its memory is not).

Anything of another shape is skipped, never raised: a hostile or newer exo cannot break a probe.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from router.exo.cluster import (
    Card,
    Cluster,
    Download,
    Instance,
    Node,
    Phase,
    Runner,
    Transfer,
    short_id,
    short_model,
)
from router.numbers import number, whole

_PHASES = {"RunnerIdle": Phase.STARTING, "RunnerConnecting": Phase.CONNECTING,
           "RunnerConnected": Phase.CONNECTING, "RunnerLoading": Phase.LOADING,
           "RunnerLoaded": Phase.WARMING, "RunnerWarmingUp": Phase.WARMING,
           "RunnerReady": Phase.READY, "RunnerRunning": Phase.RUNNING,
           "RunnerShuttingDown": Phase.STOPPING, "RunnerShutdown": Phase.STOPPING,
           "RunnerFailed": Phase.FAILED}
_TRANSFERS = {"DownloadPending": Transfer.PENDING, "DownloadOngoing": Transfer.ONGOING,
              "DownloadCompleted": Transfer.COMPLETED, "DownloadFailed": Transfer.FAILED}
MiB = 1024 * 1024
MAX_BYTES = 1 << 60  # an exbibyte: no node's memory, no model's weights come near
MAX_MiB = MAX_BYTES // MiB
MAX_LAYERS = 100_000
MAX_SPEED = float(1 << 50)  # bytes per second (a petabyte)
MAX_ETA_MS = 1e15  # about 30,000 years (a download at 1 byte a second)


def unwrap(value: Any) -> tuple[str, dict[str, Any]]:
    """``{"RunnerReady": {...}}`` -> ``("RunnerReady", {...})``."""
    if isinstance(value, dict) and len(value) == 1:
        tag, body = next(iter(value.items()))
        if isinstance(body, dict):
            return str(tag), body
    return "", value if isinstance(value, dict) else {}


def find_model_id(value: Any, depth: int = 0) -> str | None:
    """The first ``modelId`` / ``model_id`` anywhere inside a nested structure."""
    if depth > 16:
        return None
    if isinstance(value, dict):
        for key in ("modelId", "model_id"):
            if isinstance(value.get(key), str):
                return str(value[key])
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            found = find_model_id(item, depth + 1)
            if found:
                return found
    return None


def in_bytes(value: Any) -> int:
    """exo's ``Memory`` (``{"inBytes": n}``) or a bare number, as bytes (0, unknown, when
    neither or out of range: ``Infinity``, ``1e400``, a 400-digit integer, a negative)."""
    if isinstance(value, dict):
        value = value.get("inBytes", value.get("in_bytes", 0))
    return whole(value, 0, MAX_BYTES, fraction=True) or 0


def _layers(value: Any) -> int:
    return whole(value, 0, MAX_LAYERS) or 0


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# -- the parts -----------------------------------------------------------------------------
def parse_cluster(parts: Mapping[str, Any], catalogue: Mapping[str, Card] | None = None) -> Cluster:
    """A Cluster from the parts fetched (``instances``, ``runners``, ``downloads``,
    ``nodeMemory``, ``nodeIdentities``); a part not fetched is left out."""
    names = {str(k): _friendly(v, str(k)) for k, v in _mapping(parts.get("nodeIdentities")).items()}
    nodes = tuple(_node(str(k), v, names) for k, v in _mapping(parts.get("nodeMemory")).items())
    downloads = tuple(parse_downloads(parts.get("downloads")))
    fetching = {(d.node, d.model) for d in downloads if d.state in (Transfer.ONGOING, Transfer.PENDING)}
    runners = _mapping(parts.get("runners"))
    instances = tuple(i for key, value in _mapping(parts.get("instances")).items()
                      if (i := _instance(str(key), value, runners, fetching)) is not None)
    present = {n.id for n in nodes}
    gone = {k: v for k, v in names.items() if k not in present} if present else {}
    return Cluster(nodes, instances, downloads, dict(catalogue or {}), gone)


def _friendly(identity: Any, node_id: str) -> str:
    name = _mapping(identity).get("friendlyName")
    return name[:80] if isinstance(name, str) and name and name != "Unknown" else short_id(node_id)


def _node(node_id: str, memory: Any, names: Mapping[str, str]) -> Node:
    memory = _mapping(memory)
    return Node(node_id, names.get(node_id) or short_id(node_id), in_bytes(memory.get("ramTotal")),
                in_bytes(memory.get("ramAvailable")))


def _instance(key: str, wrapped: Any, runners: Mapping[str, Any],
              fetching: set[tuple[str, str]]) -> Instance | None:
    _, body = unwrap(wrapped)
    assignments = _mapping(body.get("shardAssignments"))
    model = assignments.get("modelId")
    if not isinstance(model, str):
        return None
    node_of = {str(rid): str(node) for node, rid in _mapping(assignments.get("nodeToRunner")).items()}
    found = tuple(_runner(rid, node_of.get(rid, ""), runners.get(rid), model, fetching)
                  for rid in runner_ids(assignments))
    instance_id = body.get("instanceId")
    return Instance(instance_id if isinstance(instance_id, str) else key, model, found)


def runner_ids(assignments: Mapping[str, Any]) -> list[str]:
    mapping = assignments.get("runnerToShard")
    if isinstance(mapping, dict):
        return [str(rid) for rid in mapping]
    ids: list[str] = []
    for shard in assignments.get("shards") or []:  # an earlier shape
        if isinstance(shard, dict):
            ids.append(str(shard.get("runnerId", shard.get("runner_id"))))
        elif isinstance(shard, list) and len(shard) > 1:
            ids.append(str(shard[1]))
    return ids


def _runner(rid: str, node: str, wrapped: Any, model: str,
            fetching: set[tuple[str, str]]) -> Runner:
    tag, body = unwrap(wrapped)
    phase = _PHASES.get(tag, Phase.STARTING)
    if phase is Phase.STARTING and (node, model) in fetching:
        phase = Phase.DOWNLOADING
    if phase is Phase.LOADING:
        return Runner(rid, node, phase, _layers(body.get("layersLoaded")),
                      _layers(body.get("totalLayers")))
    if phase is Phase.FAILED:
        return Runner(rid, node, phase, error=_failure(body))
    return Runner(rid, node, phase)


def _failure(body: Mapping[str, Any]) -> str:
    parts = [body["errorMessage"]] if isinstance(body.get("errorMessage"), str) else []
    for diagnostic in body.get("diagnostics") or () if isinstance(body.get("diagnostics"), list) else ():
        message = unwrap(diagnostic)[1].get("message")
        if isinstance(message, str) and message not in parts:
            parts.append(message)
    return "; ".join(p.strip() for p in parts if p.strip())[:300] or "the runner failed"


def parse_downloads(downloads: Any) -> Iterable[Download]:
    for node, entries in _mapping(downloads).items():
        for entry in entries if isinstance(entries, list) else ():
            tag, body = unwrap(entry)
            state = _TRANSFERS.get(tag)
            model = find_model_id(body.get("shardMetadata", body))
            if state is not None and model:
                yield _download(str(body.get("nodeId") or node), model, state, body)


def _download(node: str, model: str, state: Transfer, body: Mapping[str, Any]) -> Download:
    if state is Transfer.ONGOING:
        progress = _mapping(body.get("downloadProgress"))
        done = in_bytes(progress.get("downloaded", progress.get("downloadedBytes")))
        total = in_bytes(progress.get("total", progress.get("totalBytes")))
        speed = number(progress.get("speed"), 0, MAX_SPEED) or 0.0
        eta = number(progress.get("etaMs"), 0, MAX_ETA_MS)
        return Download(node, model, state, done, total, speed, eta / 1000 if eta else None)
    if state is Transfer.FAILED:
        error = body.get("errorMessage")
        return Download(node, model, state, error=error[:300] if isinstance(error, str) else "")
    total = in_bytes(body.get("total"))
    done = total if state is Transfer.COMPLETED else in_bytes(body.get("downloaded"))
    return Download(node, model, state, done, total)


def parse_catalogue(listing: Any) -> dict[str, Card]:
    """``GET /v1/models``: id, ``base_model`` (its name) and ``storage_size_megabytes`` (MiB)."""
    data = listing.get("data", []) if isinstance(listing, dict) else listing
    if not isinstance(data, list):
        raise ValueError("model list is not a list")
    cards: dict[str, Card] = {}
    for model in data:
        if not isinstance(model, dict) or not isinstance(model.get("id"), str):
            continue
        model_id = model["id"]
        name = model.get("base_model") or model.get("name")
        cards[model_id] = Card(model_id, name[:80] if isinstance(name, str) and name else
                               short_model(model_id), _mebibytes(model.get("storage_size_megabytes")) * MiB)
    return cards


def _mebibytes(value: Any) -> int:
    return whole(value, 0, MAX_MiB, fraction=True) or 0


# -- readiness ------------------------------------------------------------------------------
def readiness(cluster: Cluster) -> tuple[set[str], dict[str, str], float | None]:
    """(ready model ids, busy model id -> reason, the lowest download percentage)."""
    busy: dict[str, str] = {}
    progress: float | None = None
    for download in cluster.downloads:
        if download.state is Transfer.ONGOING:
            busy[download.model] = f"downloading {short_model(download.model)} {download.percent:g}%"
            progress = download.percent if progress is None else min(progress, download.percent)
    ready = {i.model for i in cluster.instances if i.ready}
    for instance in cluster.instances:
        if instance.model not in ready and (instance.model not in busy or instance.failed):
            busy[instance.model] = _waiting_for(instance, cluster)
    for model in ready:
        busy.pop(model, None)
    return ready, busy, progress


def _waiting_for(instance: Instance, cluster: Cluster) -> str:
    name = short_model(instance.model)
    for runner in instance.runners:
        if runner.phase is Phase.FAILED:
            return f"{name} failed on {cluster.node_name(runner.node)}: {runner.error}"
    for runner in instance.runners:
        if runner.phase is Phase.LOADING and runner.total_layers:
            return f"loading {name} {runner.layers_loaded}/{runner.total_layers} layers"
    phase = instance.phase
    if phase is Phase.WARMING:
        return f"warming up {name}"
    return f"{'downloading' if phase is Phase.DOWNLOADING else 'starting'} {name}"
