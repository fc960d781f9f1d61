"""Bring a window in front of the user for real: out of the taskbar if minimised, shown, raised
and given the focus (a second launch, a menu item: the window must appear, not just exist)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget


def present(window: QWidget) -> None:
    state = window.windowState()
    if state & Qt.WindowState.WindowMinimized:
        window.setWindowState((state & ~Qt.WindowState.WindowMinimized) | Qt.WindowState.WindowActive)
    window.show()
    window.raise_()
    window.activateWindow()
