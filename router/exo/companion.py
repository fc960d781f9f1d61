"""The exo companion: warm a model on the local cluster while the cloud answers, and see and fix
the cluster.

When a request names a model the local cluster could run but has not loaded (it lists the
model; no instance), the companion dry-runs the placement (the cluster's placement answers 200
and then fails silently when a model cannot fit) and, if it fits and the alias's
``warm_on_exo`` allows — ``"always"``, or ``"ask"`` once the user said yes — places it (when exo
itself answered "No instance found", the cluster is probed first: the last probe still showed
the model loaded, and the warm starts from that request, not a later one). The
request itself goes on as routed (to the cloud, within ``allow_paid_failover``). While the
model downloads and loads, the cluster is probed every second; once its runners are ready the
next request goes to it (``ModelWarming`` READY: "back to free"). A model that cannot fit says
why (memory per node) and is not tried again until the cluster changes or the user asks.

It also keeps a ``ClusterWatch`` per local provider (nodes that drop out or come back, stuck
models) and carries out the user's "Reload on exo" (unload, then place again) and "Unload".

It asks only the kind's description (``traits.local``, ``cluster_api``), never its name.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from router.config import Config, ProviderConfig, WarmConsent
from router.errors import ClusterActionFailed, Outcome
from router.events import Event, EventHub, RequestFinished
from router.exo.cluster import Cluster, Instance, Phase, Problem, Stage, Warming, gigabytes
from router.exo.events import ClusterProblem, ModelWarming, NodeChanged
from router.exo.ops import send
from router.exo.view import download_progress
from router.exo.watch import ClusterWatch
from router.host import RouterHost
from router.policy import candidates
from router.providers import Snapshot, adapter_for
from router.providers.base import ClusterApi, Verdict

if TYPE_CHECKING:

    from router.probing import Prober


class CompanionHost(RouterHost, Protocol):
    """What the companion needs of its Router besides router/host.py's."""

    prober: Prober
    events: EventHub

    def subscribe(self, listener: Callable[[Event], None]) -> Callable[[], None]: ...


WARM_PROBE_S = 1.0  # how often a cluster is probed while a model warms on it
PLACE_WAIT_S = 20.0  # a placement that shows no instance by then failed silently
GONE_WAIT_S = 15.0  # how long "Reload" waits for the old instance to go


@dataclass
class _Job:
    provider: ProviderConfig
    model: str
    name: str
    consent: WarmConsent
    stage: Stage = Stage.CHECKING
    detail: str = ""
    progress: float | None = None
    placed_at: float = 0.0
    instance: str | None = None
    last_error: str = ""

    def view(self) -> Warming:
        return Warming(self.provider.id, self.model, self.name, self.stage, self.detail, self.progress)


class Companion:
    def __init__(self, router: CompanionHost, *, clock: Callable[[], float] = time.monotonic,
                 warm_probe_s: float = WARM_PROBE_S, place_wait_s: float = PLACE_WAIT_S):
        self._router = router
        self._clock = clock
        self.warm_probe_s = warm_probe_s
        self.place_wait_s = place_wait_s
        self._jobs: dict[tuple[str, str], _Job] = {}
        self._settled: dict[tuple[str, str], frozenset[str]] = {}  # failed here, on these nodes
        self._held: set[tuple[str, str]] = set()  # unloaded by the user: not warmed unasked
        self._apis = {p.id: api for p in router.config.providers
                      if p.traits.local and (api := adapter_for(p.kind).cluster_api) is not None}
        self._watches = {p.id: ClusterWatch(p, self._emit) for p in router.config.providers
                         if p.id in self._apis}
        self._probing: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def take(self, config: Config) -> None:
        """A new config (Settings): each local cluster's watch follows its provider's new
        addresses, keeping what it has seen; a new local provider gets a watch."""
        for p in config.providers:
            api = adapter_for(p.kind).cluster_api if p.traits.local else None
            if api is None:
                continue
            self._apis[p.id] = api
            watch = self._watches.get(p.id)
            if watch is None:
                self._watches[p.id] = ClusterWatch(p, self._emit)
            else:
                watch.provider = p

    def start(self) -> Companion:
        """Follow every probe and every request's end (``serve``, the tray, ``exo`` commands)."""
        if self._unsubscribe is None:
            self._router.prober.listeners.append(self.on_probe)
            self._unsubscribe = self._router.subscribe(self.on_event)
        return self

    @property
    def stuck_after_s(self) -> float:
        """How long a runner's progress may stand still before it is called stuck."""
        return next((w.stuck_after_s for w in self._watches.values()), 0.0)

    @stuck_after_s.setter
    def stuck_after_s(self, seconds: float) -> None:
        for watch in self._watches.values():
            watch.stuck_after_s = seconds

    # -- what to show -----------------------------------------------------------------------
    def warmings(self) -> list[Warming]:
        return [job.view() for job in self._jobs.values()]

    def problems(self) -> list[Problem]:
        return [p for watch in self._watches.values() for p in watch.problems.values()]

    def cluster(self) -> tuple[ProviderConfig, Cluster] | None:
        """The first local cluster the last probe saw, with its provider."""
        for provider_id, watch in self._watches.items():
            snapshot = self._router.health[provider_id].snapshot
            if watch.provider.enabled and snapshot is not None and snapshot.cluster is not None:
                return watch.provider, snapshot.cluster
        return None

    # -- what happened ----------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        if not isinstance(event, RequestFinished):
            return
        for attempt in event.attempts:
            watch = self._watches.get(attempt.provider)
            if watch is None:
                continue
            if attempt.called and attempt.model and attempt.outcome is Outcome.TIMEOUT:
                watch.missed_first_token(attempt.model, self._clock())
            elif attempt.model and attempt.outcome is Outcome.OK:
                watch.answered(attempt.model, self._clock())
            if attempt.outcome is not Outcome.MODEL_UNAVAILABLE:
                continue
            if attempt.called:  # the cluster said so (exo's 404 "No instance found"): what the
                # last probe saw is out of date (it still showed the model loaded), look again
                self._router.spawn(self._look_again(watch.provider, event.logical_model))
            else:
                self._consider(watch.provider, event.logical_model)

    async def _look_again(self, provider: ProviderConfig, logical: str) -> None:
        await self._router.probe(provider)
        self._consider(provider, logical)

    def on_probe(self, provider: ProviderConfig, snapshot: Snapshot) -> None:
        watch = self._watches.get(provider.id)
        if watch is None or snapshot.cluster is None:
            return
        cluster, now = snapshot.cluster, self._clock()
        if watch.see(cluster, now):  # a node joined: what did not fit may fit now
            for key in [k for k in self._settled if k[0] == provider.id]:
                del self._settled[key]
        for job in [j for j in self._jobs.values() if j.provider.id == provider.id]:
            self._follow(job, cluster, now)

    # -- warming ----------------------------------------------------------------------------
    def _consider(self, provider: ProviderConfig, logical: str) -> None:
        """A request could not use the cluster for lack of a loaded model: warm it, if it can
        run it, nobody tried already and the alias allows."""
        cluster = self._cluster_of(provider)
        model = self._model_id(provider, logical, cluster)
        if cluster is None or model is None or cluster.instance_of(model) is not None:
            return
        key = (provider.id, model)
        consent = self._consent(logical)
        earlier = self._jobs.get(key)
        if (earlier is not None and earlier.stage not in (Stage.READY, Stage.FAILED)) \
                or key in self._held or consent is WarmConsent.NEVER \
                or self._settled.get(key) == _node_set(cluster):  # failed here: not in a loop
            return
        job = _Job(provider, model, cluster.model_name(model), consent)
        self._jobs[key] = job
        self._router.spawn(self._begin(job))

    async def warm(self, model: str) -> Warming:
        """Warm ``model`` (an alias or the cluster's model id) now: the user asked for it."""
        provider, model_id, cluster = self._target(model)
        key = (provider.id, model_id)
        self._held.discard(key)
        self._settled.pop(key, None)
        job = _Job(provider, model_id, cluster.model_name(model_id), WarmConsent.ALWAYS)
        self._jobs[key] = job
        await self._begin(job)
        return job.view()

    async def _begin(self, job: _Job) -> None:
        verdict = await self._dry_run(job)
        if not verdict.fits:
            self._fail(job, verdict.detail)
        elif job.consent is WarmConsent.ALWAYS:
            await self._place(job)
        else:
            job.stage, job.detail = Stage.OFFERED, self._fits_where(job, verdict)
            self._emit(ModelWarming(job.provider.id, job.model, job.name, Stage.OFFERED, job.detail))

    async def _dry_run(self, job: _Job) -> Verdict:
        api, node = self._api_at(job.provider)
        try:
            status, body = await send(await self._router.http(), job.provider,
                                      api.placement(node, job.model))
        except ClusterActionFailed as exc:
            return Verdict(False, str(exc))
        verdict = api.verdict(status, body)
        return verdict if verdict.fits else Verdict(False, self._why_not(job, verdict.detail))

    async def _place(self, job: _Job) -> None:
        api, node = self._api_at(job.provider)
        try:
            if await self._placed_elsewhere(job):  # another of our processes (tray, serve) did
                status, body = 200, b""
            else:
                status, body = await send(await self._router.http(), job.provider,
                                          api.place(node, job.model))
        except ClusterActionFailed as exc:
            self._fail(job, str(exc))
            return
        if status != 200:
            self._fail(job, f"{job.provider.name} refused to place it: {api.verdict(status, body).detail}")
            return
        job.stage, job.detail, job.placed_at = Stage.PLACING, "", self._clock()
        self._emit(ModelWarming(job.provider.id, job.model, job.name, Stage.PLACING))
        self._keep_probing()

    async def _placed_elsewhere(self, job: _Job) -> bool:
        """Whether the model has an instance by now: a look just before placing, so that two
        processes on one cluster (the tray and ``serve``) do not both place it."""
        cluster = (await self._router.probe(job.provider)).cluster
        return cluster is not None and cluster.instance_of(job.model) is not None

    def _follow(self, job: _Job, cluster: Cluster, now: float) -> None:
        """Move a placed model's warming on, from what the last probe saw."""
        instance = cluster.instance_of(job.model)
        if job.stage is Stage.OFFERED and instance is not None:  # placed by someone else
            del self._jobs[(job.provider.id, job.model)]
            return
        if job.stage not in (Stage.PLACING, Stage.DOWNLOADING, Stage.LOADING, Stage.WARMING):
            return
        if instance is None:
            if job.instance is not None:
                self._fail(job, f"exo removed it after failed starts ({job.last_error})"
                           if job.last_error else "exo removed it before it was ready")
            elif now - job.placed_at > self.place_wait_s:
                job.placed_at = float("inf")  # asked once
                self._router.spawn(self._silent_failure(job))
            return
        job.instance = instance.id
        if instance.ready:
            self._ready(job)
            return
        if instance.failed:
            runner = instance.failed[0]
            job.last_error = f"{cluster.node_name(runner.node)}: {runner.error}"
        self._progress(job, cluster)

    def _progress(self, job: _Job, cluster: Cluster) -> None:
        instance = cluster.instance_of(job.model)
        assert instance is not None
        stage, detail, progress = _stage_of(instance, cluster)
        if stage is not job.stage:
            job.stage = stage
            self._emit(ModelWarming(job.provider.id, job.model, job.name, stage))
        job.detail, job.progress = detail, progress

    async def _silent_failure(self, job: _Job) -> None:
        verdict = await self._dry_run(job)
        why = f": {verdict.detail}" if not verdict.fits else " (exo's log says why)"
        self._fail(job, f"exo accepted the placement but never created it{why}")

    def _ready(self, job: _Job) -> None:
        del self._jobs[(job.provider.id, job.model)]
        job.stage, job.detail, job.progress = Stage.READY, "", None
        self._emit(ModelWarming(job.provider.id, job.model, job.name, Stage.READY))

    def _fail(self, job: _Job, reason: str) -> None:
        job.stage, job.detail, job.progress = Stage.FAILED, reason, None
        cluster = self._cluster_of(job.provider)
        self._settled[(job.provider.id, job.model)] = _node_set(cluster)
        self._emit(ModelWarming(job.provider.id, job.model, job.name, Stage.FAILED, reason))

    def _keep_probing(self) -> None:
        if self._probing is None or self._probing.done():
            self._probing = self._router.spawn(self._probe_while_warming())

    async def _probe_while_warming(self) -> None:
        """While a model warms, its cluster is probed every second (the probes are cheap), so
        that the first request after its runners are ready goes to it."""
        while providers := {j.provider.id: j.provider for j in self._jobs.values()
                            if j.stage in (Stage.PLACING, Stage.DOWNLOADING, Stage.LOADING,
                                           Stage.WARMING)}:
            await asyncio.sleep(self.warm_probe_s)
            await asyncio.gather(*(self._router.probe(p) for p in providers.values()))

    async def wait(self, model: str, timeout_s: float) -> Warming:
        """Until ``model``'s warming is ready or failed (``exo warm`` waits on it)."""
        provider, model_id, cluster = self._target(model)
        end = self._clock() + timeout_s
        while (job := self._jobs.get((provider.id, model_id))) is not None and job.stage.active \
                and self._clock() < end:
            await asyncio.sleep(min(0.1, self.warm_probe_s))
        if job is None:  # done: ready
            return Warming(provider.id, model_id, cluster.model_name(model_id), Stage.READY)
        return job.view()

    # -- the user's actions -----------------------------------------------------------------
    async def reload(self, model: str) -> Warming:
        """Unload ``model`` and place it again (a runner failed, loading is stuck, ...)."""
        provider, model_id, cluster = self._target(model)
        instance = cluster.instance_of(model_id)
        if instance is not None:
            await self._delete(provider, instance.id, cluster.model_name(model_id))
            await self._until_gone(provider, model_id)
        self._watches[provider.id].forget(model_id)
        return await self.warm(model_id)

    async def unload(self, model: str) -> None:
        """Free the model's memory; it is not warmed again unless the user asks."""
        provider, model_id, cluster = self._target(model)
        instance = cluster.instance_of(model_id)
        if instance is None:
            raise ClusterActionFailed(f"{cluster.model_name(model_id)} is not loaded on {provider.name}")
        await self._delete(provider, instance.id, cluster.model_name(model_id))
        self._held.add((provider.id, model_id))
        self._jobs.pop((provider.id, model_id), None)
        self._watches[provider.id].forget(model_id)
        await self._router.probe(provider)

    def decline(self, model: str) -> None:
        """No to an offer: not offered again in this run."""
        for key in [k for k, job in self._jobs.items() if job.model == model
                    and job.stage is Stage.OFFERED]:
            del self._jobs[key]
            self._held.add(key)

    async def _delete(self, provider: ProviderConfig, instance: str, name: str) -> None:
        api, node = self._api_at(provider)
        status, body = await send(await self._router.http(), provider, api.unload(node, instance))
        if status not in (200, 404):  # 404: already gone
            raise ClusterActionFailed(f"{provider.name} would not unload {name}: "
                                      f"{api.verdict(status, body).detail}")

    async def _until_gone(self, provider: ProviderConfig, model: str) -> None:
        end = self._clock() + GONE_WAIT_S
        while self._clock() < end:
            cluster = (await self._router.probe(provider)).cluster
            if cluster is not None and cluster.instance_of(model) is None:
                return
            await asyncio.sleep(min(0.2, self.warm_probe_s))
        raise ClusterActionFailed(f"{provider.name} did not unload {model} within {GONE_WAIT_S:g} s")

    # -- helpers ----------------------------------------------------------------------------
    def _emit(self, event: ModelWarming | NodeChanged | ClusterProblem) -> None:
        self._router.events.emit(event)

    def _api_at(self, provider: ProviderConfig) -> tuple[ClusterApi, str]:
        api = self._apis[provider.id]
        snapshot = self._router.health[provider.id].snapshot
        return api, snapshot.node if snapshot is not None and snapshot.node else provider.base_url

    def _cluster_of(self, provider: ProviderConfig) -> Cluster | None:
        snapshot = self._router.health[provider.id].snapshot
        return snapshot.cluster if snapshot is not None else None

    def _consent(self, logical: str) -> WarmConsent:
        alias = self._router.config.models.get(logical)
        return alias.warm_on_exo if alias is not None else WarmConsent.ASK

    def _model_id(self, provider: ProviderConfig, logical: str, cluster: Cluster | None) -> str | None:
        """The id the cluster knows ``logical`` by (an alias's, or the name itself)."""
        if cluster is None:
            return None
        known = set(cluster.catalogue) | {i.model for i in cluster.instances}
        for candidate in candidates(self._router.config, logical):
            if candidate.provider.id == provider.id:
                return next((m for m in candidate.model_ids if m in known), None)
        return None

    def _target(self, model: str) -> tuple[ProviderConfig, str, Cluster]:
        for watch in self._watches.values():
            cluster = self._cluster_of(watch.provider)
            model_id = self._model_id(watch.provider, model, cluster)
            if watch.provider.enabled and cluster is not None and model_id is not None:
                return watch.provider, model_id, cluster
        raise ClusterActionFailed(f"no local cluster that answered lists {model!r}")

    def _why_not(self, job: _Job, detail: str) -> str:
        """The cluster's reason, and the memory it needs against what each node has free."""
        cluster = self._cluster_of(job.provider)
        card = cluster.catalogue.get(job.model) if cluster is not None else None
        if cluster is None or card is None or not card.size_bytes or not cluster.nodes:
            return detail
        free = ", ".join(f"{n.name} {gigabytes(n.ram_available)} of {gigabytes(n.ram_total)}"
                         for n in cluster.nodes)
        return f"{detail}: it needs {gigabytes(card.size_bytes)}; free: {free}"

    def _fits_where(self, job: _Job, verdict: Verdict) -> str:
        cluster = self._cluster_of(job.provider)
        card = cluster.catalogue.get(job.model) if cluster is not None else None
        size = f"{gigabytes(card.size_bytes)} " if card is not None and card.size_bytes else ""
        where = ", ".join(cluster.node_name(n) for n in verdict.nodes) if cluster is not None else ""
        return f"{size}on {where}" if where else size.strip()


def _node_set(cluster: Cluster | None) -> frozenset[str]:
    return frozenset(n.id for n in cluster.nodes) if cluster is not None else frozenset()


def _stage_of(instance: Instance, cluster: Cluster) -> tuple[Stage, str, float | None]:
    """(stage, progress in words, percent) of a placed model, from its slowest runner."""
    phase = instance.phase
    if phase is Phase.DOWNLOADING:
        downloads = cluster.downloading(instance.model)
        done, total = sum(d.done_bytes for d in downloads), sum(d.total_bytes for d in downloads)
        return Stage.DOWNLOADING, download_progress(downloads), 100 * done / total if total else None
    if phase is Phase.LOADING:
        loaded = sum(r.layers_loaded for r in instance.runners)
        total = sum(r.total_layers for r in instance.runners)
        return Stage.LOADING, f"{loaded}/{total} layers" if total else "", \
            100 * loaded / total if total else None
    if phase is Phase.WARMING:
        return Stage.WARMING, "", None
    return Stage.PLACING, "a runner failed; exo retries" if phase is Phase.FAILED else "starting", None
