"""The exo companion against the simulated cluster: a model warmed on exo while the cloud answers,
then back to free; consent (warm_on_exo); a model that cannot fit; exo's silent placement
failure; stuck models named (failed runner, loading that stopped, a node gone, first-token
misses); reload and unload; exo's cancel when a caller stops."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from router import (
    ClusterActionFailed,
    ClusterProblem,
    ModelWarming,
    NodeChanged,
    Router,
    Stage,
    parse_config,
)
from tests.conftest import config_text, quiet
from tests.fakes.exo_cluster import BIG, LLAMA, QWEN, FakeNode
from tests.fakes.provider import FakeProvider

pytestmark = pytest.mark.usefixtures("keys_in_env")

MODELS = f"""
[models."qwen3-8b"]
exo = "{QWEN}"
openrouter = "qwen/qwen3-8b"
warm_on_exo = "{{qwen}}"

[models."llama-3.3-70b"]
exo = "{BIG}"
openrouter = "meta-llama/llama-3.3-70b-instruct"
warm_on_exo = "always"
"""


def ask(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}]}


class Seen:
    """The router's events, and a wait for one."""

    def __init__(self, router: Router):
        self.events: list[Any] = []
        router.subscribe(self.events.append)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def until(self, test: Callable[[Any], bool], timeout: float = 15.0) -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = next((e for e in self.events if test(e)), None)
            if found is not None:
                return found
            await asyncio.sleep(0.02)
        raise AssertionError(f"not seen within {timeout}s; saw "
                             f"{[type(e).__name__ for e in self.events]}")


def stage(model: str, wanted: Stage) -> Callable[[Any], bool]:
    return lambda e: isinstance(e, ModelWarming) and e.model == model and e.stage is wanted


@pytest.fixture
async def running(exo_cluster: FakeProvider, openrouter: FakeProvider,
                  hf: FakeProvider) -> AsyncIterator[Callable[..., Any]]:
    """running(qwen="always", first_token_s=2.0) -> a Router over the cluster (its companion on,
    probing every 0.1 s while a model warms) and what it emits."""
    made: list[Router] = []

    async def build(qwen: str = "always", first_token_s: float = 2.0) -> tuple[Router, Seen]:
        text = config_text([exo_cluster.origin], openrouter.base_url, hf.base_url,
                           first_token_s=first_token_s, extra=MODELS.format(qwen=qwen))
        router = Router(parse_config(text, "t"))
        await router.__aenter__()
        made.append(router)
        router.companion.warm_probe_s = 0.1
        router.companion.start()
        return router, Seen(router)

    yield build
    for router in made:
        await router.aclose()


async def test_a_model_warms_on_exo_while_the_cloud_answers_then_back_to_free(running, exo_cluster,
                                                                              openrouter):
    router, seen = await running()
    started = time.monotonic()
    first = await router.chat(ask("qwen3-8b"))
    assert first.provider_used == "openrouter"
    assert (first.attempts[0].provider, first.attempts[0].outcome) == ("exo", "model-unavailable")
    ready = await seen.until(stage(QWEN, Stage.READY))
    after = await router.chat(ask("qwen3-8b"))
    took = time.monotonic() - started
    assert after.provider_used == "exo" and after.cost_source == "free"
    assert ready.name == "Qwen3 8B"
    stages = [e.stage for e in seen.of(ModelWarming)]
    assert stages[0] is Stage.PLACING and stages[-1] is Stage.READY
    assert Stage.DOWNLOADING in stages and Stage.LOADING in stages
    paths = [r.path for r in exo_cluster.requests if not r.path.startswith(("/state", "/node_id"))]
    assert paths.index("/instance/placement") < paths.index("/place_instance")  # dry run first
    assert exo_cluster.cluster.placed == [{"model_id": QWEN, "sharding": "Pipeline",
                                           "instance_meta": "MlxRing", "min_nodes": 1}]
    assert took < 10
    assert router.companion.warmings() == []  # done


async def test_ask_offers_once_and_warms_when_the_user_says_yes(running, exo_cluster):
    router, seen = await running(qwen="ask")
    since = set(router._tasks)
    for _ in range(3):
        assert (await router.chat(ask("qwen3-8b"))).provider_used == "openrouter"
    offer = await seen.until(stage(QWEN, Stage.OFFERED))
    await quiet(router, since)  # all that the three requests set off has happened
    assert len(seen.of(ModelWarming)) == 1  # one offer, however many requests
    assert "on Mac mini" in offer.detail and "GB" in offer.detail
    assert exo_cluster.cluster.placed == []
    [warming] = router.companion.warmings()
    assert warming.stage is Stage.OFFERED
    await router.companion.warm("qwen3-8b")
    await seen.until(stage(QWEN, Stage.READY))
    assert (await router.chat(ask("qwen3-8b"))).provider_used == "exo"


async def test_never_leaves_the_cluster_alone(running, exo_cluster):
    router, seen = await running(qwen="never")
    since = set(router._tasks)
    await router.chat(ask("qwen3-8b"))
    await quiet(router, since)
    assert "/instance/placement" not in exo_cluster.hits and seen.of(ModelWarming) == []


async def test_a_model_that_cannot_fit_says_why_and_is_not_tried_again(running, exo_cluster):
    router, seen = await running()
    for _ in range(3):
        assert (await router.chat(ask("llama-3.3-70b"))).provider_used == "openrouter"
        await asyncio.sleep(0.1)
    failed = await seen.until(stage(BIG, Stage.FAILED))
    assert failed.detail.startswith("No cycles found with sufficient memory: it needs 39.7 GB; free: "
                                    "Mac mini ")
    assert "MacBook Pro 5.4 GB of 8.6 GB" in failed.detail
    assert exo_cluster.hits["/instance/placement"] == 1 and exo_cluster.cluster.placed == []
    # a node joins: the next request tries once more (and now it fits)
    cluster = exo_cluster.cluster
    studio = FakeNode("12D3KooWStudio00000000000000000000000000000000003", "Mac Studio", 64 << 30, 60 << 30)
    cluster.nodes[studio.id] = studio
    cluster.identities[studio.id] = {"friendlyName": "Mac Studio"}
    await router.probe(router.config.provider("exo"))
    joined = await seen.until(lambda e: isinstance(e, NodeChanged) and e.joined)
    assert joined.name == "Mac Studio"
    await router.chat(ask("llama-3.3-70b"))
    await seen.until(stage(BIG, Stage.PLACING))
    assert exo_cluster.hits["/instance/placement"] == 2


async def test_exos_silent_placement_failure_is_named(running, exo_cluster):
    exo_cluster.cluster.silent_placement = True  # 200, then nothing (exo only logs it)
    router, seen = await running()
    router.companion.place_wait_s = 0.5
    await router.chat(ask("qwen3-8b"))
    failed = await seen.until(stage(QWEN, Stage.FAILED))
    assert failed.detail == "exo accepted the placement but never created it (exo's log says why)"
    since = set(router._tasks)
    await router.chat(ask("qwen3-8b"))
    await quiet(router, since)
    assert len(exo_cluster.cluster.placed) == 1  # not placed again in a loop


async def test_a_failing_runner_is_named_then_exo_gives_up(running, exo_cluster):
    cluster = exo_cluster.cluster
    cluster.fail_load, cluster.retry_s = "Out of memory while loading weights", 0.02
    router, seen = await running()
    await router.chat(ask("qwen3-8b"))
    problem = (await seen.until(lambda e: isinstance(e, ClusterProblem))).problem
    assert (problem.name, problem.node_name) == ("Qwen3 8B", "Mac mini")
    assert problem.reason.startswith("runner failed: Out of memory while loading weights")
    failed = await seen.until(stage(QWEN, Stage.FAILED))
    assert failed.detail.startswith("exo removed it after failed starts (Mac mini: Out of memory")
    assert QWEN not in {i.model for i in cluster.instances.values()}  # after 5 starts


async def test_loading_that_stopped_moving_is_named(running, exo_cluster):
    exo_cluster.cluster.stuck_at_layer = 5
    exo_cluster.cluster.layers_per_s = 50
    router, seen = await running()
    router.companion.stuck_after_s = 0.5
    await router.chat(ask("qwen3-8b"))
    problem = (await seen.until(lambda e: isinstance(e, ClusterProblem))).problem
    assert problem.kind == "stuck" and problem.node_name == "Mac mini"
    assert problem.reason.startswith("loading stuck at 5/36 layers for ")
    assert [p.kind for p in router.companion.problems()] == ["stuck"]


async def test_a_node_that_drops_out_and_comes_back_is_told(running, exo_cluster):
    router, seen = await running()
    exo = router.config.provider("exo")
    await router.probe(exo)
    mini = next(n for n in exo_cluster.cluster.nodes.values() if n.name == "Mac mini")
    exo_cluster.cluster.drop_node(mini.id)
    await router.probe(exo)
    left = await seen.until(lambda e: isinstance(e, NodeChanged) and not e.joined)
    assert left.name == "Mac mini"
    lost = (await seen.until(lambda e: isinstance(e, ClusterProblem))).problem
    assert (lost.model, lost.node_name, lost.instance) == (LLAMA, "Mac mini", None)
    assert lost.reason == "node Mac mini dropped out of the cluster; exo unloaded the model"
    result = await router.chat(ask("llama-3.2-3b"))
    assert result.provider_used == "openrouter"
    exo_cluster.cluster.revive_node(mini.id)
    await router.probe(exo)
    back = await seen.until(lambda e: isinstance(e, NodeChanged) and e.joined)
    assert back.name == "Mac mini"


async def test_first_token_misses_in_a_row_are_named(running, exo_cluster):
    exo_cluster.fault, exo_cluster.stall_s = "stall_after_headers", 1.0
    router, seen = await running(first_token_s=0.3)
    for _ in range(3):
        result = await router.chat(ask("llama-3.2-3b"))
        assert result.attempts[0].outcome == "timeout"
    problem = (await seen.until(lambda e: isinstance(e, ClusterProblem))).problem
    assert problem.kind == "timeouts" and problem.name == "Llama 3.2 3B"
    assert problem.reason == "3 requests in a row got no first token within 0.3 s"


async def test_reload_and_unload(running, exo_cluster):
    cluster = exo_cluster.cluster
    cluster.fail_load, cluster.retry_s = "Metal GPU timeout", 5.0
    router, seen = await running(qwen="never")
    await router.check_all()
    await router.companion.warm("qwen3-8b")
    await seen.until(lambda e: isinstance(e, ClusterProblem))
    cluster.fail_load = None  # whatever broke is fixed: reload
    first = next(iter(i.id for i in cluster.instances.values() if i.model == QWEN))
    await router.companion.reload("qwen3-8b")
    assert cluster.deleted == [first]
    await seen.until(stage(QWEN, Stage.READY))
    assert (await router.chat(ask("qwen3-8b"))).provider_used == "exo"
    await router.companion.unload("qwen3-8b")
    assert QWEN not in {i.model for i in cluster.instances.values()}
    with pytest.raises(ClusterActionFailed, match="Qwen3 8B is not loaded on Exo Local"):
        await router.companion.unload("qwen3-8b")


async def test_unloaded_by_the_user_is_not_warmed_again_unasked(running, exo_cluster):
    router, seen = await running()
    await router.chat(ask("qwen3-8b"))
    await seen.until(stage(QWEN, Stage.READY))
    await router.companion.unload("qwen3-8b")
    since = set(router._tasks)
    assert (await router.chat(ask("qwen3-8b"))).provider_used == "openrouter"
    await quiet(router, since)
    assert len(exo_cluster.cluster.placed) == 1


async def test_stopping_a_local_answer_cancels_it_on_exo(running, exo_cluster):
    exo_cluster.chunk_delay_s = 1.0  # a slow generation: exo writes (and notices a hang-up) late
    router, _ = await running()
    async with router.stream(ask("llama-3.2-3b")) as stream:
        async for chunk in stream:
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                completion = chunk["id"]
                break
    for _ in range(100):
        if exo_cluster.cluster.cancelled:
            break
        await asyncio.sleep(0.02)
    assert completion.startswith("chatcmpl-")
    assert exo_cluster.cluster.cancelled == [completion.removeprefix("chatcmpl-")]
    assert f"/v1/cancel/{exo_cluster.cluster.cancelled[0]}" in exo_cluster.hits


async def test_warm_names_what_the_cluster_does_not_list(running):
    router, _ = await running()
    await router.check_all()
    with pytest.raises(ClusterActionFailed, match="no local cluster that answered lists 'gpt-9'"):
        await router.companion.warm("gpt-9")


async def test_two_processes_on_one_cluster_place_a_model_once(running, exo_cluster):
    tray, seen_tray = await running()
    serve, seen_serve = await running()
    for router in (tray, serve):
        await router.check_all()  # both saw the cluster without Qwen3 8B
    await tray.chat(ask("qwen3-8b"))
    await seen_tray.until(stage(QWEN, Stage.PLACING))
    await serve.chat(ask("qwen3-8b"))  # its last look is older than the placement
    await seen_serve.until(stage(QWEN, Stage.READY))
    assert len(exo_cluster.cluster.placed) == 1


async def test_an_offer_declined_is_not_made_again(running, exo_cluster):
    router, seen = await running(qwen="ask")
    await router.chat(ask("qwen3-8b"))
    await seen.until(stage(QWEN, Stage.OFFERED))
    router.companion.decline(QWEN)
    assert router.companion.warmings() == []
    since = set(router._tasks)
    await router.chat(ask("qwen3-8b"))
    await quiet(router, since)
    assert len(seen.of(ModelWarming)) == 1 and exo_cluster.hits["/instance/placement"] == 1


async def test_an_offer_for_a_model_placed_by_hand_goes_away(running, exo_cluster):
    router, seen = await running(qwen="ask")
    await router.chat(ask("qwen3-8b"))
    await seen.until(stage(QWEN, Stage.OFFERED))
    exo_cluster.cluster.place({"model_id": QWEN})  # from exo's dashboard
    await router.probe(router.config.provider("exo"))
    assert router.companion.warmings() == []
