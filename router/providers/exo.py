"""exo, the local cluster: two API generations, told apart by probing.

Current exo (v1.x): liveness ``GET /node_id``; readiness and downloads from ``GET /state``
(camelCase, union values wrapped in their class name); catalogue from ``GET /v1/models``.
Legacy exo: ``GET /healthcheck``; short model ids from ``/v1/models``; downloads from
``/v1/download/progress``; streams without ``[DONE]`` or usage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from router.errors import Outcome
from router.providers.base import CostSource, HealthState, Kind, Role, Snapshot
from router.providers.openai_compat import OpenAICompatible

if TYPE_CHECKING:
    import httpx

    from router.config import ProviderConfig
    from router.keys import Secret

_READY = {"RunnerReady", "RunnerRunning"}
_PROBE_S = 5.0


class Exo(OpenAICompatible):
    # A local cluster answers a connect at once or not at all; exo's own 32K default cap on an
    # answer, and runners that take their time to load, get the longer first-token deadline.
    kind: ClassVar[Kind] = Kind(
        "exo", Role.LOCAL, takes_key=False, needs_key=False, bills=False,
        default_base_url="http://localhost:52415", deadlines=(1.0, 30.0, 30.0),
        several_nodes=True, cost=CostSource.FREE)
    done_marker_required = False  # legacy exo never sends [DONE]; a finish_reason must do

    def chat_url(self, base_url: str) -> str:
        return f"{base_url}/v1/chat/completions"

    def outcome_for(self, status: int, message: str) -> Outcome:
        if status == 408:  # legacy: "Response generation timed out"
            return Outcome.TIMEOUT
        return super().outcome_for(status, message)

    async def probe(self, http: httpx.AsyncClient, provider: ProviderConfig,
                    key: Secret | None) -> Snapshot:
        """Try each node in turn; the first that answers is the one requests go to."""
        from router.http_client import HTTP_OR_JSON_ERRORS, http_error_detail  # loaded by now

        start = asyncio.get_running_loop().time()
        details: list[str] = []
        for node in provider.base_urls:
            try:
                snapshot = await _probe_node(http, node, provider)
            except (*HTTP_OR_JSON_ERRORS, *_SHAPE_ERRORS) as exc:
                details.append(f"{node}: {_probe_error(exc, http_error_detail)}")
                continue
            if snapshot is not None:
                return snapshot
            details.append(f"{node}: not an exo API")
        latency = (asyncio.get_running_loop().time() - start) * 1000
        short = details[0].split(": ", 1)[1] if len(details) == 1 else "; ".join(details)
        return Snapshot(HealthState.DOWN, short, latency)


# An answer of an unexpected shape (a list where an object belongs, ...).
_SHAPE_ERRORS: tuple[type[BaseException], ...] = (TypeError, AttributeError, KeyError)


def _probe_error(exc: BaseException, detail: Callable[[BaseException], str]) -> str:
    from router.body import BodyError

    if isinstance(exc, BodyError):
        return str(exc)
    if isinstance(exc, ValueError | TypeError | AttributeError | KeyError):
        return "not an exo API"
    return detail(exc)


async def _probe_node(http: httpx.AsyncClient, node: str, provider: ProviderConfig) -> Snapshot | None:
    from router.http_client import fetch  # loaded by now

    start = asyncio.get_running_loop().time()
    live = await fetch(http, f"{node}/node_id", provider, seconds=_PROBE_S)
    if live.status_code == 200:
        models, state = await asyncio.gather(fetch(http, f"{node}/v1/models", provider, seconds=_PROBE_S),
                                             fetch(http, f"{node}/state", provider, seconds=_PROBE_S))
        catalogue = _model_ids(models.json())
        ready, busy, progress = current_readiness(_object(state.json()) if state.status_code == 200 else {})
        return _snapshot(node, "exo", catalogue, ready, busy, progress, _ms(start))
    legacy = await fetch(http, f"{node}/healthcheck", provider, seconds=_PROBE_S)
    if legacy.status_code != 200:
        return None
    models, downloads = await asyncio.gather(
        fetch(http, f"{node}/v1/models", provider, seconds=_PROBE_S),
        fetch(http, f"{node}/v1/download/progress", provider, seconds=_PROBE_S))
    listing = _object(models.json())
    catalogue = _model_ids(listing)
    busy, progress = legacy_downloads(downloads.json() if downloads.status_code == 200 else {})
    not_ready = {m["id"] for m in listing.get("data", []) if isinstance(m, dict)
                 and m.get("ready") is False}
    ready = set(catalogue - set(busy) - not_ready)
    return _snapshot(node, "legacy exo", catalogue, ready, busy, progress, _ms(start))


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def _ms(start: float) -> float:
    return (asyncio.get_running_loop().time() - start) * 1000


def _snapshot(node: str, generation: str, catalogue: frozenset[str], ready: frozenset[str] | set[str],
              busy: Mapping[str, str], progress: float | None, latency: float) -> Snapshot:
    if ready:
        state, detail = HealthState.HEALTHY, f"{generation} at {node} · {len(ready)} model(s) ready"
        if busy:
            detail += " · " + next(iter(busy.values()))
    elif busy:
        state, detail = HealthState.BUSY, next(iter(busy.values()))
    else:
        state, detail = HealthState.DEGRADED, f"{generation} at {node} · no model loaded"
    return Snapshot(state, detail, latency, node=node, models=catalogue,
                    ready=frozenset(ready), busy=dict(busy), download_progress=progress)


def _model_ids(listing: Any) -> frozenset[str]:
    data = listing.get("data", []) if isinstance(listing, dict) else listing
    if not isinstance(data, list):
        raise ValueError("model list is not a list")
    return frozenset(str(m["id"]) for m in data if isinstance(m, dict) and "id" in m)


def unwrap(value: Any) -> tuple[str, dict[str, Any]]:
    """``{"RunnerReady": {...}}`` -> ``("RunnerReady", {...})``."""
    if isinstance(value, dict) and len(value) == 1:
        tag, body = next(iter(value.items()))
        if isinstance(body, dict):
            return str(tag), body
    return "", value if isinstance(value, dict) else {}


def find_model_id(value: Any) -> str | None:
    """The first ``modelId`` / ``model_id`` anywhere inside a nested structure."""
    if isinstance(value, dict):
        for key in ("modelId", "model_id"):
            if isinstance(value.get(key), str):
                return str(value[key])
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            found = find_model_id(item)
            if found:
                return found
    return None


def _bytes(value: Any) -> float:
    if isinstance(value, dict):
        value = value.get("inBytes", value.get("in_bytes", 0))
    return float(value) if isinstance(value, int | float) else 0.0


def percent(progress: Mapping[str, Any]) -> float:
    total = _bytes(progress.get("total", progress.get("totalBytes", progress.get("total_bytes"))))
    done = _bytes(progress.get("downloaded",
                               progress.get("downloadedBytes", progress.get("downloaded_bytes"))))
    return round(min(100.0, 100.0 * done / total), 1) if total > 0 else 0.0


def short_name(model_id: str) -> str:
    return model_id.rsplit("/", 1)[-1].removesuffix("-4bit").removesuffix("-Instruct")


def current_readiness(state: Mapping[str, Any]) -> tuple[set[str], dict[str, str], float | None]:
    """(ready model ids, busy model id -> reason, download percentage) from ``GET /state``."""
    busy: dict[str, str] = {}
    progress: float | None = None
    for entries in (state.get("downloads") or {}).values():
        for entry in entries if isinstance(entries, list) else []:
            tag, body = unwrap(entry)
            model = find_model_id(body.get("shardMetadata", body))
            if tag == "DownloadOngoing" and model:
                pct = percent(body.get("downloadProgress") or {})
                busy[model] = f"downloading {short_name(model)} {pct:g}%"
                progress = pct if progress is None else min(progress, pct)
    runners = state.get("runners") or {}
    ready: set[str] = set()
    for wrapped in (state.get("instances") or {}).values():
        _, instance = unwrap(wrapped)
        assignments = instance.get("shardAssignments") or {}
        model = assignments.get("modelId")
        if not isinstance(model, str):
            continue
        statuses = [unwrap(runners.get(rid))[0] for rid in _runner_ids(assignments)]
        if statuses and all(s in _READY for s in statuses):
            ready.add(model)
        elif model not in busy:
            busy[model] = _loading_reason(model, runners, assignments)
    for model in ready:
        busy.pop(model, None)
    return ready, busy, progress


def _runner_ids(assignments: Mapping[str, Any]) -> list[str]:
    mapping = assignments.get("runnerToShard")
    if isinstance(mapping, dict):
        return list(mapping)
    ids: list[str] = []
    for shard in assignments.get("shards") or []:
        if isinstance(shard, dict):
            ids.append(str(shard.get("runnerId", shard.get("runner_id"))))
        elif isinstance(shard, list) and len(shard) > 1:
            ids.append(str(shard[1]))
    return ids


def _loading_reason(model: str, runners: Mapping[str, Any], assignments: Mapping[str, Any]) -> str:
    for rid in _runner_ids(assignments):
        tag, body = unwrap(runners.get(rid))
        if tag == "RunnerLoading" and body.get("totalLayers"):
            return f"loading {short_name(model)} {body.get('layersLoaded', 0)}/{body['totalLayers']} layers"
        if tag == "RunnerFailed":
            return f"{short_name(model)} failed to load"
    return f"starting {short_name(model)}"


def legacy_downloads(progress: Any) -> tuple[dict[str, str], float | None]:
    busy: dict[str, str] = {}
    lowest: float | None = None
    for event in (progress.values() if isinstance(progress, dict) else []):
        if not isinstance(event, dict) or event.get("status") != "in_progress":
            continue
        model = find_model_id(event.get("shard", event)) or str(event.get("repo_id", ""))
        pct = percent(event)
        busy[model] = f"downloading {short_name(model)} {pct:g}%"
        lowest = pct if lowest is None else min(lowest, pct)
    return busy, lowest
