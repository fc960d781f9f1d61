"""The architecture's walls: router/ imports no Qt; the public API does not drift; secrets never show."""

from __future__ import annotations

import json
import subprocess
import sys

import router
from router.keys import Secret

QT = ("PySide6", "PyQt5", "PyQt6", "qasync", "pyqtgraph", "shiboken6")


def test_importing_router_imports_no_qt():
    code = ("import sys, router, router.cli.main, router.core, router.providers; "
            "print([m for m in sys.modules if m.split('.')[0] in %r])" % (QT,))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_router_loads_its_http_libraries_only_once_started():
    """Start-up: aiohttp and httpx (~200 ms of imports) load in a worker thread when a Router
    is entered; importing the core (and everything the tray imports of it) loads neither."""
    code = ("import sys, router, router.core, router.providers, router.ledger.ledger, router.keys, "
            "router.ledger.usage; print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'aiohttp', 'httpx', 'httpx_aiohttp'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_api_is_sorted_and_complete():
    # isort's order, as ruff keeps it: CONSTANTS, then Classes, then functions
    assert router.__all__ == sorted(router.__all__, key=lambda n: (not n.isupper(),
                                                                   not n[:1].isupper(), n))
    for name in router.__all__:
        assert hasattr(router, name)


def test_secret_never_shows_itself():
    key = Secret("sk-or-v1-verysecretvalue1234")
    for text in (repr(key), str(key), f"{key}", json.dumps({"k": str(key)})):
        assert "verysecret" not in text
    assert key.masked().endswith("1234") and "verysecret" not in key.masked()
    assert Secret("short").masked() == "••••"


# -- the desktop does router I/O only through desktop/operations.py --------------------------
_STORES = {"keyring", "httpx", "aiohttp", "sqlite3", "csv", "router.keychain_helper",
           "router.ledger.store", "router.ledger.journal"}
_STORE_CALLS = {("router.keys", name) for name in
                ("keychain_get", "keychain_set", "keychain_delete", "keychain_read",
                 "endpoint_token", "regenerate_endpoint_token", "KeyStore")} | {
               ("router.ledger.usage", "summary"), ("router.ledger.usage", "write_csv"),
               ("router.ledger.ledger", "Ledger")}


def _imports(path):
    """What a module imports at run time (imports under ``if TYPE_CHECKING:`` do nothing)."""
    import ast

    tree = ast.parse(path.read_text())
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and getattr(block.test, "id", None) == "TYPE_CHECKING"
                   for n in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                yield node.module, alias.name


def test_only_the_operations_layer_does_router_io_in_the_desktop():
    from pathlib import Path

    desktop = Path(__file__).resolve().parent.parent / "desktop"
    offenders = []
    for path in sorted(desktop.rglob("*.py")):
        if path.name in ("operations.py", "main.py"):  # the layer; the entry point's dispatch
            continue
        for module, name in _imports(path):
            if module.split(".")[0] in _STORES or module in _STORES or (module, name) in _STORE_CALLS:
                offenders.append(f"{path.relative_to(desktop.parent)}: {module}.{name or ''}")
    assert offenders == []


def test_the_desktop_uses_the_core_through_its_public_api():
    """Outside its operations layer (and the entry point's dispatch), the desktop imports only
    what router/__init__.py exports, so that API stays complete and nothing reaches past it."""
    from pathlib import Path

    desktop = Path(__file__).resolve().parent.parent / "desktop"
    reaching = []
    for path in sorted(desktop.rglob("*.py")):
        if path.name in ("operations.py", "main.py"):
            continue
        for module, name in _imports(path):
            if module == "router" and name in router.__all__:
                continue
            if module.split(".")[0] == "router":
                reaching.append(f"{path.relative_to(desktop.parent)}: {module}.{name or ''}")
    assert reaching == []


KIND_NAMES = {"exo", "openrouter", "huggingface", "openai"}


def test_no_code_outside_the_providers_branches_on_a_kind_name():
    """A kind is described once (its adapter's ``Kind``); everything else asks the description."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    branching = []
    for path in sorted([*(root / "router").rglob("*.py"), *(root / "desktop").rglob("*.py")]):
        if "providers" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Compare):
                continue
            parts = [node.left, *node.comparators]
            literals = {p.value for p in parts if isinstance(p, ast.Constant)}
            if literals & KIND_NAMES or any(isinstance(p, ast.Attribute) and p.attr == "kind"
                                            and any(isinstance(q, ast.Constant) for q in parts)
                                            for p in parts):
                branching.append(f"{path.relative_to(root)}:{node.lineno}")
    assert branching == []


def test_the_public_api_has_what_the_cli_and_the_desktop_name():
    assert {"Router", "ProviderStatus", "HealthState", "Role", "Outcome", "Ledger",
            "CrashWatch", "usd"} <= set(router.__all__)


async def test_a_router_that_fails_to_start_leaves_nothing_running(tmp_path, monkeypatch):
    """Router.__aenter__ unwinds: the tasks it spawned are cancelled, the HTTP stack closed."""
    import asyncio

    import pytest

    from router import Router, parse_config
    from router.ledger.ledger import Ledger

    config = parse_config('[[providers]]\nid = "exo"\nkind = "exo"\n', "t")
    ledger = Ledger.in_dir(tmp_path)
    try:
        router_ = Router(config, ledger=ledger)

        def broken(_ledger: object) -> None:
            raise RuntimeError("the ledger's watcher failed")

        monkeypatch.setattr(router_, "_watch_ledger", broken)
        with pytest.raises(RuntimeError):
            await router_.__aenter__()
        await asyncio.sleep(0)
        assert router_._tasks == set()  # the keys' and the HTTP stack's loading were cancelled
    finally:
        ledger.close()
