"""exo's probes cost next to nothing: liveness from /node_id, readiness from /state/instances and
/state/runners, downloads only while something downloads — never the whole /state (hundreds of
KB with every prompt in flight) nor /events. Against the simulated cluster (tests/fakes)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from router import Router, parse_config
from router.exo.cluster import Cluster, Download, Instance, Node, Phase, Runner, Transfer
from router.exo.events import ClusterProblem, NodeChanged
from router.exo.watch import ClusterWatch
from router.providers.exo import ExoCluster
from router.providers.exo_state import parse_catalogue, parse_cluster, readiness
from tests.fakes.exo_cluster import BIG, LLAMA, QWEN, FakeCluster
from tests.fakes.provider import FakeProvider


def exo_config(fake: FakeProvider) -> object:
    return parse_config(f'[[providers]]\nid = "exo"\nkind = "exo"\nbase_urls = ["{fake.origin}"]\n', "t")


async def probes(fake: FakeProvider, count: int, pause: float = 0.0) -> list:
    config = exo_config(fake)
    found = []
    async with Router(config) as router:
        for _ in range(count):
            found.append(await router.probe(config.provider("exo")))
            await asyncio.sleep(pause)
    return found


async def test_probes_never_read_the_whole_state_or_the_event_log(exo_cluster):
    exo_cluster.cluster.add_busy_tasks(30)  # requests in flight: their conversations are in /state
    whole = len(json.dumps(exo_cluster.cluster.state()))
    assert whole > 300_000
    found = await probes(exo_cluster, 10)
    assert found[-1].ready == {LLAMA} and found[-1].state == "healthy"
    assert "/state" not in exo_cluster.hits and "/events" not in exo_cluster.hits
    steady = {path: n for path, n in exo_cluster.served_bytes.items()}
    assert set(steady) >= {"/state/instances", "/state/runners", "/state/nodeMemory"}
    assert sum(steady.values()) < whole / 20  # ten probes: under 5% of one look at /state
    assert exo_cluster.hits["/v1/models"] == 1  # the catalogue: once (then every ten minutes)
    assert exo_cluster.hits["/state/downloads"] == 1  # nothing downloads: only the first probe
    assert exo_cluster.hits["/state/nodeIdentities"] == 1  # no new node


async def test_downloads_are_read_only_while_something_downloads(exo_cluster):
    cluster = exo_cluster.cluster
    cluster.download_speed = 2 * 1024 ** 3  # Qwen3 8B: about two seconds
    config = exo_config(exo_cluster)
    async with Router(config) as router:
        exo = config.provider("exo")
        await router.probe(exo)
        assert exo_cluster.hits["/state/downloads"] == 1
        await router.probe(exo)
        assert exo_cluster.hits["/state/downloads"] == 1
        cluster.place({"model_id": QWEN})
        seen = []
        for _ in range(60):
            snapshot = await router.probe(exo)
            seen.append(snapshot.busy.get(QWEN, "ready" if QWEN in (snapshot.ready or ()) else ""))
            if QWEN in (snapshot.ready or ()):
                break
            await asyncio.sleep(0.1)
        assert any(s.startswith("downloading Qwen3-8B") and s.endswith("%") for s in seen)
        assert seen[-1] == "ready"
        during = exo_cluster.hits["/state/downloads"]
        for _ in range(3):
            await router.probe(exo)
        assert exo_cluster.hits["/state/downloads"] == during  # done downloading: not read again


async def test_an_exo_without_state_parts_is_read_whole(exo_cluster):
    exo_cluster.exo_parts = False  # before v1.0.70
    found = await probes(exo_cluster, 2)
    assert found[-1].ready == {LLAMA}
    assert exo_cluster.hits["/state/instances"] == 1  # asked once, then the whole /state only
    assert exo_cluster.hits["/state"] == 2


async def test_the_cluster_seen_by_a_probe(exo_cluster):
    cluster = exo_cluster.cluster
    mini, book = list(cluster.nodes)
    cluster.fail_load = "model weights corrupt"
    cluster.nodes[mini].files.add(QWEN)  # downloaded earlier
    cluster.place({"model_id": QWEN})
    await asyncio.sleep(0.2)
    [snapshot] = await probes(exo_cluster, 1)
    seen = snapshot.cluster
    assert [n.name for n in seen.nodes] == ["Mac mini", "MacBook Pro"]
    assert seen.nodes[0].ram_total == 16 * 1024 ** 3 and 0 < seen.nodes[0].ram_available < 12 * 1024 ** 3
    assert seen.model_name(LLAMA) == "Llama 3.2 3B" and seen.catalogue[BIG].size_bytes > 30e9
    assert seen.models_on(mini) == (LLAMA, QWEN)
    qwen = seen.instance_of(QWEN)
    assert qwen is not None and qwen.failed and qwen.failed[0].node == mini
    assert "model weights corrupt" in qwen.failed[0].error and "GPU Timeout" in qwen.failed[0].error
    assert snapshot.busy[QWEN].startswith("Qwen3-8B failed on Mac mini: model weights corrupt")
    cluster.drop_node(book)
    [snapshot] = await probes(exo_cluster, 1)
    assert [n.name for n in snapshot.cluster.nodes] == ["Mac mini"]
    assert snapshot.cluster.gone == {book: "MacBook Pro"}  # its identity stays, its memory goes


def test_the_fakes_shapes_parse_as_exo_states():
    cluster = FakeCluster(download_speed=1e9, layers_per_s=10)
    cluster.load_instance(LLAMA)
    cluster.place({"model_id": QWEN})
    for _ in range(40):
        cluster.step(0.05)
    seen = parse_cluster(cluster.state())
    qwen = seen.instance_of(QWEN)
    assert qwen is not None and qwen.phase in (Phase.DOWNLOADING, Phase.LOADING)
    assert all(d.state in (Transfer.ONGOING, Transfer.COMPLETED) for d in seen.downloads)
    ready, busy, _ = readiness(seen)
    assert ready == {LLAMA} and QWEN in busy


def test_placement_verdicts():
    api = ExoCluster()
    cluster = FakeCluster()
    status, body = cluster.placement(QWEN)
    fits = api.verdict(status, json.dumps(body).encode())
    assert fits.fits and len(fits.nodes) == 1
    status, body = cluster.placement(BIG)
    assert status == 400
    assert api.verdict(status, json.dumps(body).encode()).detail == "No cycles found with sufficient memory"
    assert api.place("http://n", QWEN).body == {"model_id": QWEN, "sharding": "Pipeline",
                                                  "instance_meta": "MlxRing", "min_nodes": 1}
    assert api.placement("http://n", QWEN).url == \
        "http://n/instance/placement?model_id=mlx-community%2FQwen3-8B-4bit"
    assert api.cancel("http://n", "chatcmpl-7c1e").url == "http://n/v1/cancel/7c1e"
    assert api.unload("http://n", "i-1").method == "DELETE"


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda children: st.lists(children, max_size=4)
                     | st.dictionaries(st.text(max_size=12), children, max_size=4), max_leaves=30)
_keys = st.sampled_from(["RunnerReady", "RunnerLoading", "RunnerFailed", "DownloadOngoing",
                         "MlxRingInstance", "shardAssignments", "modelId", "nodeToRunner",
                         "runnerToShard", "layersLoaded", "downloadProgress", "inBytes", "ramTotal",
                         "friendlyName", "errorMessage", "diagnostics", "total", "speed", "etaMs"])
_exo_like = st.recursive(st.none() | st.integers() | st.floats() | st.text(max_size=6),
                         lambda children: st.lists(children, max_size=3)
                         | st.dictionaries(_keys | st.text(max_size=4), children, max_size=4),
                         max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional={
    name: _exo_like for name in ("instances", "runners", "downloads", "nodeMemory", "nodeIdentities")}),
    _json)
def test_any_state_parses_without_raising(parts, listing):
    """A hostile or newer exo cannot break a probe: anything of another shape is skipped."""
    seen = parse_cluster(parts)
    readiness(seen)
    with contextlib.suppress(ValueError):  # "model list is not a list": "not an exo API"
        parse_catalogue(listing)
    api = ExoCluster()
    api.verdict(200, json.dumps(parts).encode())
    api.verdict(400, json.dumps(listing).encode())


async def test_one_odd_instances_answer_reads_the_whole_state_once_then_the_parts_again(exo_cluster):
    """A list (or a page) where /state/instances' object belongs is one probe's hiccup: that
    probe reads the whole /state, the next ones the parts again; only a 404 means an older exo."""
    answers = iter([b"[]", b"<html>exo</html>"])
    exo_cluster.tamper["/state/instances"] = lambda real: next(answers, None) or json.dumps(real).encode()
    found = await probes(exo_cluster, 5)
    assert all(s.ready == {LLAMA} for s in found)
    assert exo_cluster.hits["/state"] == 2  # the two odd answers' probes, no more
    assert exo_cluster.hits["/state/instances"] == 5


async def test_an_exo_without_parts_is_asked_for_them_again_after_a_while(exo_cluster, monkeypatch):
    from router.providers import exo as exo_module

    exo_cluster.exo_parts = False
    config = exo_config(exo_cluster)
    async with Router(config) as router:
        provider = config.provider("exo")
        await router.probe(provider)
        await router.probe(provider)
        assert exo_cluster.hits["/state/instances"] == 1 and exo_cluster.hits["/state"] == 2
        exo_cluster.exo_parts = True  # upgraded
        monkeypatch.setattr(exo_module, "PARTS_RECHECK_S", 0.0)
        await router.probe(provider)
        await router.probe(provider)
        assert exo_cluster.hits["/state/instances"] == 3 and exo_cluster.hits["/state"] == 2


class _Counted(tuple):  # type: ignore[type-arg]
    """A cluster's nodes (or downloads) that count how often they are gone through."""

    walks = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        _Counted.walks += 1
        return super().__iter__()


def _node_id(i: int) -> str:
    return f"12D3KooWNode{i:036d}"


def _cluster(count: int, start: int = 0, *, spanned: bool = False) -> Cluster:
    """``count`` nodes; with ``spanned``, Qwen3 8B on all of them, each runner waiting for its
    shard, which downloads on every node."""
    ids = [_node_id(i) for i in range(start, start + count)]
    nodes = _Counted(Node(n, f"node {n[-5:]}", 16 << 30, 12 << 30) for n in ids)
    if not spanned:
        return Cluster(nodes)
    runners = tuple(Runner(f"r-{n}", n, Phase.DOWNLOADING) for n in ids)
    downloads = _Counted(Download(n, QWEN, Transfer.ONGOING, 1 << 20, 1 << 30) for n in ids)
    return Cluster(nodes, (Instance("i-1", QWEN, runners),), downloads)


def test_twelve_thousand_nodes_are_taken_in_linearly():
    """Each probe's nodes are compared with the last probe's once, not once per node, and the
    downloads are summed once, not once per runner: 12,000 nodes stalled every /health for
    4.4 s per probe (bench/exo_nodes_bench.py has the figure)."""
    config = parse_config(
        '[[providers]]\nid = "exo"\nkind = "exo"\nbase_urls = ["http://127.0.0.1:1"]\n', "t")
    seen: list[NodeChanged | ClusterProblem] = []
    watch = ClusterWatch(config.provider("exo"), seen.append)
    watch.see(_cluster(10), 0.0)
    _Counted.walks = 0
    start = time.perf_counter()
    joined = watch.see(_cluster(12_000, spanned=True), 1.0)  # 11,990 join
    watch.see(_cluster(12_000, 6_000, spanned=True), 2.0)  # 6,000 leave, 6,000 join
    watch.see(_cluster(6_000, 12_000), 3.0)  # 6,000 more leave; exo unloaded the model
    elapsed = time.perf_counter() - start
    changes = [e for e in seen if isinstance(e, NodeChanged)]
    assert len(joined) == 11_990
    assert sum(e.joined for e in changes) == 11_990 + 6_000
    assert sum(not e.joined for e in changes) == 12_000
    assert QWEN in watch.lost and watch.lost[QWEN].node == _node_id(11_999)
    assert _Counted.walks <= 30  # a few walks a probe; before: one per node, one per runner
    assert elapsed < 5.0  # generous: about 0.2 s here; before: minutes
