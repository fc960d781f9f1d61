"""The architecture's walls: router/ imports no Qt; the public API does not drift; secrets never show."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


# -- router/ as packages (issue 24): what each may import, and no import cycles ---------------
ROUTER = Path(__file__).resolve().parent.parent / "router"

# Each package's own modules may import each other; outside itself, only these parts of router/
# (type-only imports count: a cycle through annotations is still a cycle for the reader).
# Every package may use the core's vocabulary: errors, numbers from outside checked, JSON.
VOCABULARY = {"errors", "numbers", "jsonio"}
MAY_IMPORT = {
    "config": {"errors", "providers", "provider_settings"},
    "http": {"errors", "jsonio", "provider_settings"},
    "ledger": {"errors", "money", "processes"},
    "money": {"config", "errors", "events", "http", "journey", "ledger", "policy", "providers",
              "result"},
    "exo": {"config", "core", "errors", "events", "health", "host", "http", "journey", "policy",
            "probing", "providers"},
    "accounts": {"config", "core", "errors", "events", "figures", "health", "ledger", "money",
                 "policy", "providers"},
    "providers": {"errors", "exo", "figures", "http", "jsonio", "keys", "money",
                  "provider_settings", "redact"},
    "endpoint": {"config", "core", "errors", "events", "journey", "jsonio", "keys", "money",
                 "redact", "request_check", "result", "retry"},
}

# Cycles known and not yet cut (none since issue 24); this list only shrinks.
KNOWN_CYCLES: list[set[str]] = []


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROUTER).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _router_imports() -> dict[str, set[str]]:
    """Every module of router/ -> the router modules it imports (at its top, in a function or
    for types only), names relative to ``router``."""
    import ast

    paths = {_module_name(p): p for p in ROUTER.rglob("*.py")}

    def resolve(name: str) -> str | None:
        while name and name not in paths:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        wanted: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                wanted |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                wanted |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}".removeprefix(
                    "router.") in paths else node.module for a in node.names}
        found = {resolve(w.removeprefix("router.")) for w in wanted if w.startswith("router.")}
        graph[module] = {m for m in found if m and m != module}
    return graph


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The modules that reach each other (strongly connected), in groups of more than one."""
    reach = {v: _reachable(graph, v) for v in graph}
    groups = {frozenset(w for w in reach[v] if v in reach[w]) | {v} for v in graph if v in reach[v]}
    return [set(g) for g in groups if len(g) > 1]


def test_each_package_says_what_it_owns_and_may_import():
    for package in [*MAY_IMPORT, "cli"]:  # providers' and config's too
        doc = (ROUTER / package / "__init__.py").read_text()
        assert doc.startswith('"""') and "Imports:" in doc, package


def test_each_package_imports_only_what_its_rule_allows():
    graph = _router_imports()
    breaking = []
    for module, imported in sorted(graph.items()):
        package = module.split(".")[0]
        allowed = MAY_IMPORT.get(package)
        if allowed is None:
            continue
        for other in sorted(imported):
            top = other.split(".")[0]
            if top != package and top not in allowed | VOCABULARY:
                breaking.append(f"router.{module} -> router.{other}")
    assert breaking == []


def test_only_the_entry_points_import_the_cli_and_only_the_cli_starts_the_endpoint():
    graph = _router_imports()
    cli_users = {m for m, imported in graph.items() if any(i.startswith("cli") for i in imported)}
    endpoint_users = {m for m, imported in graph.items()
                      if any(i.startswith("endpoint") for i in imported)}
    assert {m for m in cli_users if not m.startswith("cli")} <= {"__main__"}
    assert {m for m in endpoint_users if not m.startswith(("endpoint", "cli"))} == set()


def test_the_import_cycles_are_exactly_the_known_ones():
    """A new cycle fails; so does a known one cut or shrunk, until KNOWN_CYCLES says so."""
    cycles = sorted(sorted(c) for c in _cycles(_router_imports()))
    assert cycles == sorted(sorted(c) for c in KNOWN_CYCLES)


def test_the_cycle_finder_finds_a_cycle_through_a_type_only_import():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_entry_point_knows_exactly_the_clis_commands():
    from router.cli import COMMANDS
    from router.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS)


async def test_a_router_stops_what_it_started_in_the_reverse_order(tmp_path):
    """The parts __aenter__ starts (HTTP stack, background tasks, the ledger's watch, keys and
    prices) stop in one place: the tasks end before the HTTP stack closes, the ledger stops
    calling back."""
    import asyncio

    from router import Router, parse_config
    from router.ledger.ledger import Ledger

    config = parse_config('[[providers]]\nid = "exo"\nkind = "exo"\n', "t")
    ledger = Ledger.in_dir(tmp_path)
    closed_with_tasks: list[int] = []
    try:
        async with Router(config, ledger=ledger) as router_:
            assert ledger.on_problem is not None
            router_.spawn(asyncio.sleep(3600))
            real_close = router_._stack.aclose

            async def close() -> None:
                closed_with_tasks.append(len(router_._tasks))
                await real_close()

            router_._stack.aclose = close
        assert closed_with_tasks == [0]  # every task had ended when the stack closed
        assert router_._tasks == set() and ledger.on_problem is None
    finally:
        ledger.close()
