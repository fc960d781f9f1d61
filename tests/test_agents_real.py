"""Claude Code and Codex CLI, installed from npm, as real clients of the endpoint (issue 26): with
nothing but the README's settings (base URL, token, a model alias), a tool run by the agent and
its result read back, through exo and through the cloud when exo is down; a wrong token or an
unknown model said at once. Every request they send is recorded; its shape must be one of the
fixtures in tests/agents/fixtures (each replayed without npm by tests/test_agent_requests.py).

Slow (each run starts an agent). Skipped only when npm is missing; CI installs the agents
first (.ci/run). Re-record the fixtures after a version bump in tests/agents/install.sh:
``EXO_BRIDGE_RECORD_AGENT_FIXTURES=1 pytest tests/test_agents_real.py``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from router import Router
from router.endpoint.server import EndpointServer
from router.keys import Secret
from tests.agents import harness
from tests.agents.outside import ClosedProxy
from tests.agents.recorder import Exchange, Recorder
from tests.endpoint_fixtures import TOKEN
from tests.fakes.provider import FakeProvider

pytestmark = pytest.mark.usefixtures("keys_in_env")
MODEL = "llama-3.2-3b"
# A GPT-5-like alias: Codex then sends apply_patch as a freeform (custom, grammar) tool.
GPT_LIKE = "gpt-5.5"
ALIASES = (f'[models."{GPT_LIKE}"]\nexo = "mlx-community/Llama-3.2-3B-Instruct-4bit"\n'
           'openrouter = "meta-llama/llama-3.2-3b-instruct"\n')
# What the agents try to reach besides the endpoint (refused here; they work without it): Codex
# CLI's plugin and skill lists (GitHub) and its ChatGPT-side features. Claude Code, with
# CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1, tries nothing.
OUTSIDE = {"github.com:443", "api.github.com:443", "chatgpt.com:443"}
SECRET = "the secret is 4242-zebra"
ANSWER = "The tool said: {result}"


@pytest.fixture(scope="session")
def agents() -> Path:
    try:
        return harness.install()
    except harness.AgentsMissing as exc:
        pytest.skip(str(exc))


@dataclass
class Backend:
    server: EndpointServer
    recorder: Recorder
    proxy: ClosedProxy
    home: Path
    work: Path
    bin: Path
    exo: FakeProvider
    openrouter: FakeProvider
    name: str
    runs: list[harness.Run] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return harness.base_env(self.home, self.proxy.url)

    async def claude(self, prompt: str, *args: str, token: str = TOKEN,
                     model: str = MODEL) -> harness.Run:
        env = harness.claude_env(self.env(), self.recorder.origin, token, model)
        done = await harness.run([str(self.bin / "claude"), "-p", prompt, *args], env, self.work)
        self.runs.append(done)
        return done

    async def codex(self, prompt: str, *args: str, model: str | None = MODEL) -> harness.Run:
        codex_home = harness.codex_config(self.home, self.recorder.origin + "/v1", model)
        env = {**self.env(), "CODEX_HOME": str(codex_home), "EXO_BRIDGE_TOKEN": TOKEN}
        done = await harness.run([str(self.bin / "codex"), "exec", "--skip-git-repo-check",
                                  *args, prompt], env, self.work)
        self.runs.append(done)
        return done

    def agent_turn(self, name: str, arguments: dict[str, Any]) -> None:
        """Every provider answers the agent's request with this tool call, then with the
        result it got back."""
        for fake in (self.exo, self.openrouter):
            fake.tool_calls = [(name, json.dumps(arguments))]
            fake.after_tool = ANSWER

    def sent(self) -> list[Exchange]:
        return [e for e in self.recorder.exchanges if e.path.startswith("/v1/")]


@pytest.fixture
async def backend(request: pytest.FixtureRequest, agents: Path, make_config, exo: FakeProvider,
                  openrouter: FakeProvider, hf: FakeProvider,
                  tmp_path: Path) -> AsyncIterator[Backend]:
    config, _ = make_config(first_token_s=10, idle_s=10, extra=ALIASES)
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (work / "secret.txt").write_text(SECRET + "\n")
    async with Router(config) as router:
        for provider in router.config.providers:  # the model lists known: unknown is a 404
            await router.probe(provider)
            await router.pricer.refresh(await router.http(), provider)
        server = EndpointServer(router, token=Secret(TOKEN), port=0)
        await server.start()
        recorder = Recorder(f"http://127.0.0.1:{server.port}")
        proxy = ClosedProxy()
        await recorder.start()
        await proxy.start()
        name = re.sub(r"[^a-z0-9]+", "-", request.node.name.removeprefix("test_")).strip("-")
        state = Backend(server, recorder, proxy, home, work, agents / "node_modules" / ".bin",
                        exo, openrouter, name)
        try:
            yield state
        finally:
            await proxy.stop()
            await recorder.stop()
            await server.stop()
    _record_or_check(state)


def _record_or_check(state: Backend) -> None:
    """Every request the agent sent has a recorded shape (or, when recording, is saved)."""
    sent = state.sent()
    if os.environ.get(harness.RECORD_ENV) == "1":
        harness.save_fixture(state.name, [harness.fixture_entry(e.method, e.path, e.headers, e.body)
                                          for e in sent])
        return
    known = {harness.shape(entry["path"], entry["body"])
             for entries in harness.load_fixtures().values() for entry in entries}
    new = [harness.shape(e.path, e.body) for e in sent
           if harness.shape(e.path, e.body) not in known]
    assert not new, (f"a request shape no fixture has: {new}; record them "
                     f"({harness.RECORD_ENV}=1) and keep a test for each")


def _said(run: harness.Run) -> str:
    return f"exit {run.returncode} after {run.seconds:.1f}s\n{run.output[-3000:]}"


# -- Claude Code -------------------------------------------------------------------------------
async def test_claude_code_reads_a_file_through_exo(backend: Backend) -> None:
    backend.agent_turn("Read", {"file_path": str(backend.work / "secret.txt")})
    done = await backend.claude("What does secret.txt say?")
    assert done.returncode == 0 and SECRET in done.stdout, _said(done)
    assert "recognize the model" not in done.output, _said(done)  # its window is configured
    sent = backend.sent()
    assert [e.status for e in sent] == [200, 200], [(e.path, e.status) for e in sent]
    assert all(e.path.startswith("/v1/messages") for e in sent)
    assert all(e.response_headers.get("x-exo-bridge-provider") == "exo" for e in sent)
    # the tool's result went back to the model: the second request holds it
    assert len(backend.exo.chat_requests) == 2
    tool_messages = [m for m in backend.exo.chat_requests[1].body["messages"] if m["role"] == "tool"]
    assert SECRET in tool_messages[-1]["content"]
    # Claude Code puts system entries inside messages; they reach the model where they were
    roles = [m.get("role") for m in sent[1].body["messages"]]
    chat_roles = [m["role"] for m in backend.exo.chat_requests[1].body["messages"]]
    if "system" in roles:
        assert chat_roles.count("system") == 1 + roles.count("system")


async def test_claude_code_runs_a_shell_command_through_the_cloud(backend: Backend) -> None:
    backend.exo.stop()
    backend.agent_turn("Bash", {"command": "cat secret.txt", "description": "Show the file"})
    done = await backend.claude("Show me secret.txt", "--allowedTools", "Bash(cat:*)")
    assert done.returncode == 0 and SECRET in done.stdout, _said(done)
    sent = backend.sent()
    assert sent and all(e.status == 200 for e in sent)
    assert all(e.response_headers.get("x-exo-bridge-provider") == "openrouter" for e in sent)
    assert all("exo:" in e.response_headers.get("x-exo-bridge-attempts", "") for e in sent)
    assert len(backend.openrouter.chat_requests) == 2 and not backend.exo.chat_requests


async def test_claude_code_with_a_wrong_token_says_so_at_once(backend: Backend) -> None:
    done = await backend.claude("hi", token="wrong-token-0000")
    assert done.returncode != 0, _said(done)
    assert "authenticat" in done.output.lower() or "api key" in done.output.lower(), _said(done)
    assert done.seconds < 20, _said(done)  # no retries with back-off (x-should-retry: false)
    sent = backend.sent()
    assert [e.status for e in sent] == [401] * len(sent) and len(sent) == 1
    assert sent[0].response_headers.get("x-should-retry") == "false"


# -- Codex CLI ---------------------------------------------------------------------------------
async def test_codex_runs_a_command_through_exo(backend: Backend) -> None:
    backend.agent_turn("exec_command", {"cmd": "cat secret.txt"})
    done = await backend.codex("What does secret.txt say?")
    assert done.returncode == 0 and SECRET in done.stdout, _said(done)
    sent = backend.sent()
    assert [e.status for e in sent] == [200, 200], [(e.path, e.status) for e in sent]
    assert all(e.path == "/v1/responses" for e in sent)
    assert all(e.response_headers.get("x-exo-bridge-provider") == "exo" for e in sent)
    # Codex's namespace tool was flattened, its hosted web_search dropped and named
    tools = {t["function"]["name"] for t in backend.exo.chat_requests[0].body["tools"]}
    namespaced = {t["name"] for body in [sent[0].body] for ns in body["tools"]
                  if ns["type"] == "namespace" for t in ns["tools"]}
    assert namespaced and namespaced <= tools
    assert "web_search" in sent[0].response_headers.get("x-exo-bridge-dropped-tools", "")
    outputs = [m for m in backend.exo.chat_requests[1].body["messages"] if m["role"] == "tool"]
    assert SECRET in outputs[-1]["content"]


async def test_codex_runs_a_command_through_the_cloud(backend: Backend) -> None:
    backend.exo.stop()
    backend.agent_turn("exec_command", {"cmd": "cat secret.txt"})
    done = await backend.codex("What does secret.txt say?")
    assert done.returncode == 0 and SECRET in done.stdout, _said(done)
    sent = backend.sent()
    assert len(sent) == 2 and all(e.status == 200 for e in sent)
    assert all(e.response_headers.get("x-exo-bridge-provider") == "openrouter" for e in sent)
    assert len(backend.openrouter.chat_requests) == 2


async def test_codex_applies_a_patch_with_its_freeform_tool(backend: Backend) -> None:
    patch = "*** Begin Patch\n*** Add File: hello.txt\n+hello from the bridge\n*** End Patch\n"
    backend.agent_turn("apply_patch", {"input": patch})
    done = await backend.codex("Add hello.txt", "--sandbox", "workspace-write", model=GPT_LIKE)
    assert done.returncode == 0, _said(done)
    sent = backend.sent()
    assert any(t.get("type") == "custom" for t in sent[0].body["tools"])
    # the call went back as a custom_tool_call, Codex applied it and sent its output back
    items = [i.get("type") for i in sent[-1].body["input"]]
    assert "custom_tool_call" in items and "custom_tool_call_output" in items
    assert (backend.work / "hello.txt").read_text() == "hello from the bridge\n", _said(done)


async def test_codex_with_an_unknown_model_says_so_at_once(backend: Backend) -> None:
    done = await backend.codex("hi", model=None)  # Codex's own default: a model nobody serves
    assert done.returncode != 0, _said(done)
    sent = backend.sent()
    assert [e.status for e in sent] == [404], [(e.path, e.status) for e in sent]  # no retry
    assert all(e.response_headers.get("x-should-retry") == "false" for e in sent)
    assert "model" in done.output.lower(), _said(done)
    assert not backend.exo.chat_requests and not backend.openrouter.chat_requests


async def test_nothing_but_the_endpoint_is_needed(backend: Backend) -> None:
    """Both agents answer with the way out closed; what they tried to reach is recorded."""
    backend.agent_turn("Read", {"file_path": str(backend.work / "secret.txt")})
    claude = await backend.claude("What does secret.txt say?")
    backend.agent_turn("exec_command", {"cmd": "cat secret.txt"})
    codex = await backend.codex("What does secret.txt say?")
    assert SECRET in claude.stdout and SECRET in codex.stdout, _said(claude) + _said(codex)
    assert set(backend.proxy.targets) <= OUTSIDE, backend.proxy.targets


# -- the AI SDK --------------------------------------------------------------------------------
@pytest.mark.parametrize(("api", "path"), [("responses", "/v1/responses"),
                                           ("chat", "/v1/chat/completions"),
                                           ("anthropic", "/v1/messages")],
                         ids=["responses", "chat", "anthropic"])
async def test_the_ai_sdk_runs_a_tool(backend: Backend, agents: Path, api: str, path: str) -> None:
    """The AI SDK with each of its providers (OpenAI Responses, OpenAI chat, Anthropic) runs the
    tool the model calls and gets the answer that reads its result."""
    secret = backend.work / "secret.txt"
    backend.agent_turn("read_file", {"path": str(secret)})
    script = agents / "exo_bridge_ai_sdk.mjs"  # beside node_modules: its imports resolve there
    script.write_text((harness.REPO / "tests" / "agents" / "ai_sdk.mjs").read_text())
    base = backend.recorder.origin + "/v1"
    env = {**backend.env(), "EXO_BASE": base, "EXO_TOKEN": TOKEN, "EXO_MODEL": MODEL,
           "EXO_API": api, "EXO_FILE": str(secret)}
    done = await harness.run(["node", str(script)], env, backend.work)
    assert done.returncode == 0, _said(done)
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert SECRET in answer["text"] and answer["steps"] == 2, answer
    sent = backend.sent()
    assert [(e.path.split("?")[0], e.status) for e in sent] == [(path, 200)] * 2
