"""The tray's "exo cluster" submenu and its actions in the main menu (what they show is
desktop/cluster_model.py's; what they do runs through desktop/operations.py)."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from desktop.bridge import Bridge
from desktop.cluster_model import Act, ClusterMenuView, Item
from desktop.menu_rows import InfoRow
from desktop.operations import ExoOperations
from router import ClusterActionFailed


class ClusterMenu(QObject):
    failed = Signal(str, str)  # (what was asked, why it could not be done)

    def __init__(self, menu: QMenu, before: QAction, bridge: Bridge):
        super().__init__()
        self._menu = menu
        self._before = before
        self._bridge = bridge
        self._operations = ExoOperations(bridge.router)
        self.submenu = QMenu("exo cluster")
        self.entry = menu.insertMenu(before, self.submenu)
        self.entry.setVisible(False)
        self.main_actions: list[QAction] = []
        self.view: ClusterMenuView | None = None

    def show_view(self, view: ClusterMenuView | None) -> None:
        """Rebuild the entries, only when what they show changed."""
        if view == self.view:
            return
        self.view = view
        self.submenu.clear()
        for action in self.main_actions:
            self._menu.removeAction(action)
            action.deleteLater()
        self.main_actions = []
        self.entry.setVisible(view is not None)
        if view is None:
            return
        self.entry.setText(view.title)
        for item in view.items:
            self.submenu.addAction(self._action(item, self.submenu))
        for item in view.main:
            action = self._action(item, self._menu)
            self._menu.insertAction(self._before, action)
            self.main_actions.append(action)

    def _action(self, item: Item, menu: QMenu) -> QAction:
        """A line that does something, or one that only says something (a node, a warming):
        that one in the menu's text colour, not greyed out."""
        if item.act is None:
            return InfoRow(item.text, menu)
        action = QAction(item.text, menu)
        act, model = item.act, item.model
        action.triggered.connect(lambda: self.act(act, model))
        return action

    def act(self, act: Act | str, model: str) -> None:
        """Do what a menu item or a notification's button asks, off the GUI thread's back."""
        chosen = Act(act)
        operation = {Act.WARM: self._operations.warm, Act.RELOAD: self._operations.reload,
                     Act.UNLOAD: self._operations.unload, Act.DECLINE: self._operations.decline}[chosen]
        self._bridge.run(self._reporting(f"{chosen} {model}", operation(model)))

    async def _reporting(self, what: str, operation: Coroutine[Any, Any, Any]) -> None:
        try:
            await operation
        except ClusterActionFailed as exc:
            self.failed.emit(what, str(exc))
