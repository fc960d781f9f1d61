"""The words beside a field that say what is wrong with what was typed."""

from __future__ import annotations

from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QLabel

from desktop.appearance import is_dark

PROBLEM_RED = {False: "#c42b1c", True: "#ff99a4"}  # light, dark: readable on either background


class ProblemLabel(QLabel):
    """Red, wrapped, hidden while there is nothing wrong; its red follows light and dark."""

    def __init__(self) -> None:
        super().__init__("")
        self.setObjectName("fieldProblem")
        self.setWordWrap(True)
        self._tint()
        self.hide()

    def _tint(self) -> None:
        sheet = f"color: {PROBLEM_RED[is_dark(self.palette())]};"
        if self.styleSheet() != sheet:
            self.setStyleSheet(sheet)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._tint()
        super().changeEvent(event)


def problem_label() -> ProblemLabel:
    return ProblemLabel()
