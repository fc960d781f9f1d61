"""A line of information in a menu (a cluster's node, a ledger that cannot record): drawn in the
menu's own text colour, never highlighted, never a button. A disabled QAction would be greyed
out, which reads poorly in light and dark alike."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMenu, QStyle, QWidgetAction


class InfoRow(QWidgetAction):
    def __init__(self, text: str, menu: QMenu):
        super().__init__(menu)
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        style = menu.style()
        margin = style.pixelMetric(QStyle.PixelMetric.PM_MenuHMargin, None, menu)
        icon = style.pixelMetric(QStyle.PixelMetric.PM_SmallIconSize, None, menu)
        vertical = style.pixelMetric(QStyle.PixelMetric.PM_MenuVMargin, None, menu) + 3
        self.label.setContentsMargins(margin + icon + 12, vertical, margin + 12, vertical)
        self.setDefaultWidget(self.label)
        self.set_text(text)

    def set_text(self, text: str) -> None:
        """The row's text (also the action's, as a screen reader and the tests read it)."""
        self.label.setText(text)
        self.setText(text.replace("&", "&&"))
