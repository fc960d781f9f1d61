"""A cheaper answer to a question PySide6 asks of every module imported after it.

PySide6 replaces ``__import__`` so that ``from __feature__ import snake_case`` works; for that it
asks, of each newly imported module, whether the module uses PySide6 - by reading the module's
whole source with ``inspect.getsource``. The source then stays in ``linecache``. For what the app
imports after Qt (aiohttp and httpx in a worker thread, later pyqtgraph) that is ~9 MB of RSS and
~50 ms of start-up each. Nothing here uses ``__feature__``; the module's namespace answers the
same question without reading a file.
"""

from __future__ import annotations

import sys
from types import ModuleType


def lighten_feature_check() -> bool:
    """Answer PySide6's per-import check from the module's namespace. False (and nothing
    changed) if this PySide6 has no such check."""
    feature = sys.modules.get("shibokensupport.feature")
    if feature is None or not callable(getattr(feature, "_mod_uses_pyside", None)):
        return False
    feature._mod_uses_pyside = uses_pyside  # type: ignore[attr-defined]
    return True


def uses_pyside(module: ModuleType) -> bool:
    """Whether the module's top level holds anything of PySide6 (a Qt module or class)."""
    return any(_of_pyside(value) for value in list(vars(module).values()))


def _of_pyside(value: object) -> bool:
    name = value.__name__ if isinstance(value, ModuleType) else getattr(value, "__module__", None)
    return isinstance(name, str) and name.startswith(("PySide6", "shiboken6"))
