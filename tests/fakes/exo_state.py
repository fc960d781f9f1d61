"""Current exo's state as its API serves it (src/exo/shared/types/state.py at b5375f8): camelCase,
union values wrapped in their class name, ``Memory`` as ``{"inBytes": n}``; ``GET /state`` the
whole of it (tasks with every prompt in flight included), ``GET /state/<part>`` one key of it.

``exo_state`` builds one from the fake's simple fields (ready / loading / downloading); the
simulated cluster (tests/fakes/exo_cluster.py) builds its own from these same shapes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

GiB = 1024 ** 3
NODE_A = "12D3KooWFakeNodeA1111111111111111111111111111111"


def memory(value: int) -> dict[str, int]:
    return {"inBytes": int(value)}


def card(model_id: str, size: int = 2 * GiB, layers: int = 28, name: str = "") -> dict[str, Any]:
    """A ModelCard (src/exo/shared/models/model_cards.py), as state and CreateInstanceResponse
    serialise it."""
    return {"modelId": model_id, "storageSize": memory(size), "nLayers": layers, "hiddenSize": 3072,
            "supportsTensor": True, "numKeyValueHeads": 8, "tasks": ["TextGeneration"],
            "components": None, "family": "llama", "quantization": "4bit",
            "baseModel": name or model_id.rsplit("/", 1)[-1], "capabilities": ["text"],
            "backends": ["MlxMetal", "MlxCuda", "MlxCpu"], "reasoningDialect": "none",
            "contextLength": 131072, "usesCfg": False, "trustRemoteCode": True, "isCustom": False,
            "vision": None, "samplingDefaults": {"temperature": 0.6, "topP": 0.9, "topK": None,
                                                 "minP": None, "repetitionPenalty": None,
                                                 "presencePenalty": None, "frequencyPenalty": None,
                                                 "thinking": None, "nonThinking": None}}


def shard(model_card: dict[str, Any], rank: int, world: int, start: int, end: int) -> dict[str, Any]:
    return {"PipelineShardMetadata": {
        "modelCard": model_card, "deviceRank": rank, "worldSize": world, "immediateException": False,
        "shouldTimeout": None, "startLayer": start, "endLayer": end,
        "nLayers": model_card["nLayers"]}}


def instance(instance_id: str, model_card: dict[str, Any], runners: dict[str, str]) -> dict[str, Any]:
    """An MlxRingInstance; ``runners``: node id -> runner id (layers split evenly)."""
    layers, world = model_card["nLayers"], len(runners)
    to_shard, start = {}, 0
    for rank, rid in enumerate(runners.values()):
        end = layers if rank == world - 1 else start + layers // world
        to_shard[rid] = shard(model_card, rank, world, start, end)
        start = end
    return {"MlxRingInstance": {
        "instanceId": instance_id,
        "shardAssignments": {"modelId": model_card["modelId"], "runnerToShard": to_shard,
                             "nodeToRunner": dict(runners)},
        "hostsByNode": {node: [{"ip": f"192.168.1.{10 + i}", "port": 52416}]
                        for i, node in enumerate(runners)},
        "ephemeralPort": 52416}}


def node_memory(total: int, available: int) -> dict[str, Any]:
    return {"ramTotal": memory(total), "ramAvailable": memory(available),
            "swapTotal": memory(4 * GiB), "swapAvailable": memory(3 * GiB)}


def identity(name: str) -> dict[str, str]:
    return {"modelId": "Mac16,10", "chipId": "Apple M4", "friendlyName": name, "osVersion": "15.5",
            "osBuildVersion": "24F74"}


def downloading(node: str, shard_json: dict[str, Any], done: int, total: int,
                speed: float) -> dict[str, Any]:
    eta = int((total - done) / speed * 1000) if speed > 0 else 0
    return {"DownloadOngoing": {"nodeId": node, "shardMetadata": shard_json, "modelDirectory": "",
                                "downloadProgress": {
                                    "total": memory(total), "downloaded": memory(done),
                                    "downloadedThisSession": memory(done), "completedFiles": 0,
                                    "totalFiles": 3, "speed": speed, "etaMs": eta, "files": {}}}}


def downloaded(node: str, shard_json: dict[str, Any], total: int) -> dict[str, Any]:
    return {"DownloadCompleted": {"nodeId": node, "shardMetadata": shard_json,
                                  "modelDirectory": "/Users/me/.exo/models/x", "total": memory(total),
                                  "readOnly": False}}


def text_generation_task(instance_id: str, model: str, prompt_chars: int) -> dict[str, Any]:
    """An in-flight chat request as exo keeps it in its state: the whole conversation."""
    turn = ("Summarise the quarterly figures and list every risk the board raised. " * 40)
    messages = []
    while sum(len(m["content"]) for m in messages) < prompt_chars:
        messages.append({"role": "user" if len(messages) % 2 == 0 else "assistant", "content": turn})
    return {"TextGeneration": {
        "taskId": str(uuid.uuid4()), "taskStatus": "Running", "instanceId": instance_id,
        "commandId": str(uuid.uuid4()),
        "taskParams": {"model": model, "input": [{"role": "user", "content": messages[-1]["content"]}],
                       "instructions": None, "max_output_tokens": None, "temperature": 0.6,
                       "top_p": 0.9, "stream": True, "tools": None, "bench": False,
                       "use_prefix_cache": False, "top_k": None, "stop": None, "seed": None,
                       "chat_template_messages": messages, "reasoning_effort": None,
                       "enable_thinking": None, "logprobs": False, "top_logprobs": None,
                       "min_p": None, "repetition_penalty": None, "repetition_context_size": None,
                       "presence_penalty": None, "frequency_penalty": None, "images": [],
                       "image_hashes": {}},
        "errorType": None, "errorMessage": None}}


def last_seen(nodes: list[str]) -> dict[str, str]:
    now = datetime.now(UTC).isoformat()
    return dict.fromkeys(nodes, now)


def topology(nodes: list[str]) -> dict[str, Any]:
    return {"nodes": list(nodes), "connections": {
        a: {b: [{"sinkMultiaddr": {"address": f"/ip4/192.168.1.{10 + j}/tcp/52415"}}]
            for j, b in enumerate(nodes) if b != a} for a in nodes}}


def part(state: dict[str, Any], path: str) -> tuple[int, Any]:
    """``GET /state/<path>``: one key of the state by its camelCase name (exo walks the path
    through ``state.model_dump(by_alias=True)``), else 404."""
    value: Any = state
    for step in (s for s in path.split("/") if s):
        if isinstance(value, dict) and step in value:
            value = value[step]
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return 404, {"error": {"message": f"unable to find path '{path.replace('/', '.')}' in "
                                              "state json", "type": "Not Found", "param": None,
                                   "code": 404}}
    return 200, value


def empty_state() -> dict[str, Any]:
    return {"instances": {}, "runners": {}, "downloads": {}, "tasks": {}, "lastSeen": {},
            "topology": {"nodes": [], "connections": {}}, "lastEventAppliedIdx": 0,
            "nodeIdentities": {}, "nodeMemory": {}, "nodeDisk": {}, "nodeSystem": {},
            "nodeNetwork": {}, "nodeThunderbolt": {}, "nodeThunderboltBridge": {},
            "nodeRdmaCtl": {}, "nodeBackends": {}, "thunderboltBridgeCycles": [],
            "instanceLinks": {}, "prefillServerPorts": {}, "customModelCards": {}}


def exo_state(ready: set[str], loading: dict[str, tuple[int, int]],
              downloading_models: dict[str, float]) -> dict[str, Any]:
    """One node; instances with their runners' status for the ready and loading models, and
    downloads."""
    state = empty_state()
    for i, model in enumerate(sorted(ready | set(loading) | set(downloading_models))):
        rid, iid = f"runner-{i}", f"inst-{i}"
        if model in ready:
            status: dict[str, Any] = {"RunnerReady": {"prefillServerPort": None}}
        elif model in loading:
            done, total = loading[model]
            status = {"RunnerLoading": {"layersLoaded": done, "totalLayers": total}}
        else:
            status = {"RunnerIdle": {}}
        state["runners"][rid] = status
        state["instances"][iid] = instance(iid, card(model), {NODE_A: rid})
    state["downloads"] = {NODE_A: [
        downloading(NODE_A, shard(card(model), 0, 1, 0, 28), int(pct * 10), 1000, 1e7)
        for model, pct in downloading_models.items()]}
    state["nodeMemory"] = {NODE_A: node_memory(64 * GiB, 40 * GiB)}
    state["nodeIdentities"] = {NODE_A: identity("Mac Studio")}
    state["lastSeen"] = last_seen([NODE_A])
    state["topology"] = topology([NODE_A])
    return state
