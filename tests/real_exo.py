"""exo as it really is: exo's own API server and master (``shared/real_exo``: exo-explore/exo at
b5375f8, with a scripted cluster and a fake engine), run on free ports for a test.

``real_exo_python`` builds the harness's CPython 3.13 venv once per session (``setup.sh``, in the
temporary directory: ``shared/`` stays read-only); ``real_exo`` starts ``run_real_exo.py`` with
a state and an optional script, and stops it after the test. The tests are skipped, with the
reason, only where there is no CPython 3.13 (``setup.sh`` exits 2); where
``EXO_BRIDGE_REAL_EXO_REQUIRED=1`` (CI) they never are.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
LLAMA_1B = "mlx-community/Llama-3.2-1B-Instruct-4bit"
QWEN_06B = "mlx-community/Qwen3-0.6B-4bit"
STUDIO = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
MINI = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
NO_PYTHON_313 = 2  # setup.sh's exit code when no CPython 3.13 is found
STARTUP_S = 90.0


def harness_dir() -> Path | None:
    """``shared/real_exo``: named by EXO_BRIDGE_REAL_EXO, else beside this checkout (a clone
    at ``work/main`` or a worktree at ``work/wt/NAME`` both find ``work/shared``)."""
    named = os.environ.get("EXO_BRIDGE_REAL_EXO")
    candidates = [Path(named)] if named else [ROOT.parent / "shared" / "real_exo",
                                              ROOT.parent.parent / "shared" / "real_exo"]
    return next((c for c in candidates if (c / "run_real_exo.py").is_file()), None)


def _required() -> bool:
    return os.environ.get("EXO_BRIDGE_REAL_EXO_REQUIRED") == "1"


def build_venv(harness: Path) -> Path:
    """The harness's python (setup.sh builds its venv under the temporary directory)."""
    done = subprocess.run(["bash", str(harness / "setup.sh")], capture_output=True, text=True,
                          timeout=1200, check=False)
    if done.returncode == NO_PYTHON_313 and not _required():
        pytest.skip(f"exo's own API needs CPython 3.13 and none is installed here: "
                    f"{done.stderr.strip()}")
    if done.returncode != 0:
        pytest.fail(f"{harness}/setup.sh failed ({done.returncode}): {done.stderr[-2000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def real_exo_python() -> Path:
    harness = harness_dir()
    if harness is None:
        if _required():
            pytest.fail("shared/real_exo is not beside this checkout; set EXO_BRIDGE_REAL_EXO")
        pytest.skip("exo's own API (shared/real_exo) is not beside this checkout; set "
                    "EXO_BRIDGE_REAL_EXO to its directory")
    return build_venv(harness)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_node(**engine: Any) -> dict[str, Any]:
    """The Mac Studio alone (64 GB, 40 free), Llama 3.2 1B loaded and ready, Qwen3 0.6B
    downloaded but not loaded; ``engine``: the fake engine's settings."""
    return {
        "nodes": [{"id": STUDIO, "name": "Mac Studio", "ram_total_gb": 64, "ram_available_gb": 40,
                   "downloads": {LLAMA_1B: "completed", QWEN_06B: "completed"}}],
        "instances": [{"model": LLAMA_1B, "runner_status": "Ready"}],
        "engine": {"default": {"tokens": ["Hello", " from", " real", " exo", "."],
                               "token_delay": 0.02, "prefill_steps": 1, "prefill_delay": 0.01,
                               **engine}},
        "timing": {"load_seconds": 0.5, "download_seconds": 0.5, "heartbeat_seconds": 1.0}}


def two_nodes(**engine: Any) -> dict[str, Any]:
    """``one_node`` and a Mac mini (16 GB, 9 free, Qwen3 0.6B downloaded)."""
    state = one_node(**engine)
    state["nodes"].append({"id": MINI, "name": "Mac mini", "ram_total_gb": 16,
                           "ram_available_gb": 9, "downloads": {QWEN_06B: "completed"}})
    return state


@dataclass
class RealExo:
    """One running ``run_real_exo.py``."""

    python: Path
    harness: Path
    workdir: Path
    port: int = field(default_factory=free_port)
    control_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, state: dict[str, Any], script: list[dict[str, Any]] | None = None) -> RealExo:
        self.workdir.mkdir(parents=True, exist_ok=True)
        state_file, ready = self.workdir / "state.json", self.workdir / "ready.json"
        state_file.write_text(json.dumps(state))
        ready.unlink(missing_ok=True)  # a restart: the last run's says nothing of this one
        args = [str(self.python), str(self.harness / "run_real_exo.py"), "--port", str(self.port),
                "--control-port", str(self.control_port), "--state", str(state_file),
                "--ready-file", str(ready), "--home", str(self.workdir / "home")]
        if script:
            (self.workdir / "script.json").write_text(json.dumps(script))
            args += ["--script", str(self.workdir / "script.json")]
        log = (self.workdir / "exo.log").open("wb")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                        cwd=self.workdir)
        end = time.monotonic() + STARTUP_S
        while not (ready.is_file() and ready.stat().st_size):
            if self.process.poll() is not None or time.monotonic() > end:
                self.stop()
                pytest.fail(f"run_real_exo.py did not start: {self.log()[-3000:]}")
            time.sleep(0.05)
        return self

    def log(self) -> str:
        path = self.workdir / "exo.log"
        return path.read_text(errors="replace") if path.is_file() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def down(self) -> None:
        """exo goes away at once (its process ends: connections refused)."""
        self.stop()

    # -- the side door (the harness's control port) -----------------------------------------
    def _call(self, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.control_port}{path}", data=data,
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    async def ops(self, *ops: dict[str, Any]) -> Any:
        """Change the cluster now (node_up, node_down, memory, download, place, runner_status,
        engine, ...: the harness's README)."""
        return await asyncio.to_thread(self._call, "/_harness/ops", list(ops))

    async def summary(self) -> dict[str, Any]:
        return await asyncio.to_thread(self._call, "/_harness/summary")

    async def commands(self) -> list[dict[str, Any]]:
        """Every command exo's API sent its master (TextGeneration, PlaceInstance, ...)."""
        answer = await asyncio.to_thread(self._call, "/_harness/commands")
        return answer["commands"] if isinstance(answer, dict) else answer

    async def requests(self) -> list[dict[str, Any]]:
        answer = await asyncio.to_thread(self._call, "/_harness/requests?since=0")
        return answer["requests"] if isinstance(answer, dict) else answer


@pytest.fixture
def real_exo(real_exo_python: Path, tmp_path: Path) -> Iterator[Callable[..., RealExo]]:
    """real_exo(state, script=None) -> a running exo (its API at ``.url``)."""
    harness = harness_dir()
    assert harness is not None
    started: list[RealExo] = []

    def start(state: dict[str, Any], script: list[dict[str, Any]] | None = None) -> RealExo:
        exo = RealExo(real_exo_python, harness, tmp_path / f"exo{len(started)}")
        started.append(exo)
        return exo.start(state, script)

    yield start
    for exo in started:
        exo.stop()


async def until(check: Callable[[], bool | Awaitable[bool]], seconds: float = 20.0,
                what: str = "the condition") -> None:
    """Wait on the running loop until ``check()`` holds."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        held = check()
        if not isinstance(held, bool):
            held = await held
        if held:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {seconds:g}s")


async def sse_lines(url: str, body: dict[str, Any]) -> AsyncIterator[bytes]:
    """The raw SSE lines exo sends for ``body`` (what the wire carries, comments included)."""
    import aiohttp

    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        async for line in response.content:
            yield line.rstrip(b"\r\n")
