from __future__ import annotations

import asyncio
import gc
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest

from router.config import Config, parse_config
from tests.fakes.exo_cluster import LLAMA, FakeCluster
from tests.fakes.memory_keyring import MemoryKeyring
from tests.fakes.provider import FakeProvider

# the running endpoint and its SDK clients (endpoint, client, claude), for every test module
pytest_plugins = ["tests.endpoint_fixtures", "tests.real_exo"]

OR_KEY = "sk-or-test-0123456789abcdef"
HF_KEY = "hf_test0123456789abcdefghij"


gc.disable()  # collections happen between tests, in the main thread (see desktop/app.py)


@pytest.fixture(autouse=True)
def collect_garbage_in_the_main_thread(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    gc.collect(2 if "qapp" in request.fixturenames else 1)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    """No real keychain, no real config or data dir, no keys from the developer's shell."""
    ring = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(ring)
    for name in ("OPENROUTER_API_KEY", "HF_TOKEN", "EXO_BRIDGE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EXO_BRIDGE_CONFIG", str(tmp_path / "no-such-config.toml"))
    monkeypatch.setenv("EXO_BRIDGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EXO_BRIDGE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    yield ring
    keyring.set_keyring(previous)


@pytest.fixture
def keyring_store(isolated: MemoryKeyring) -> MemoryKeyring:
    return isolated


def _fake(flavor: str) -> Iterator[FakeProvider]:
    fake = FakeProvider(flavor)
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def exo() -> Iterator[FakeProvider]:
    yield from _fake("exo")


@pytest.fixture
def exo_cluster() -> Iterator[FakeProvider]:
    """A fake exo with a simulated two-node cluster, Llama 3.2 3B loaded and ready."""
    cluster = FakeCluster()
    cluster.load_instance(LLAMA)
    fake = FakeProvider("exo", cluster=cluster)
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def legacy_exo() -> Iterator[FakeProvider]:
    yield from _fake("exo-legacy")


@pytest.fixture
def openrouter() -> Iterator[FakeProvider]:
    fake = FakeProvider("openrouter", valid_keys={OR_KEY})
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def hf() -> Iterator[FakeProvider]:
    fake = FakeProvider("huggingface", valid_keys={HF_KEY})
    try:
        yield fake
    finally:
        fake.close()


def config_text(exo_urls: list[str], openrouter_url: str, hf_url: str, *,
                first_token_s: float = 2.0, idle_s: float = 2.0, extra: str = "",
                or_extra: str = "", exo_extra: str = "") -> str:
    urls = ", ".join(f'"{u}"' for u in exo_urls)
    return textwrap.dedent(f"""\
        [[providers]]
        id = "exo"
        kind = "exo"
        name = "Exo Local"
        base_urls = [{urls}]
        priority = 0
        first_token_timeout_s = {first_token_s}
        idle_timeout_s = {idle_s}
        {exo_extra}

        [[providers]]
        id = "openrouter"
        kind = "openrouter"
        name = "OpenRouter"
        base_url = "{openrouter_url}"
        priority = 1
        paid = true
        daily_request_limit = 1000
        daily_token_limit = 100000
        api_key_env = "OPENROUTER_API_KEY"
        first_token_timeout_s = {first_token_s}
        idle_timeout_s = {idle_s}
        {or_extra}

        [[providers]]
        id = "huggingface"
        kind = "huggingface"
        name = "Hugging Face"
        base_url = "{hf_url}"
        priority = 2
        daily_request_limit = 100
        daily_token_limit = 50000
        api_key_env = "HF_TOKEN"
        first_token_timeout_s = {first_token_s}
        idle_timeout_s = {idle_s}

        [models."llama-3.2-3b"]
        exo = ["mlx-community/Llama-3.2-3B-Instruct-4bit", "llama-3.2-3b"]
        openrouter = "meta-llama/llama-3.2-3b-instruct"
        huggingface = "meta-llama/Llama-3.2-3B-Instruct"
        {extra}
        """)


@pytest.fixture
def keys_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", OR_KEY)
    monkeypatch.setenv("HF_TOKEN", HF_KEY)


@pytest.fixture
def make_config(exo: FakeProvider, openrouter: FakeProvider, hf: FakeProvider, tmp_path: Path):
    """make_config(**kw) -> (Config, path of the TOML file) for the three fakes."""
    def build(**kw: object) -> tuple[Config, Path]:
        text = config_text([exo.origin], openrouter.base_url, hf.base_url, **kw)  # type: ignore[arg-type]
        path = tmp_path / "config.toml"
        path.write_text(text)
        return parse_config(text, str(path)), path
    return build


def unused_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()}
    env.update(extra)
    return env


async def until(check, seconds: float = 10.0) -> None:
    """Wait (on the running loop) until ``check()`` is true; fail after ``seconds``."""
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


async def quiet(router, since: set, seconds: float = 10.0) -> None:
    """Wait until every task ``router`` started after ``since`` (a copy of its tasks taken
    before the action) has finished: whatever the action set off has happened (or not), with
    no fixed window to guess."""
    await until(lambda: not (router._tasks - since), seconds)
    await asyncio.sleep(0)  # what those tasks' ends scheduled


@pytest.fixture
async def chat(qapp, make_config):
    """The chat window on a router of the fake providers (``make_config``)."""
    from desktop.bridge import Bridge
    from desktop.windows.chat import ChatWindow
    from router import Router

    config, _ = make_config(idle_s=0.5)
    async with Router(config) as router:
        bridge = Bridge(router)
        window = ChatWindow(bridge)
        window.show()
        yield window
        window.stop()
        await until(lambda: window.task is None)
        window.close()
        bridge.close()
        # Qt objects die here, in the GUI thread: a garbage collection started by another
        # thread (a fake provider's) must never be the one to destroy a widget.
        window.deleteLater()
        bridge.deleteLater()
        qapp.processEvents()


@pytest.fixture
def restored_palette(qapp):
    """The application's style and palette as they were, after a test that changes them."""
    from PySide6.QtGui import QPalette

    style, palette = qapp.style().name(), QPalette(qapp.palette())
    from desktop.appearance import EDGED

    edged = {name: QPalette(qapp.palette(name)) for name in EDGED}
    yield qapp
    qapp.setStyle(style)
    qapp.setPalette(palette)
    for name, own in edged.items():
        qapp.setPalette(own, name)
