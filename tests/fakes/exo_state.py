"""Current exo's ``GET /state``: camelCase, union values wrapped in their class name."""

from __future__ import annotations

from typing import Any


def exo_state(ready: set[str], loading: dict[str, tuple[int, int]],
              downloading: dict[str, float]) -> dict[str, Any]:
    """Instances with their runners' status for the ready and loading models, and downloads."""
    instances: dict[str, Any] = {}
    runners: dict[str, Any] = {}
    for i, model in enumerate(sorted(ready | set(loading) | set(downloading))):
        rid = f"runner-{i}"
        if model in ready:
            status: dict[str, Any] = {"RunnerReady": {}}
        elif model in loading:
            done, total = loading[model]
            status = {"RunnerLoading": {"layersLoaded": done, "totalLayers": total}}
        else:
            status = {"RunnerIdle": {}}
        runners[rid] = status
        instances[f"inst-{i}"] = {"MlxRingInstance": {
            "instanceId": f"inst-{i}", "hosts": [],
            "shardAssignments": {"modelId": model, "runnerToShard": {rid: {}},
                                 "nodeToRunner": {"node-a": rid}}}}
    downloads = {"node-a": [
        {"DownloadOngoing": {"nodeId": "node-a",
                             "shardMetadata": {"PipelineShardMetadata": {
                                 "modelCard": {"modelId": model}, "startLayer": 0}},
                             "downloadProgress": {
                                 "total": {"inBytes": 1000}, "downloaded": {"inBytes": int(pct * 10)},
                                 "speed": 1.0, "etaMs": 1000}}}
        for model, pct in downloading.items()]}
    return {"instances": instances, "runners": runners, "downloads": downloads,
            "topology": {}, "lastSeen": {}}

