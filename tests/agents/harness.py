"""Claude Code and Codex CLI as real clients of the endpoint (issue 26): where they are installed,
how each is run with nothing but the README's settings, and the shape of what they send.

The agents come from npm (tests/agents/install.sh, pinned versions, into a cache directory).
Each run gets its own HOME (and CODEX_HOME), a closed proxy as its way out (tests/agents/
outside.py: anything but the endpoint is refused and recorded) and the telemetry, update and
non-essential traffic switches off.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "tests" / "agents" / "install.sh"
FIXTURES = REPO / "tests" / "agents" / "fixtures"
RECORD_ENV = "EXO_BRIDGE_RECORD_AGENT_FIXTURES"  # =1: the real-agent tests rewrite the fixtures
TRIM = 240  # longer strings are cut in the fixtures (their shape is what is kept)
KEPT_HEADERS = ("content-type", "accept", "anthropic-version", "anthropic-beta", "user-agent",
                "originator", "x-app")


class AgentsMissing(Exception):
    """npm is not on this machine: the real-agent tests cannot install the agents."""


def install() -> Path:
    """The directory with node_modules/.bin/{claude,codex}: installed by tests/agents/install.sh
    (a no-op once done), or AgentsMissing when npm is not available."""
    if shutil.which("npm") is None:
        raise AgentsMissing("npm is not installed: the real Claude Code / Codex CLI tests need it "
                            "(tests/agents/install.sh)")
    done = subprocess.run(["bash", str(INSTALL)], capture_output=True, text=True, timeout=900,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"tests/agents/install.sh failed:\n{done.stderr[-2000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def base_env(home: Path, proxy_url: str) -> dict[str, str]:
    """A clean environment: nothing of ours leaks in (no ANTHROPIC_*, OPENAI_*), the way out is
    the closed proxy, the agents' own switches for telemetry and updates are off."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
           "TERM": "dumb", "NO_COLOR": "1", "CI": "1", "NO_PROXY": "127.0.0.1,localhost",
           "no_proxy": "127.0.0.1,localhost", "TMPDIR": str(home)}
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy",
                 "all_proxy"):
        env[name] = proxy_url
    env.update(CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", DISABLE_AUTOUPDATER="1",
               DISABLE_TELEMETRY="1", DISABLE_ERROR_REPORTING="1", DISABLE_BUG_COMMAND="1",
               CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY="1")
    return env


def readme_block(title: str, language: str) -> str:
    """The first ``language`` code block after ``title`` in the README (the settings the agents
    are run with are the README's own)."""
    text = (REPO / "README.md").read_text()
    after = text[text.index(title):]
    start = after.index(f"```{language}\n") + len(language) + 4
    return after[start:after.index("```", start)]


README_ORIGIN = "http://127.0.0.1:8741"
README_MODEL = "llama-3.2-3b"


def claude_env(env: dict[str, str], origin: str, token: str, model: str) -> dict[str, str]:
    """The README's Claude Code settings (its ``export`` lines), pointed at this endpoint."""
    settings = {}
    for line in readme_block("**Claude Code**", "sh").splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").split("#")[0].strip().partition("=")
            value = value.replace(README_ORIGIN, origin).replace("$(exo-bridge token)", token)
            settings[name] = model if value == README_MODEL else value
    assert {"ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_MODEL"} <= set(settings)
    return {**env, **settings}


def codex_config(home: Path, base_url: str, model: str | None) -> Path:
    """The README's Codex CLI config.toml, pointed at this endpoint, in a CODEX_HOME of its own
    (``model=None``: no model line, Codex's own default)."""
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    lines = []
    for line in readme_block("**Codex CLI**", "toml").splitlines():
        if line.startswith("model = "):
            if model is None:
                continue
            line = f'model = "{model}"'
        lines.append(line.replace(README_ORIGIN + "/v1", base_url))
    text = "check_for_update_on_startup = false\n" + "\n".join(lines) + "\n"
    assert 'wire_api = "responses"' in text and base_url in text
    (codex_home / "config.toml").write_text(text)
    return codex_home


async def run(argv: list[str], env: dict[str, str], cwd: Path, timeout_s: float = 120) -> Run:
    """Run an agent without blocking the loop the endpoint serves on."""
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
        err += f"\n[harness] killed after {timeout_s}s".encode()
    return Run(process.returncode if process.returncode is not None else -9,
               out.decode(errors="replace"), err.decode(errors="replace"),
               time.monotonic() - started)


# -- shapes ------------------------------------------------------------------------------------
def trimmed(value: Any) -> Any:
    """A body with every long string cut: the shape stays, the bulk (prompts, schemas' prose)
    goes."""
    if isinstance(value, str):
        return value if len(value) <= TRIM else value[:TRIM] + "…"
    if isinstance(value, list):
        return [trimmed(v) for v in value]
    if isinstance(value, dict):
        return {k: trimmed(v) for k, v in value.items()}
    return value


def fixture_entry(method: str, path: str, headers: dict[str, str], body: Any) -> dict[str, Any]:
    kept = {k.lower(): v for k, v in headers.items() if k.lower() in KEPT_HEADERS}
    return {"method": method, "path": path, "headers": kept, "body": trimmed(body)}


def shape(path: str, body: Any) -> str:
    """What a request is made of, as one string: the path, the body's fields, the kinds of
    messages and content blocks, of input items and of tools (not their contents or order)."""
    parts: list[str] = [path.split("?")[0]]
    if not isinstance(body, dict):
        return f"{parts[0]} <{type(body).__name__}>"
    parts.append("fields=" + ",".join(sorted(body)))
    kinds: set[str] = set()
    for message in body.get("messages") or ():
        content = message.get("content")
        blocks = ("str",) if isinstance(content, str) else tuple(
            sorted({str(b.get("type")) for b in content or () if isinstance(b, dict)}))
        kinds.add(f"{message.get('role')}:{'+'.join(blocks)}")
    items = body.get("input")
    for item in items if isinstance(items, list) else ():
        kinds.add(f"item:{item.get('type')}:{item.get('role', '')}")
    if isinstance(items, str):
        kinds.add("item:str")
    system = body.get("system")
    if system is not None:
        kinds.add("top-system:" + ("str" if isinstance(system, str) else "blocks"))
    tools = sorted({str(t.get("type", "custom")) for t in body.get("tools") or ()})
    parts.append("kinds=" + ",".join(sorted(kinds)))
    parts.append("tools=" + ",".join(tools))
    return " ".join(parts)


def load_fixtures() -> dict[str, list[dict[str, Any]]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))}


def save_fixture(name: str, entries: list[dict[str, Any]]) -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    (FIXTURES / f"{name}.json").write_text(json.dumps(entries, indent=1, ensure_ascii=False) + "\n")
