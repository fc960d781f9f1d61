"""A simulated exo cluster that behaves as exo's source does (exo-explore/exo at b5375f8).

- Placement: ``GET /instance/placement`` answers the instance it would create, or 400 "No cycles
  found with sufficient memory" (the sum of ``ramAvailable`` over the fewest nodes that hold the
  model); ``POST /place_instance`` answers 200 at once and then, when the model cannot fit (or
  ``silent_placement`` is set), nothing happens — exo only logs it.
- Per node: memory (``ramAvailable`` drops as layers load), a friendly name, downloads
  (``DownloadPending`` → ``DownloadOngoing`` at ``download_speed`` bytes/s → ``DownloadCompleted``).
- Runners: ``RunnerIdle`` while the shard downloads → (``RunnerConnecting`` → ``RunnerConnected``
  on a multi-node instance) → ``RunnerLoading`` at ``layers_per_s`` → ``RunnerLoaded`` →
  ``RunnerWarmingUp`` for ``warmup_s`` → ``RunnerReady``. ``fail_load`` makes every start fail
  (``RunnerFailed`` with its message and a diagnostic), started again after the worker's backoff
  (``retry_s`` doubling, at most 10 s); exo deletes the instance after 5 failed starts.
  ``stuck_at_layer`` stops loading there.
- Nodes drop out (``drop_node``): their memory, downloads and last-seen go, their identity stays,
  and the instances on them are deleted; ``revive_node`` brings one back.
- ``DELETE /instance/{id}`` unloads (runners shut down, memory comes back); ``POST
  /v1/cancel/{id}`` ends a generation in flight.
- The whole ``/state`` carries every task: in-flight requests with their whole conversations
  (``busy_tasks``), so it weighs hundreds of KB, like a real cluster in use.

Time runs in ``step`` (a background task of the fake's loop calls it every ``tick_s``).
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tests.fakes import exo_state as shapes

GiB = shapes.GiB
MAX_RETRIES = 5  # EXO_MAX_INSTANCE_RETRIES
LLAMA = "mlx-community/Llama-3.2-3B-Instruct-4bit"
QWEN = "mlx-community/Qwen3-8B-4bit"
BIG = "mlx-community/Llama-3.3-70B-Instruct-4bit"


@dataclass
class FakeNode:
    id: str
    name: str
    ram_total: int
    ram_free: int  # what nothing of ours uses
    alive: bool = True
    files: set[str] = field(default_factory=set)  # models downloaded here


@dataclass
class _Runner:
    id: str
    node: str
    layers: int  # its share of the model's layers
    size: int  # its share of the model's bytes
    tag: str = ""  # "" until the worker reports it
    loaded: float = 0.0  # layers in memory
    since: float = 0.0  # time in the current tag
    error: str = ""


@dataclass
class _Instance:
    id: str
    model: str
    runners: dict[str, _Runner]  # node -> runner
    failures: int = 0


F = TypeVar("F", bound=Callable[..., Any])


def _locked(method: F) -> F:
    """Tests call the cluster from their thread while the fake's loop serves and steps it."""
    @functools.wraps(method)
    def wrapper(self: FakeCluster, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)
    return wrapper  # type: ignore[return-value]


def default_cards() -> dict[str, dict[str, Any]]:
    return {LLAMA: shapes.card(LLAMA, int(1.74 * GiB), 28, "Llama 3.2 3B"),
            QWEN: shapes.card(QWEN, int(4.3 * GiB), 36, "Qwen3 8B"),
            BIG: shapes.card(BIG, 37 * GiB, 80, "Llama 3.3 70B")}


class FakeCluster:
    def __init__(self, nodes: list[FakeNode] | None = None, *, download_speed: float = 4 * GiB,
                 layers_per_s: float = 200.0, warmup_s: float = 0.05, tick_s: float = 0.02,
                 retry_s: float = 0.5):
        self.lock = threading.RLock()
        self.nodes = {n.id: n for n in nodes or [
            FakeNode("12D3KooWMacMini0000000000000000000000000000000001", "Mac mini", 16 * GiB,
                     12 * GiB),
            FakeNode("12D3KooWMacBook0000000000000000000000000000000002", "MacBook Pro", 8 * GiB,
                     5 * GiB)]}
        self.identities = {n.id: shapes.identity(n.name) for n in self.nodes.values()}
        self.cards = default_cards()
        self.download_speed = download_speed
        self.layers_per_s = layers_per_s
        self.warmup_s = warmup_s
        self.tick_s = tick_s
        self.retry_s = retry_s  # the worker's backoff before it starts a failed runner again
        self.instances: dict[str, _Instance] = {}
        self.downloads: dict[tuple[str, str], float] = {}  # (node, model) -> bytes so far
        self.worker_tasks: dict[str, Any] = {}  # completed worker tasks, kept as exo keeps them
        self.busy_tasks: dict[str, Any] = {}  # requests in flight, with their conversations
        self.generations: dict[str, asyncio.Event] = {}  # command id -> set when cancelled
        self.cancelled: list[str] = []
        self.placed: list[dict[str, Any]] = []  # every POST /place_instance body
        self.ready_at: dict[str, float] = {}  # model -> when its runners were all ready (monotonic)
        self.deleted: list[str] = []
        # faults
        self.silent_placement = False  # 200, then no instance, even where the model fits
        self.fail_load: str | None = None  # every runner start fails with this message
        self.stuck_at_layer: int | None = None

    # -- queries ----------------------------------------------------------------------------
    def alive(self) -> list[FakeNode]:
        return [n for n in self.nodes.values() if n.alive]

    @_locked
    def ready_models(self) -> set[str]:
        return {i.model for i in self.instances.values()
                if all(r.tag in ("RunnerReady", "RunnerRunning") for r in i.runners.values())}

    def available(self, node: FakeNode) -> int:
        used = sum(int(r.size * r.loaded / max(1, r.layers)) for i in self.instances.values()
                   for r in i.runners.values() if r.node == node.id)
        return max(0, node.ram_free - used)

    def fit(self, model: str) -> list[FakeNode] | None:
        """The fewest live nodes whose free memory together holds the model (exo: the smallest
        cycle with enough ``ramAvailable``), or None."""
        size = self.cards[model]["storageSize"]["inBytes"]
        chosen: list[FakeNode] = []
        for node in sorted(self.alive(), key=self.available, reverse=True):
            chosen.append(node)
            if sum(self.available(n) for n in chosen) >= size:
                return chosen
        return None

    # -- the API ----------------------------------------------------------------------------
    @_locked
    def placement(self, model: str) -> tuple[int, Any]:
        if model not in self.cards:
            return 500, _error(500, f"Model card not found: {model}")
        nodes = self.fit(model)
        if nodes is None:
            return 400, _error(400, "No cycles found with sufficient memory")
        return 200, self._instance_json(self._new_instance(model, nodes))

    @_locked
    def previews(self, model: str) -> tuple[int, Any]:
        if model not in self.cards:
            return 400, _error(400, f"Failed to load model card: {model}")
        nodes = self.fit(model)
        size = self.cards[model]["storageSize"]["inBytes"]
        previews = []
        for sharding in ("Pipeline", "Tensor"):
            for meta in ("MlxRing", "MlxJaccl"):
                if nodes is None or meta == "MlxJaccl":
                    previews.append({"model_id": model, "sharding": sharding, "instance_meta": meta,
                                     "instance": None, "memory_delta_by_node": None,
                                     "error": "No cycles found with sufficient memory" if nodes is None
                                     else "Requested RDMA (MlxJaccl) but no RDMA-connected cycles "
                                          "available"})
                    continue
                previews.append({"model_id": model, "sharding": sharding, "instance_meta": meta,
                                 "instance": self._instance_json(self._new_instance(model, nodes)),
                                 "memory_delta_by_node": {n.id: size // len(nodes) for n in nodes},
                                 "error": None})
        return 200, {"previews": previews}

    @_locked
    def place(self, body: Any) -> tuple[int, Any]:
        model = body.get("model_id") if isinstance(body, dict) else None
        if not isinstance(model, str):
            return 422, {"detail": [{"type": "missing", "loc": ["body", "model_id"],
                                     "msg": "Field required"}]}
        if model not in self.cards:
            return 500, _error(500, f"Model card not found: {model}")
        self.placed.append(body)
        nodes = self.fit(model)
        if nodes is not None and not self.silent_placement:  # else: exo logs it, nothing more
            created = self._new_instance(model, nodes)
            self.instances[created.id] = created
        return 200, {"message": "Command received.", "command_id": str(uuid.uuid4()),
                     "model_card": self.cards[model]}

    @_locked
    def delete(self, instance_id: str) -> tuple[int, Any]:
        if instance_id not in self.instances:
            return 404, _error(404, "Instance not found")
        self.deleted.append(instance_id)
        self._remove(instance_id)
        return 200, {"message": "Command received.", "command_id": str(uuid.uuid4()),
                     "instance_id": instance_id}

    @_locked
    def cancel(self, command_id: str) -> tuple[int, Any]:
        event = self.generations.get(command_id)
        if event is None:
            return 404, _error(404, "Command not found or already completed")
        self.cancelled.append(command_id)
        event.set()
        return 200, {"message": "Command cancelled.", "command_id": command_id}

    @_locked
    def instance(self, instance_id: str) -> tuple[int, Any]:
        found = self.instances.get(instance_id)
        if found is None:
            return 404, _error(404, "Instance not found")
        return 200, self._instance_json(found)

    # -- faults -----------------------------------------------------------------------------
    @_locked
    def drop_node(self, node_id: str) -> None:
        """Silent for 30 s: exo times it out and deletes the instances that used it."""
        self.nodes[node_id].alive = False
        for iid in [i.id for i in self.instances.values() if node_id in i.runners]:
            self._remove(iid)
        for key in [k for k in self.downloads if k[0] == node_id]:
            del self.downloads[key]

    @_locked
    def revive_node(self, node_id: str) -> None:
        self.nodes[node_id].alive = True

    @_locked
    def load_instance(self, model: str, *, ready: bool = True) -> str:
        """An instance placed earlier (ready at once, or just created)."""
        nodes = self.fit(model)
        assert nodes is not None, f"{model} does not fit"
        created = self._new_instance(model, nodes)
        self.instances[created.id] = created
        if ready:
            for runner in created.runners.values():
                self.nodes[runner.node].files.add(model)
                runner.tag, runner.loaded = "RunnerReady", runner.layers
        return created.id

    @_locked
    def add_busy_tasks(self, count: int, prompt_chars: int = 9000) -> None:
        """Requests in flight, each with its whole conversation (what makes /state heavy)."""
        instance_id = next(iter(self.instances), "none")
        for _ in range(count):
            task = shapes.text_generation_task(instance_id, LLAMA, prompt_chars)
            self.busy_tasks[task["TextGeneration"]["taskId"]] = task

    # -- time -------------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            self.step(self.tick_s)

    @_locked
    def step(self, dt: float) -> None:
        for inst in list(self.instances.values()):
            for runner in inst.runners.values():
                self._advance(inst, runner, dt)
            if inst.model not in self.ready_at and all(
                    r.tag == "RunnerReady" for r in inst.runners.values()):
                self.ready_at[inst.model] = time.monotonic()
            if inst.failures >= MAX_RETRIES and inst.id in self.instances:
                self._remove(inst.id)  # "exceeded 5 retries, requesting deletion"

    def _advance(self, inst: _Instance, runner: _Runner, dt: float) -> None:
        runner.since += dt
        tag = runner.tag
        if tag == "":
            self._set(runner, "RunnerIdle")
        elif tag == "RunnerIdle":
            self._idle(inst, runner, dt)
        elif tag in ("RunnerConnecting", "RunnerConnected"):
            if all(r.tag in ("RunnerConnecting", "RunnerConnected", "RunnerLoading")
                   for r in inst.runners.values()):
                self._start_loading(inst, runner)
        elif tag == "RunnerLoading":
            self._load(runner, dt)
        elif tag == "RunnerLoaded":
            self._set(runner, "RunnerWarmingUp")
        elif tag == "RunnerWarmingUp" and runner.since >= self.warmup_s:
            self._set(runner, "RunnerReady")
        elif tag == "RunnerFailed" and runner.since >= min(10.0, self.retry_s * 2 ** inst.failures):
            self._set(runner, "RunnerIdle")  # shut down; the worker creates it again (KeyedBackoff)

    def _idle(self, inst: _Instance, runner: _Runner, dt: float) -> None:
        node = self.nodes[runner.node]
        if inst.model not in node.files:  # DownloadModel: pending, then ongoing, then completed
            key = (node.id, inst.model)
            if key in self.downloads:
                self.downloads[key] += self.download_speed * dt
                if self.downloads[key] >= runner.size:
                    del self.downloads[key]
                    node.files.add(inst.model)
            else:
                self.downloads[key] = 0.0
            return
        if len(inst.runners) > 1:
            self._set(runner, "RunnerConnecting")
        else:
            self._start_loading(inst, runner)

    def _start_loading(self, inst: _Instance, runner: _Runner) -> None:
        if self.fail_load is not None:
            runner.error = self.fail_load
            inst.failures += 1
            self._set(runner, "RunnerFailed")
            return
        self._set(runner, "RunnerLoading")

    def _load(self, runner: _Runner, dt: float) -> None:
        limit = runner.layers if self.stuck_at_layer is None else min(runner.layers, self.stuck_at_layer)
        runner.loaded = min(limit, runner.loaded + self.layers_per_s * dt)
        if runner.loaded >= runner.layers:
            self._set(runner, "RunnerLoaded")

    @staticmethod
    def _set(runner: _Runner, tag: str) -> None:
        runner.tag, runner.since = tag, 0.0
        if tag == "RunnerIdle":
            runner.loaded = 0.0

    # -- building ---------------------------------------------------------------------------
    def _new_instance(self, model: str, nodes: list[FakeNode]) -> _Instance:
        model_card = self.cards[model]
        layers, size = model_card["nLayers"], model_card["storageSize"]["inBytes"]
        runners = {}
        for rank, node in enumerate(nodes):
            share = layers // len(nodes) + (layers % len(nodes) if rank == len(nodes) - 1 else 0)
            runners[node.id] = _Runner(str(uuid.uuid4()), node.id, share, size // len(nodes))
        return _Instance(str(uuid.uuid4()), model, runners)

    def _remove(self, instance_id: str) -> None:
        removed = self.instances.pop(instance_id)
        self.worker_tasks[str(uuid.uuid4())] = {"Shutdown": {
            "taskId": str(uuid.uuid4()), "taskStatus": "Complete", "instanceId": removed.id,
            "runnerId": next(iter(removed.runners.values())).id}}

    def _instance_json(self, inst: _Instance) -> dict[str, Any]:
        return shapes.instance(inst.id, self.cards[inst.model],
                               {node: r.id for node, r in inst.runners.items()})

    def _runner_json(self, runner: _Runner) -> dict[str, Any]:
        if runner.tag == "RunnerLoading":
            return {"RunnerLoading": {"layersLoaded": int(runner.loaded), "totalLayers": runner.layers}}
        if runner.tag == "RunnerFailed":
            return {"RunnerFailed": {"errorMessage": runner.error, "diagnostics": [
                {"RunnerMetalGpuTimeout": {"message": "[METAL] Command buffer execution failed: GPU "
                                                      "Timeout", "evidence": []}}]}}
        if runner.tag == "RunnerReady":
            return {"RunnerReady": {"prefillServerPort": None}}
        return {runner.tag: {}}

    @_locked
    def state(self) -> dict[str, Any]:
        """The whole state, as ``GET /state`` serves it."""
        state = shapes.empty_state()
        alive = [n.id for n in self.alive()]
        for inst in self.instances.values():
            state["instances"][inst.id] = self._instance_json(inst)
            for runner in inst.runners.values():
                if runner.tag:
                    state["runners"][runner.id] = self._runner_json(runner)
        state["downloads"] = self._downloads_json(alive)
        state["tasks"] = {**self.worker_tasks, **self.busy_tasks}
        state["lastSeen"] = shapes.last_seen(alive)
        state["topology"] = shapes.topology(alive)
        state["nodeIdentities"] = dict(self.identities)
        state["nodeMemory"] = {n.id: shapes.node_memory(n.ram_total, self.available(n))
                               for n in self.alive()}
        state["nodeSystem"] = {n: {"gpuUsage": 0.12, "temp": 41.0, "sysPower": 9.5, "pcpuUsage": 0.2,
                                   "ecpuUsage": 0.1} for n in alive}
        state["nodeBackends"] = {n: ["MlxMetal"] for n in alive}
        return state

    def _downloads_json(self, alive: list[str]) -> dict[str, list[dict[str, Any]]]:
        result: dict[str, list[dict[str, Any]]] = {n: [] for n in alive}
        for node_id in alive:
            node = self.nodes[node_id]
            for model in sorted(node.files):
                size = self.cards[model]["storageSize"]["inBytes"]
                result[node_id].append(shapes.downloaded(node_id, shapes.shard(
                    self.cards[model], 0, 1, 0, self.cards[model]["nLayers"]), size))
        for (node_id, model), done in self.downloads.items():
            if node_id not in result:
                continue
            inst = next((i for i in self.instances.values() if i.model == model), None)
            share = inst.runners[node_id].size if inst and node_id in inst.runners else 1
            sharded = shapes.shard(self.cards[model], 0, 1, 0, self.cards[model]["nLayers"])
            result[node_id].append(shapes.downloading(node_id, sharded, int(done), share,
                                                      self.download_speed))
        return result

    @_locked
    def catalogue(self) -> dict[str, Any]:
        """``GET /v1/models`` (ModelListModel: snake_case, sizes in MiB)."""
        return {"object": "list", "data": [
            {"id": model_id, "object": "model", "created": 0, "owned_by": "exo",
             "hugging_face_id": model_id, "name": model_id.rsplit("/", 1)[-1], "description": "",
             "context_length": c["contextLength"], "tags": [],
             "storage_size_megabytes": round(c["storageSize"]["inBytes"] / 1024 ** 2),
             "supports_tensor": True, "tasks": ["TextGeneration"], "is_custom": False,
             "family": c["family"], "quantization": c["quantization"], "base_model": c["baseModel"],
             "capabilities": ["text"], "reasoning_dialect": "none"}
            for model_id, c in self.cards.items()]}


def _error(status: int, message: str) -> dict[str, Any]:
    """exo's HTTPException answer (ErrorResponse)."""
    phrases = {400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}
    return {"error": {"message": message, "type": phrases.get(status, "Error"), "param": None,
                      "code": status}}
