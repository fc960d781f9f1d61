"""The words beside a field that say what is wrong with what was typed."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel


def problem_label() -> QLabel:
    """The words beside a field that say what is wrong with what was typed (hidden when
    nothing is)."""
    label = QLabel("")
    label.setObjectName("fieldProblem")
    label.setWordWrap(True)
    label.setStyleSheet("color: #d13438;")
    label.hide()
    return label
