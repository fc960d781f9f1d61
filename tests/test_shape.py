"""The architecture's walls: router/ imports no Qt; the public API does not drift; secrets never show."""

from __future__ import annotations

import json
import subprocess
import sys

import router
from router.keys import Secret

QT = ("PySide6", "PyQt5", "PyQt6", "qasync", "pyqtgraph", "shiboken6")


def test_importing_router_imports_no_qt():
    code = ("import sys, router, router.cli, router.core, router.providers; "
            "print([m for m in sys.modules if m.split('.')[0] in %r])" % (QT,))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_router_loads_its_http_libraries_only_once_started():
    """Start-up: aiohttp and httpx (~200 ms of imports) load in a worker thread when a Router
    is entered; importing the core (and everything the tray imports of it) loads neither."""
    code = ("import sys, router, router.core, router.providers, router.ledger, router.keys, "
            "router.usage; print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'aiohttp', 'httpx', 'httpx_aiohttp'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_api_is_sorted_and_complete():
    assert router.__all__ == sorted(router.__all__)
    for name in router.__all__:
        assert hasattr(router, name)


def test_secret_never_shows_itself():
    key = Secret("sk-or-v1-verysecretvalue1234")
    for text in (repr(key), str(key), f"{key}", json.dumps({"k": str(key)})):
        assert "verysecret" not in text
    assert key.masked().endswith("1234") and "verysecret" not in key.masked()
    assert Secret("short").masked() == "••••"
