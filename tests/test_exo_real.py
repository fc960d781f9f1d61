"""exo as it really is: exo's own API server and master (tests/real_exo.py runs
``shared/real_exo``), with a scripted cluster and a fake engine. Probes, placement and warming;
streaming and its comments (``: keep-alive``, ``: prefill_progress``); a long prefill that stays
on exo; the 404 that starts a warm at once; errors after the 200; a node leaving; a runner
failing; exo going away and coming back, said when it happens."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest

from desktop.notify import Debouncer, note_for
from desktop.status_model import Light, tray_view
from router import (
    ClusterProblem,
    HealthChanged,
    HealthState,
    ModelWarming,
    NodeChanged,
    Outcome,
    PromptProgress,
    Router,
    Stage,
    StreamBroken,
    Timing,
    parse_config,
)
from router.cli.stream import StreamPrinter
from router.providers.exo import Exo
from tests.conftest import config_text
from tests.fakes.provider import FakeProvider
from tests.real_exo import LLAMA_1B, MINI, QWEN_06B, one_node, sse_lines, two_nodes, until

pytestmark = pytest.mark.usefixtures("keys_in_env")

ALIASES = f"""
[models."llama-1b"]
exo = "{LLAMA_1B}"
openrouter = "meta-llama/llama-3.2-1b-instruct"

[models."qwen-0.6b"]
exo = "{QWEN_06B}"
openrouter = "qwen/qwen3-0.6b"
warm_on_exo = "always"
"""
NAMES = {"exo": "Exo Local", "openrouter": "OpenRouter", "huggingface": "Hugging Face"}


def ask(model: str, text: str = "hi") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def router_for(exo_url: str, openrouter: FakeProvider, hf: FakeProvider, *,
               first_token_s: float = 5.0, exo_extra: str = "", timing: Timing = Timing()) -> Router:
    text = config_text([exo_url], openrouter.base_url, hf.base_url, first_token_s=first_token_s,
                       exo_extra=exo_extra, extra=ALIASES)
    return Router(parse_config(text, "t"), timing=timing)


class Seen(list[Any]):
    def of(self, kind: type) -> list[Any]:
        return [e for e in self if isinstance(e, kind)]


# -- probes, placement, warming --------------------------------------------------------------
async def test_probes_placement_and_warming_against_exo_itself(real_exo, openrouter, hf):
    exo = real_exo(two_nodes())
    async with router_for(exo.url, openrouter, hf) as router:
        seen = Seen()
        router.subscribe(seen.append)
        router.companion.warm_probe_s = 0.2
        router.companion.start()
        snapshot = await router.probe(router.config.provider("exo"))
        assert snapshot.state is HealthState.HEALTHY and snapshot.ready == {LLAMA_1B}
        assert snapshot.models is not None and QWEN_06B in snapshot.models
        assert snapshot.cluster is not None
        assert {n.name for n in snapshot.cluster.nodes} == {"Mac Studio", "Mac mini"}
        assert snapshot.cluster.model_name(QWEN_06B) == "Qwen3 0.6B"

        answer = await router.chat(ask("llama-1b"))
        assert (answer.provider_used, answer.text, answer.cost_source) == \
            ("exo", "Hello from real exo.", "free")

        warming = await router.companion.warm("qwen-0.6b")
        assert warming.stage is Stage.PLACING
        done = await router.companion.wait("qwen-0.6b", 20)
        assert done.stage is Stage.READY
        places = [c for c in await exo.commands() if c["type"] == "PlaceInstance"]
        assert [c["model"] for c in places] == [LLAMA_1B, QWEN_06B]  # the state's, then ours
        paths = [r["path"].split("?")[0] for r in await exo.requests()]
        assert paths.index("/instance/placement") < paths.index("/place_instance")  # dry run first
        assert (await router.chat(ask("qwen-0.6b"))).provider_used == "exo"


# -- streaming and its comments --------------------------------------------------------------
async def test_exo_streams_comments_that_the_fake_exo_sends_alike(real_exo, exo):
    """The SSE as exo frames it: ``: keep-alive`` first, ``: prefill_progress`` tagged
    ``PrefillProgressChunk`` before the first token, ``[DONE]`` last; our fake sends the same."""
    real = real_exo(one_node(prefill_steps=3, prefill_delay=0.3))
    body = {"model": LLAMA_1B, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    real_lines = [line async for line in sse_lines(f"{real.url}/v1/chat/completions", body)]
    fake_lines = [line async for line in sse_lines(f"{exo.origin}/v1/chat/completions",
                                                   {**body, "model": exo.models[0]})]
    adapter = Exo()
    for lines in (real_lines, fake_lines):
        events = [line for line in lines if line]
        assert events[0] == b": keep-alive"
        progress = [adapter.prompt_read(line.removeprefix(b": prefill_progress "))
                    for line in events if line.startswith(b": prefill_progress ")]
        assert progress and all(p is not None for p in progress)
        assert progress[-1] is not None and progress[-1].percent == 100
        first_data = next(i for i, line in enumerate(events) if line.startswith(b"data:"))
        assert all(line.startswith(b":") for line in events[:first_data])
        assert events[-1] == b"data: [DONE]"
        assert events[-2].startswith(b": generation_stats {")
    # the chunks' shape: the role in every delta, no null fields, the last token ends it
    for lines in (real_lines, fake_lines):
        chunks = [json.loads(line[5:]) for line in lines
                  if line.startswith(b"data: {")]
        assert chunks[0]["object"] == "chat.completion" and chunks[0]["choices"][0]["delta"]["content"]
        assert all(c["choices"][0]["delta"]["role"] == "assistant" for c in chunks)
        assert all("finish_reason" not in c["choices"][0] for c in chunks[:-1])
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and "usage" in chunks[-1]
        assert chunks[-1]["choices"][0]["delta"]["content"]


def _shape(value: Any, depth: int = 0) -> Any:
    """A JSON value's shape: keys (ids and model ids as ``<id>``), item shapes, type names."""
    if isinstance(value, dict):
        if depth > 6:
            return "{...}"
        return {("<id>" if "/" in k or (len(k) >= 20 and not k[:1].isupper()) else k):
                _shape(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0], depth + 1)] if value else []
    return type(value).__name__


async def test_the_fake_exo_answers_in_exo_s_own_shapes(real_exo, exo_cluster):
    """What our probes and control requests read, from exo and from tests/fakes' exo: the same
    shapes (real exo wins: a difference here is the fake's to fix)."""
    import aiohttp

    real = real_exo(two_nodes())
    fake_qwen, fake_llama = "mlx-community/Qwen3-8B-4bit", "mlx-community/Llama-3.2-3B-Instruct-4bit"
    paths = ["/node_id", "/state/instances", "/state/runners", "/state/nodeMemory",
             "/state/nodeIdentities", "/v1/models", "/instance/placement?model_id={qwen}"]
    async with aiohttp.ClientSession() as http:
        for path in paths:
            answers = []
            for origin, qwen in ((real.url, QWEN_06B), (exo_cluster.origin, fake_qwen)):
                async with http.get(origin + path.format(qwen=qwen)) as answer:
                    answers.append((answer.status, _shape(await answer.json(content_type=None))))
            assert answers[0] == answers[1], path
        no_instance = []
        for origin, model in ((real.url, QWEN_06B), (exo_cluster.origin, fake_qwen)):
            body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True}
            async with http.post(f"{origin}/v1/chat/completions", json=body) as answer:
                no_instance.append((answer.status, await answer.json(content_type=None)))
        assert no_instance[0][0] == no_instance[1][0] == 404
        assert no_instance[0][1]["error"].keys() == no_instance[1][1]["error"].keys()
        assert no_instance[1][1]["error"]["message"] == f"No instance found for model {fake_qwen}"
    assert fake_llama in exo_cluster.exo_ready()


async def test_a_long_prefill_is_answered_by_exo_and_shown(real_exo, openrouter, hf):
    """A prompt exo reads for three times the first-token deadline, reporting progress all the
    while, is answered by exo (free), and ``ask --stream`` shows how far it has read."""
    exo = real_exo(one_node(prefill_steps=12, prefill_delay=3.0))
    async with router_for(exo.url, openrouter, hf, first_token_s=1.0) as router:
        seen = Seen()
        router.subscribe(seen.append)
        err = io.StringIO()
        printer = StreamPrinter(router, echo=False, err=err)
        started = time.monotonic()
        result = await printer.answer(ask("llama-1b", "a long document " * 50))
        assert result.provider_used == "exo" and result.cost_source == "free"
        assert time.monotonic() - started > 2.5  # the prompt really took longer than 1 s
        assert openrouter.chat_requests == []  # nothing paid
        progress = seen.of(PromptProgress)
        assert len(progress) >= 6 and progress[-1].percent == 100
        assert [p.done for p in progress] == sorted({p.done for p in progress})
        assert {p.request_id for p in progress} == {result.request_id}  # this request's
        shown = err.getvalue().splitlines()
        assert "Exo Local: reading the prompt 100%" in shown
        assert any(line.startswith("Exo Local: reading the prompt ") and not line.endswith(" 100%")
                   for line in shown)


async def test_a_prefill_that_stands_still_or_runs_past_its_limit_goes_on(real_exo, openrouter, hf):
    exo = real_exo(one_node(prefill_steps=1, prefill_delay=0.01, stall=3.0))
    async with router_for(exo.url, openrouter, hf, first_token_s=1.0,
                          exo_extra="prefill_timeout_s = 2.0") as router:
        # the prompt read at once, then nothing: the first-token deadline holds
        stalled = await router.chat(ask("llama-1b"))
        assert stalled.provider_used == "openrouter"
        assert stalled.attempts[0].outcome is Outcome.TIMEOUT
        assert stalled.attempts[0].detail == "the prompt was read, then no first token for 1s"
        # progress throughout, but longer than prefill_timeout_s: its limit holds
        await exo.ops({"op": "engine", "model": "*", "stall": 0.0, "prefill_steps": 20,
                       "prefill_delay": 6.0})
        router.forget_health()
        slow = await router.chat(ask("llama-1b"))
        assert slow.provider_used == "openrouter"
        assert slow.attempts[0].outcome is Outcome.TIMEOUT
        assert "after 2s (prefill_timeout_s)" in slow.attempts[0].detail


# -- the 404 that starts a warm --------------------------------------------------------------
async def test_the_request_that_meets_no_instance_starts_a_warm_at_once(real_exo, openrouter, hf):
    state = one_node()
    state["instances"].append({"model": QWEN_06B, "runner_status": "Ready"})
    exo = real_exo(state)
    async with router_for(exo.url, openrouter, hf) as router:
        seen = Seen()
        router.subscribe(seen.append)
        router.companion.warm_probe_s = 0.2
        router.companion.start()  # no background probes: only requests look at exo
        assert QWEN_06B in (await router.probe(router.config.provider("exo"))).ready
        await exo.ops({"op": "delete_instance", "model": QWEN_06B})  # exo unloaded it since
        await until(lambda: _no_instance(exo), 10, "the instance's removal")
        answer = await router.chat(ask("qwen-0.6b"))
        assert answer.provider_used == "openrouter"
        assert answer.attempts[0].called and answer.attempts[0].outcome is Outcome.MODEL_UNAVAILABLE
        assert "No instance found" in answer.attempts[0].detail
        await until(lambda: any(isinstance(e, ModelWarming) and e.stage is Stage.PLACING
                                and e.model == QWEN_06B for e in seen), 10, "a warm")
        await until(lambda: any(isinstance(e, ModelWarming) and e.stage is Stage.READY
                                for e in seen), 20, "the model ready")
        assert (await router.chat(ask("qwen-0.6b"))).provider_used == "exo"


async def _no_instance(exo) -> bool:
    summary = await exo.summary()
    return all(i["model"] != QWEN_06B for i in summary["instances"].values())


# -- errors after the 200 --------------------------------------------------------------------
async def test_an_error_after_the_200(real_exo, openrouter, hf):
    """exo's ``data: {"error": ...}`` after two tokens: a whole answer fails over (nothing was
    shown); a stream is cut, and ``ask --stream`` says what arrived, that it broke, from whom."""
    exo = real_exo(one_node(error_after=2))
    async with router_for(exo.url, openrouter, hf) as router:
        whole = await router.chat(ask("llama-1b"))
        assert whole.provider_used == "openrouter"
        assert whole.attempts[0].outcome is Outcome.STREAM_CUT  # after content: cut, not served
        assert "Simulated engine error" in whole.attempts[0].detail

        out, err = io.StringIO(), io.StringIO()
        printer = StreamPrinter(router, echo=True, out=out, err=err)
        with pytest.raises(StreamBroken) as broken:
            await printer.answer(ask("llama-1b"))
        assert out.getvalue() == "Hello from\n"  # the partial answer, then a line's end
        said = printer.broken(broken.value)
        assert "incomplete" in said and "Exo Local" in said and "10 characters" in said
        assert "Simulated engine error" in said and "no answer" not in said
        assert len(openrouter.chat_requests) == 1  # the stream was not sent on to the cloud


async def test_ask_stream_prints_the_broken_stream_plainly(real_exo, openrouter, hf, capsys):
    from router.cli.main import EXIT_UNANSWERED, _ask_with

    exo = real_exo(one_node(error_after=2))
    code = await _ask_with(router_for(exo.url, openrouter, hf), ask("llama-1b"), stream=True,
                           as_json=False)
    out, err = capsys.readouterr()
    assert code == EXIT_UNANSWERED
    assert out == "Hello from\n"
    assert "StreamBroken" not in err and "no answer" not in err
    assert "the answer above is incomplete: Exo Local's stream broke after 10 characters" in err


# -- a node leaving, a runner failing --------------------------------------------------------
async def test_a_node_leaving_and_a_runner_failing(real_exo, openrouter, hf):
    state = two_nodes()
    state["instances"].append({"model": QWEN_06B, "runner_status": "Ready", "nodes": [MINI]})
    exo = real_exo(state)
    async with router_for(exo.url, openrouter, hf) as router:
        seen = Seen()
        router.subscribe(seen.append)
        router.companion.start()
        provider = router.config.provider("exo")
        await router.probe(provider)
        await exo.ops({"op": "node_down", "node": MINI})
        await until(lambda: _probed_until(router, provider, lambda: seen.of(NodeChanged)), 15,
                    "the node's leaving")
        [left] = seen.of(NodeChanged)
        assert (left.name, left.joined) == ("Mac mini", False)

        await exo.ops({"op": "runner_status", "model": LLAMA_1B, "status": "Failed",
                       "error_message": "Metal ran out of memory"})
        await until(lambda: _probed_until(router, provider, lambda: any(
            e.problem.model == LLAMA_1B for e in seen.of(ClusterProblem))), 15, "the failed runner")
        problem = next(e.problem for e in seen.of(ClusterProblem) if e.problem.model == LLAMA_1B)
        assert "Metal ran out of memory" in problem.reason and problem.node_name == "Mac Studio"
        answer = await router.chat(ask("llama-1b"))
        assert answer.provider_used == "openrouter"  # not sent to a failed runner


async def _probed_until(router: Router, provider, found) -> bool:
    await router.probe(provider)
    return bool(found())


# -- exo going away, said when it happens ----------------------------------------------------
async def test_exo_going_offline_and_coming_back_is_said_at_once(real_exo, openrouter, hf):
    exo = real_exo(one_node())
    timing = Timing(exo_probe_interval_s=0.25, cloud_probe_interval_s=3600)
    async with router_for(exo.url, openrouter, hf, timing=timing) as router:
        seen = Seen()
        router.subscribe(seen.append)
        debouncer = Debouncer()
        said: list[tuple[float, str]] = []

        def notify(event: object) -> None:
            note = note_for(event, NAMES)
            if note is not None and debouncer.offer(note):
                said.append((time.monotonic(), note.title))

        router.subscribe(notify)
        router.start_probes()
        provider = router.config.provider("exo")
        await until(lambda: router.health[provider.id].snapshot is not None, 10, "a probe")
        gone = time.monotonic()
        exo.down()
        await until(lambda: any(t == "Exo Local went offline" for _, t in said), 5, "offline said")
        offline_at = next(at for at, t in said if t == "Exo Local went offline")
        assert offline_at - gone < 2.0
        assert tray_view(router.statuses()).light is Light.YELLOW  # with the note, not later
        assert (await router.chat(ask("llama-1b"))).provider_used == "openrouter"
        exo.start(one_node())  # the same port again (this blocks the loop until exo is ready)
        back = time.monotonic()
        await until(lambda: any(t.startswith("Exo Local is back") for _, t in said), 10, "back said")
        back_at = next(at for at, t in said if t.startswith("Exo Local is back"))
        assert back_at - back < 2.0  # at the next probe
        await until(lambda: said[-1][1] == "Exo Local is back — requests are free again", 10,
                    "requests free again")
        assert tray_view(router.statuses()).light is Light.GREEN
        titles = [t for _, t in said]  # "is back" (no model ready yet) may come first, once
        assert titles[0] == "Exo Local went offline" and len(titles) <= 3
        assert all(t.startswith("Exo Local is back") for t in titles[1:])
        changes = [e for e in seen.of(HealthChanged) if e.provider == "exo"]
        assert changes[0].new_state is HealthState.DOWN and changes[-1].recovered


# -- the chat window -------------------------------------------------------------------------
async def test_the_chat_window_shows_how_far_exo_has_read_the_prompt(qapp, real_exo, openrouter, hf):
    from desktop.bridge import Bridge
    from desktop.windows.chat import ChatWindow, Turn

    exo = real_exo(one_node(prefill_steps=10, prefill_delay=2.5))
    async with router_for(exo.url, openrouter, hf, first_token_s=1.0) as router:
        bridge = Bridge(router)
        window = ChatWindow(bridge)
        window.model.setCurrentText("llama-1b")
        try:
            window.ask(Turn("a long document " * 50))
            shown: list[str] = []

            def reading() -> bool:
                if window.turns[0].reading:
                    window.redraw()
                    shown.append(window.transcript.toPlainText())
                return len({s for s in shown if "Exo Local: reading the prompt" in s}) >= 2

            await until(reading, 10, "the prompt's progress shown")
            await until(lambda: window.task is None, 10, "the answer")
            turn = window.turns[0]
            assert turn.answer == "Hello from real exo." and turn.reading == ""
            assert turn.footer.startswith("Exo Local")
            assert "reading the prompt" not in window.transcript.toPlainText()
            assert openrouter.chat_requests == []
        finally:
            window.stop()
            await until(lambda: window.task is None, 10, "the window's task")
            window.close()
            bridge.close()
            window.deleteLater()
            bridge.deleteLater()
            qapp.processEvents()


async def test_a_runner_crashing_mid_answer(real_exo, openrouter, hf):
    """The runner dies after a token (exo: an ErrorChunk, then RunnerFailed): the answer goes to
    the cloud, and the failed runner is named, by model and node, for a reload."""
    exo = real_exo(one_node(crash_after=1))
    async with router_for(exo.url, openrouter, hf) as router:
        seen = Seen()
        router.subscribe(seen.append)
        router.companion.start()
        answer = await router.chat(ask("llama-1b"))
        assert answer.provider_used == "openrouter"
        assert answer.attempts[0].provider == "exo" and answer.attempts[0].called
        assert answer.attempts[0].outcome in (Outcome.STREAM_CUT, Outcome.SERVER_ERROR)
        provider = router.config.provider("exo")
        await until(lambda: _probed_until(router, provider, lambda: any(
            e.problem.model == LLAMA_1B and not e.cleared for e in seen.of(ClusterProblem))), 15,
            "the crashed runner named")
        problem = next(e.problem for e in seen.of(ClusterProblem) if e.problem.model == LLAMA_1B)
        assert problem.node_name == "Mac Studio" and problem.reason
