"""exo, the local cluster: two API generations, told apart by probing.

Current exo (read at b5375f8): liveness ``GET /node_id``; readiness from ``GET /state/instances``
and ``GET /state/runners``, node memory from ``/state/nodeMemory``, ``/state/downloads`` only
while something downloads, ``/state/nodeIdentities`` when a node is new, the catalogue
(``/v1/models``) every ten minutes; never the whole ``/state`` (hundreds of KB, with every prompt
in flight) nor ``/events`` — except on an exo older than v1.0.70, which has no ``/state/<part>``.
Its control API (``ExoCluster``): placement dry run, place, unload, cancel a generation.
Legacy exo: ``GET /healthcheck``; short model ids from ``/v1/models``; downloads from
``/v1/download/progress``; streams without ``[DONE]`` or usage.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from router.errors import Outcome
from router.exo.cluster import Card, Cluster, Phase
from router.providers.base import (
    Call,
    ClusterApi,
    CostSource,
    HealthState,
    Kind,
    PromptRead,
    Role,
    Snapshot,
    Verdict,
)
from router.providers.exo_state import (
    find_model_id,
    in_bytes,
    parse_catalogue,
    parse_cluster,
    readiness,
    unwrap,
)
from router.providers.openai_compat import OpenAICompatible, error_message

if TYPE_CHECKING:
    import httpx

    from router.http.client import Fetched
    from router.keys import Secret
    from router.provider_settings import ProviderSettings

_PROBE_S = 5.0
CATALOGUE_EVERY_S = 600.0  # model cards change when a user adds one: not worth a probe's bytes
PARTS_RECHECK_S = 600.0  # an exo without /state/<part> is asked again this often (an upgrade)
_EVERY_PROBE = ("instances", "runners", "nodeMemory")
_WAITING = (Phase.STARTING, Phase.DOWNLOADING)  # an idle runner may be waiting for its files


class ExoCluster:
    """exo's control requests (src/exo/api/main.py): ``GET /instance/placement`` answers the
    instance it would create, or 400 with the reason; ``POST /place_instance`` answers 200 at
    once and fails later, silently, when the model cannot fit (hence the dry run first);
    ``DELETE /instance/{id}``; ``POST /v1/cancel/{id}`` with the completion's ``id``."""

    def placement(self, node: str, model: str) -> Call:
        return Call("GET", f"{node}/instance/placement?model_id={quote(model, safe='')}")

    def place(self, node: str, model: str) -> Call:
        return Call("POST", f"{node}/place_instance", {"model_id": model, "sharding": "Pipeline",
                                                        "instance_meta": "MlxRing", "min_nodes": 1})

    def unload(self, node: str, instance: str) -> Call:
        return Call("DELETE", f"{node}/instance/{quote(instance, safe='')}")

    def cancel(self, node: str, completion_id: str) -> Call | None:
        command = completion_id.removeprefix("chatcmpl-")  # exo's id is its command's (a UUID)
        return Call("POST", f"{node}/v1/cancel/{quote(command, safe='')}") if command else None

    def verdict(self, status: int, body: bytes) -> Verdict:
        if status == 200:
            try:
                _, instance = unwrap(json.loads(body))
            except (ValueError, RecursionError):
                return Verdict(False, "exo's placement answer is not JSON")
            assignments = instance.get("shardAssignments")
            nodes = assignments.get("nodeToRunner") if isinstance(assignments, dict) else None
            return Verdict(True, "fits", tuple(str(n) for n in nodes) if isinstance(nodes, dict) else ())
        return Verdict(False, error_message(body) or f"HTTP {status}")


@dataclass
class _Memo:
    """What one node's earlier probes learnt that need not be fetched every time."""

    catalogue: dict[str, Card] = field(default_factory=dict)
    catalogue_at: float = float("-inf")
    identities: dict[str, Any] = field(default_factory=dict)
    parts_missing_at: float | None = None  # when /state/instances was a 404 (exo before v1.0.70)
    last: Cluster | None = None

    def parts_served(self, now: float) -> bool:
        """Whether to ask for the parts: yes, unless this exo had none (404) lately (it may be
        upgraded: asked again every PARTS_RECHECK_S)."""
        missing = self.parts_missing_at
        return missing is None or now - missing > PARTS_RECHECK_S

    def parts(self) -> list[str]:
        wanted = list(_EVERY_PROBE)
        last = self.last
        if last is None or last.downloading_any or any(
                r.phase in _WAITING for i in last.instances for r in i.runners):
            wanted.append("downloads")
        if last is None:
            wanted.append("nodeIdentities")
        return wanted


class Exo(OpenAICompatible):
    # A local cluster answers a connect at once or not at all; exo's own 32K default cap on an
    # answer, and runners that take their time to load, get the longer first-token deadline.
    kind: ClassVar[Kind] = Kind(
        "exo", Role.LOCAL, takes_key=False, needs_key=False, bills=False,
        default_base_url="http://localhost:52415", deadlines=(1.0, 30.0, 30.0),
        several_nodes=True, cost=CostSource.FREE)
    done_marker_required = False  # legacy exo never sends [DONE]; a finish_reason must do
    cluster_api: ClassVar[ClusterApi | None] = ExoCluster()
    # While it reads a long prompt exo says how far it is, as SSE comments (so that other
    # clients ignore them): ``: prefill_progress {"PrefillProgressChunk": {"model": ...,
    # "processed_tokens": 2048, "total_tokens": 9000}}`` (src/exo/api/adapters/chat_completions.py)
    progress_comment: ClassVar[bytes | None] = b": prefill_progress "

    def prompt_read(self, report: bytes) -> PromptRead | None:
        return prefill_progress(report)

    def __init__(self) -> None:
        self._memos: dict[str, _Memo] = {}

    def chat_url(self, base_url: str) -> str:
        return f"{base_url}/v1/chat/completions"

    def outcome_for(self, status: int, message: str) -> Outcome:
        if status == 408:  # legacy: "Response generation timed out"
            return Outcome.TIMEOUT
        return super().outcome_for(status, message)

    async def probe(self, http: httpx.AsyncClient, provider: ProviderSettings,
                    key: Secret | None) -> Snapshot:
        """Try each node in turn; the first that answers is the one requests go to."""
        from router.http.client import HTTP_OR_JSON_ERRORS, http_error_detail  # loaded by now

        start = asyncio.get_running_loop().time()
        details: list[str] = []
        for node in provider.base_urls:
            try:
                snapshot = await self._probe_node(http, node, provider)
            except (*HTTP_OR_JSON_ERRORS, *_SHAPE_ERRORS) as exc:
                details.append(f"{node}: {_probe_error(exc, http_error_detail)}")
                continue
            if snapshot is not None:
                return snapshot
            details.append(f"{node}: not an exo API")
        latency = (asyncio.get_running_loop().time() - start) * 1000
        short = details[0].split(": ", 1)[1] if len(details) == 1 else "; ".join(details)
        return Snapshot(HealthState.DOWN, short, latency)

    async def _probe_node(self, http: httpx.AsyncClient, node: str,
                          provider: ProviderSettings) -> Snapshot | None:
        from router.http.client import fetch  # loaded by now

        start = asyncio.get_running_loop().time()
        live = await fetch(http, f"{node}/node_id", provider, seconds=_PROBE_S)
        if live.status_code == 200:
            return await self._current(http, node, provider, start)
        return await _legacy(http, node, provider, start)

    async def _current(self, http: httpx.AsyncClient, node: str, provider: ProviderSettings,
                       start: float) -> Snapshot:
        from router.http.client import fetch  # loaded by now

        memo = self._memos.setdefault(node, _Memo())

        def get(path: str) -> Coroutine[Any, Any, Fetched]:
            return fetch(http, f"{node}{path}", provider, seconds=_PROBE_S)

        now = time.monotonic()
        listing = get("/v1/models") if now - memo.catalogue_at > CATALOGUE_EVERY_S else None
        wanted = memo.parts() if memo.parts_served(now) else ["state"]
        answers = await asyncio.gather(*(get(f"/state/{p}" if p != "state" else "/state")
                                         for p in wanted), *([listing] if listing else []))
        if listing is not None:
            memo.catalogue, memo.catalogue_at = parse_catalogue(answers[-1].json()), now
        parts = _parts(wanted, answers[:len(wanted)])
        if parts is _NO_PARTS:  # no /state/<part> here: an exo before v1.0.70
            memo.parts_missing_at = now
        elif wanted != ["state"]:
            memo.parts_missing_at = None
        if not isinstance(parts, dict):  # this time, the whole state
            parts = _object((await get("/state")).json())
        if set(_object(parts.get("nodeMemory", {}))) - set(memo.identities) - set(parts.get(
                "nodeIdentities", {})):  # a node new since the last look: its name now
            answer = await get("/state/nodeIdentities")
            parts["nodeIdentities"] = answer.json() if answer.status_code == 200 else {}
        memo.identities.update(_object(parts.get("nodeIdentities", {})))
        cluster = parse_cluster({**parts, "nodeIdentities": memo.identities}, memo.catalogue)
        memo.last = cluster
        models = frozenset(memo.catalogue) | {i.model for i in cluster.instances}
        return _snapshot(node, "exo", models, readiness(cluster), _ms(start), cluster)


_NO_PARTS = "no parts"  # /state/instances is a 404: an exo before v1.0.70
_NOT_THIS_TIME = "not this time"  # a part that is not a JSON object: the whole /state, this once


def _parts(wanted: list[str], answers: list[Fetched]) -> dict[str, Any] | str:
    """The parts by name; _NO_PARTS when this exo does not serve them (a 404), _NOT_THIS_TIME
    when one answered something else than a JSON object (a proxy's page, a hiccup)."""
    if wanted == ["state"]:
        return _object(answers[0].json()) if answers[0].status_code == 200 else {}
    parts: dict[str, Any] = {}
    for name, answer in zip(wanted, answers, strict=True):
        if name == "instances" and answer.status_code == 404:
            return _NO_PARTS
        if answer.status_code != 200:
            continue
        try:
            parts[name] = _object(answer.json())
        except ValueError:
            return _NOT_THIS_TIME
    return parts


async def _legacy(http: httpx.AsyncClient, node: str, provider: ProviderSettings,
                  start: float) -> Snapshot | None:
    from router.http.client import fetch  # loaded by now

    legacy = await fetch(http, f"{node}/healthcheck", provider, seconds=_PROBE_S)
    if legacy.status_code != 200:
        return None
    models, downloads = await asyncio.gather(
        fetch(http, f"{node}/v1/models", provider, seconds=_PROBE_S),
        fetch(http, f"{node}/v1/download/progress", provider, seconds=_PROBE_S))
    listing = _object(models.json())
    catalogue = frozenset(parse_catalogue(listing))
    busy, progress = legacy_downloads(downloads.json() if downloads.status_code == 200 else {})
    not_ready = {m["id"] for m in listing.get("data", []) if isinstance(m, dict)
                 and m.get("ready") is False}
    ready = set(catalogue - set(busy) - not_ready)
    return _snapshot(node, "legacy exo", catalogue, (ready, busy, progress), _ms(start))


# An answer of an unexpected shape (a list where an object belongs, ...).
_SHAPE_ERRORS: tuple[type[BaseException], ...] = (TypeError, AttributeError, KeyError)


def _probe_error(exc: BaseException, detail: Callable[[BaseException], str]) -> str:
    from router.http.body import BodyError

    if isinstance(exc, BodyError):
        return str(exc)
    if isinstance(exc, ValueError | TypeError | AttributeError | KeyError):
        return "not an exo API"
    return detail(exc)


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def _ms(start: float) -> float:
    return (asyncio.get_running_loop().time() - start) * 1000


Readiness = tuple[set[str], dict[str, str], float | None]  # ready, busy -> why, download %


def _snapshot(node: str, generation: str, catalogue: frozenset[str], found: Readiness,
              latency: float, cluster: Cluster | None = None) -> Snapshot:
    ready, busy, progress = found
    if ready:
        state, detail = HealthState.HEALTHY, f"{generation} at {node} · {len(ready)} model(s) ready"
        if busy:
            detail += " · " + next(iter(busy.values()))
    elif busy:
        state, detail = HealthState.BUSY, next(iter(busy.values()))
    else:
        state, detail = HealthState.DEGRADED, f"{generation} at {node} · no model loaded"
    return Snapshot(state, detail, latency, node=node, models=catalogue, ready=frozenset(ready),
                    busy=dict(busy), download_progress=progress, cluster=cluster)


def prefill_progress(report: bytes) -> PromptRead | None:
    """exo's prefill report (tagged ``PrefillProgressChunk`` or bare) as a PromptRead; None for
    anything else (not JSON, counts that are not whole numbers, nothing to read)."""
    try:
        data = json.loads(report)
    except (ValueError, RecursionError):
        return None
    _, body = unwrap(data)
    done, total = body.get("processed_tokens"), body.get("total_tokens")
    if type(done) is not int or type(total) is not int or total <= 0 or done < 0:
        return None
    return PromptRead(min(done, total), total)


def current_readiness(state: Mapping[str, Any]) -> Readiness:
    """(ready model ids, busy model id -> reason, download percentage) from exo's state (the
    whole ``GET /state``, or its parts)."""
    return readiness(parse_cluster(state))


def percent(progress: Mapping[str, Any]) -> float:
    total = in_bytes(progress.get("total", progress.get("totalBytes", progress.get("total_bytes"))))
    done = in_bytes(progress.get("downloaded",
                                 progress.get("downloadedBytes", progress.get("downloaded_bytes"))))
    return round(min(100.0, 100.0 * done / total), 1) if total > 0 else 0.0


def short_name(model_id: str) -> str:
    return model_id.rsplit("/", 1)[-1].removesuffix("-4bit").removesuffix("-Instruct")


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
