"""PySide6's per-import feature check, answered from the module's namespace (no source read)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("PySide6", reason="the desktop extra is not installed")

CHILD = textwrap.dedent("""
    import importlib, linecache, sys
    sys.path.insert(0, sys.argv[1])
    import PySide6.QtCore
    feature = sys.modules["shibokensupport.feature"]
    original = feature._mod_uses_pyside
    from desktop.pyside_imports import lighten_feature_check, uses_pyside
    assert lighten_feature_check()
    plain, qt = importlib.import_module("plain_mod"), importlib.import_module("qt_mod")
    print(any("plain_mod" in name or "qt_mod" in name for name in linecache.cache))
    print(original(plain), uses_pyside(plain), original(qt), uses_pyside(qt))
    print(any("plain_mod" in name for name in linecache.cache))
""")


def test_same_answer_without_reading_the_source(tmp_path):
    (tmp_path / "plain_mod.py").write_text("import json\nVALUE = json.dumps([1])\n" * 200)
    (tmp_path / "qt_mod.py").write_text("from PySide6.QtCore import QTimer\n")
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], capture_output=True,
                         text=True, check=True).stdout.split("\n")
    assert out[0] == "False"  # imported after Qt, and their source was not read
    # PySide6's own check and ours agree on a module that uses Qt and one that does not ...
    assert out[1] == "False False True True"
    assert out[2] == "True"  # ... and PySide6's own does read (and keep) the source
