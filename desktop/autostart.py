"""Start at login: the XDG autostart entry on Linux (``~/.config/autostart/exo-bridge.desktop``).

Elsewhere the toggle says how: macOS login items and the Windows startup folder are not written
by this version.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ENTRY = """[Desktop Entry]
Type=Application
Name=Exo Bridge
Comment=Exo-first LLM router: your exo cluster first, the cloud only when it must
Exec={exec}
Icon=exo-bridge
Terminal=false
Categories=Utility;Network;
X-GNOME-Autostart-enabled=true
"""


def autostart_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "autostart"


class Autostart:
    def __init__(self, directory: Path | None = None):
        self.path = (directory or autostart_dir()) / "exo-bridge.desktop"

    @property
    def supported(self) -> bool:
        return sys.platform.startswith("linux")

    def enabled(self) -> bool:
        if not self.path.exists():
            return False
        return "Hidden=true" not in self.path.read_text(encoding="utf-8", errors="replace")

    def set_enabled(self, on: bool) -> None:
        if not on:
            self.path.unlink(missing_ok=True)
            return
        command = shutil.which("exo-bridge") or f"{sys.executable} -m desktop.main"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".desktop.partial")
        partial.write_text(ENTRY.format(exec=command), encoding="utf-8")
        partial.replace(self.path)
