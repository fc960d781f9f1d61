"""Settings…: providers, keys, the local endpoint, start at login.

Widgets never touch httpx or the keychain: they call desktop.operations through the bridge.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QIntValidator, QKeyEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.autostart import Autostart
from desktop.bridge import Bridge
from desktop.key_check import result_text
from desktop.operations import KeyOperations, new_endpoint_token
from desktop.settings_model import ProviderEdit, ServerEdit, SettingsDocument
from router import Config, ConfigError, HealthState, Secret, Snapshot


def _number(text: str) -> int | None:
    return int(text) if text.strip() else None


def _money(text: str) -> float | None:
    return float(text) if text.strip() else None


class ProvidersTab(QWidget):
    def __init__(self, edits: list[ProviderEdit]):
        super().__init__()
        self.edits = edits
        self.order = QListWidget()
        self.up, self.down = QPushButton("Up"), QPushButton("Down")
        self.enabled, self.paid = QCheckBox("Enabled"), QCheckBox("Paid (needs consent to fail over to)")
        self.requests, self.tokens, self.cost = QLineEdit(), QLineEdit(), QLineEdit()
        for field, hint in ((self.requests, "no limit"), (self.tokens, "no limit"),
                            (self.cost, "no limit (USD)")):
            field.setPlaceholderText(hint)
        self.requests.setValidator(QIntValidator(0, 10**9))
        self.tokens.setValidator(QIntValidator(0, 2**31 - 1))
        self.urls = QListWidget()
        self.url_entry = QLineEdit()
        self.url_entry.setPlaceholderText("http://host:52415")
        self.add_url, self.remove_url = QPushButton("Add node"), QPushButton("Remove node")
        self._layout()
        self.order.currentRowChanged.connect(self._show)
        self.up.clicked.connect(lambda: self._move(-1))
        self.down.clicked.connect(lambda: self._move(1))
        self.add_url.clicked.connect(self._add_url)
        self.remove_url.clicked.connect(self._remove_url)
        self._current = -1
        self._fill_order()
        self.order.setCurrentRow(0)

    def reset(self, edits: list[ProviderEdit]) -> None:
        """Show these edits, forgetting the form's own (Cancel)."""
        row = max(0, self.order.currentRow())
        self.edits = edits
        self._current = -1
        self._fill_order()
        self.order.setCurrentRow(min(row, len(edits) - 1))

    def select(self, provider_id: str) -> bool:
        """Show that provider's section; False if there is none."""
        for row, edit in enumerate(self.edits):
            if edit.id == provider_id:
                self.order.setCurrentRow(row)
                self.order.setFocus()
                return True
        return False

    def _layout(self) -> None:
        left = QVBoxLayout()
        left.addWidget(QLabel("Tried in this order"))
        left.addWidget(self.order)
        buttons = QHBoxLayout()
        buttons.addWidget(self.up)
        buttons.addWidget(self.down)
        left.addLayout(buttons)
        form = QFormLayout()
        form.addRow(self.enabled)
        form.addRow(self.paid)
        form.addRow("Requests a day", self.requests)
        form.addRow("Tokens a day", self.tokens)
        form.addRow("USD a day", self.cost)
        form.addRow("Addresses", self.urls)
        url_row = QHBoxLayout()
        url_row.addWidget(self.url_entry)
        url_row.addWidget(self.add_url)
        url_row.addWidget(self.remove_url)
        form.addRow(url_row)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 1)
        layout.addLayout(form, 2)

    def _fill_order(self) -> None:
        self.order.clear()
        self.order.addItems([f"{e.name} ({e.id})" for e in self.edits])
        # every name whole (it was cut, under a scroll bar)
        self.order.setMinimumWidth(self.order.sizeHintForColumn(0) + 2 * self.order.frameWidth()
                                   + self.order.fontMetrics().averageCharWidth() * 2)

    def _show(self, row: int) -> None:
        self.collect()
        self._current = row
        if row < 0:
            return
        edit = self.edits[row]
        self.enabled.setChecked(edit.enabled)
        self.paid.setChecked(edit.paid)
        self.requests.setText("" if edit.daily_request_limit is None else str(edit.daily_request_limit))
        self.tokens.setText("" if edit.daily_token_limit is None else str(edit.daily_token_limit))
        self.cost.setText("" if edit.daily_cost_limit_usd is None else f"{edit.daily_cost_limit_usd:g}")
        self.urls.clear()
        self.urls.addItems(edit.base_urls)
        several = edit.several_nodes
        self.add_url.setEnabled(several)
        self.remove_url.setEnabled(several)
        self.url_entry.setEnabled(several)

    def collect(self) -> None:
        """Write the form back into the edit it shows."""
        if not 0 <= self._current < len(self.edits):
            return
        edit = self.edits[self._current]
        edit.enabled = self.enabled.isChecked()
        edit.paid = self.paid.isChecked()
        edit.daily_request_limit = _number(self.requests.text())
        edit.daily_token_limit = _number(self.tokens.text())
        edit.daily_cost_limit_usd = _money(self.cost.text())
        edit.base_urls = [self.urls.item(i).text() for i in range(self.urls.count())]

    def _move(self, step: int) -> None:
        row = self.order.currentRow()
        target = row + step
        if row < 0 or not 0 <= target < len(self.edits):
            return
        self.collect()
        self.edits[row], self.edits[target] = self.edits[target], self.edits[row]
        self._current = -1
        self._fill_order()
        self.order.setCurrentRow(target)

    def _add_url(self) -> None:
        url = self.url_entry.text().strip().rstrip("/")
        if url:
            self.urls.addItem(url)
            self.url_entry.clear()

    def _remove_url(self) -> None:
        if self.urls.count() > 1 and self.urls.currentRow() >= 0:
            self.urls.takeItem(self.urls.currentRow())


class KeyRow(QWidget):
    """A masked field; the key is never shown again once saved. What the keychain holds and what
    a test found go on a wrapped line under the field: however long, they never widen the window
    or squeeze the field."""

    def __init__(self, bridge: Bridge, provider_id: str, name: str):
        super().__init__()
        self.bridge, self.provider_id, self.name = bridge, provider_id, name
        self.keys = KeyOperations(bridge.router)
        self.field = QLineEdit()
        self.field.setEchoMode(QLineEdit.EchoMode.Password)
        self.field.setPlaceholderText(f"{name} API key")
        self.field.setMinimumWidth(self.field.fontMetrics().averageCharWidth() * 28)
        self.save, self.test, self.remove = QPushButton("Save"), QPushButton("Test"), QPushButton("Remove")
        self.state = QLabel("")
        self.state.setWordWrap(True)
        self.state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row = QHBoxLayout()
        for widget in (self.field, self.save, self.test, self.remove):
            row.addWidget(widget)
        row.setStretch(0, 1)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(row)
        column.addWidget(self.state)
        self.save.clicked.connect(self._save)
        self.test.clicked.connect(self._test)
        self.remove.clicked.connect(self._remove)

    def refresh(self) -> None:
        self.bridge.run(self.keys.stored(self.provider_id), self._show_stored)

    def say(self, text: str) -> None:
        self.state.setText(text)

    def _show_stored(self, key: Secret | None) -> None:
        self.say(f"in the keychain {key.masked()}" if key else "no key in the keychain")

    def _save(self) -> None:
        value = self.field.text().strip()
        if not value:
            return
        self.field.clear()  # never shown again
        self.bridge.run(self.keys.save(self.provider_id, value), lambda _: self.refresh())

    def _test(self) -> None:
        self.say("testing…")
        self.bridge.run(self.keys.test(self.provider_id), self._show_test)

    def _show_test(self, snapshot: Snapshot) -> None:
        provider = self.bridge.router.config.provider(self.provider_id)
        self.say(result_text(snapshot, provider))

    def _remove(self) -> None:
        """After a confirmation: requests stop going to the provider at once."""
        asked = QMessageBox(QMessageBox.Icon.Question, "Remove the key?",
                            f"Remove the {self.name} key from the keychain? Exo Bridge stops "
                            f"sending requests to {self.name} until a key is saved again.",
                            QMessageBox.StandardButton.Cancel, self)
        remove = asked.addButton("Remove", QMessageBox.ButtonRole.DestructiveRole)
        asked.setDefaultButton(QMessageBox.StandardButton.Cancel)  # Enter does not remove
        asked.exec()
        if asked.clickedButton() is remove:
            self.bridge.run(self.keys.remove(self.provider_id), lambda _: self.refresh())


class SettingsWindow(QWidget):
    saved = Signal(object)  # the new Config

    def __init__(self, bridge: Bridge, document: SettingsDocument, autostart: Autostart,
                 endpoint_token: Callable[[], str | None]):
        super().__init__()
        self.setWindowTitle("Exo Bridge — Settings")
        self.bridge, self.document, self.autostart = bridge, document, autostart
        self._endpoint_token = endpoint_token
        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.open_file = QPushButton("Open the config file")
        self.open_file.clicked.connect(self._open_file)
        self.tabs = QTabWidget()
        self.save_button = QPushButton("&Save")
        self.save_button.clicked.connect(self.save)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Close without saving (Esc)")
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addStretch()
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.error)
        layout.addWidget(self.open_file)
        layout.addWidget(self.tabs)
        layout.addLayout(buttons)
        self.providers: ProvidersTab | None = None
        self.key_rows: list[KeyRow] = []
        self.load()

    def load(self) -> None:
        try:
            self.document.load()
        except ConfigError as exc:  # broken by hand: show it, never overwrite it
            self._broken(str(exc))
            return
        self.error.hide()
        self.open_file.hide()
        self.tabs.clear()
        self.providers = ProvidersTab(self.document.providers())
        self.tabs.addTab(self.providers, "Providers")
        self.tabs.addTab(self._keys_tab(), "Keys")
        self.tabs.addTab(self._endpoint_tab(self.document.server()), "Local endpoint")
        self.tabs.addTab(self._general_tab(), "General")
        self.save_button.setEnabled(True)
        self._buttons_last_in_tab_order()

    def _buttons_last_in_tab_order(self) -> None:
        """Tab goes through the open tab's fields, then Save and Cancel (the tabs are built
        after the buttons, so their fields would otherwise come last)."""
        last, widget = None, self.tabs.nextInFocusChain()
        while widget is not None and widget is not self and widget is not self.tabs:
            if self.tabs.isAncestorOf(widget):
                last = widget
            widget = widget.nextInFocusChain()
        if last is not None:
            QWidget.setTabOrder(last, self.save_button)
        QWidget.setTabOrder(self.save_button, self.cancel_button)

    def show_provider(self, provider_id: str) -> None:
        """Open on one provider: its key when it has none or the key was rejected, else its
        limits and addresses."""
        if self.providers is None:
            return  # the config file is broken: the window says so
        status = next((s for s in self.bridge.router.statuses() if s.id == provider_id), None)
        key_row = next((r for r in self.key_rows if r.provider_id == provider_id), None)
        if key_row is not None and status is not None and (
                status.state is HealthState.NO_KEY or status.detail == "invalid key"):
            self.tabs.setCurrentIndex(1)
            key_row.field.setFocus()
            return
        self.tabs.setCurrentIndex(0)
        self.providers.select(provider_id)

    def cancel(self) -> None:
        """Close, forgetting unsaved edits (the next opening shows the settings as saved)."""
        self.hide()
        if self.providers is None or self.document.config is None:
            return
        self.providers.reset(self.document.providers())
        server = self.document.server()
        self.endpoint_enabled.setChecked(server.enabled)
        self.port.setValue(server.port or 8741)
        for kind, on in self.document.notifications().items():
            if kind in self.notify_boxes:
                self.notify_boxes[kind].setChecked(on)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.cancel()
            return
        super().keyPressEvent(event)

    def _broken(self, message: str) -> None:
        self.error.setText(f"The config file has a mistake, so settings can't be edited here "
                           f"until it is fixed:\n{message}")
        self.error.show()
        self.open_file.show()
        self.tabs.clear()
        self.save_button.setEnabled(False)

    def _keys_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        self.keychain_note = QLabel("")
        self.keychain_note.setWordWrap(True)
        self.keychain_note.hide()  # only when there is no keychain (no blank line above the keys)
        layout.addWidget(self.keychain_note)
        self.key_rows = []
        assert self.document.config is not None
        for p in self.document.config.providers:
            if not p.traits.takes_key:
                continue
            row = KeyRow(self.bridge, p.id, p.name)
            self.key_rows.append(row)
            layout.addWidget(row)
        layout.addStretch()  # the rows together at the top, not spread down the tab
        self.bridge.run(KeyOperations(self.bridge.router).keychain_problem(), self._keychain_state)
        return tab

    def _keychain_state(self, problem: str | None) -> None:
        if problem:
            self.keychain_note.setText(problem)
            self.keychain_note.show()
            for row in self.key_rows:
                row.save.setEnabled(False)
        else:
            for row in self.key_rows:
                row.refresh()

    def _endpoint_tab(self, server: ServerEdit) -> QWidget:
        tab = QWidget()
        form = QFormLayout(tab)
        self.endpoint_enabled = QCheckBox("Run the local OpenAI-compatible endpoint")
        self.endpoint_enabled.setChecked(server.enabled)
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(server.port or 8741)
        self.token = QLineEdit()
        self.token.setReadOnly(True)
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        show, regenerate = QPushButton("Show"), QPushButton("Regenerate")
        show.clicked.connect(self._show_token)
        regenerate.clicked.connect(self._regenerate)
        form.addRow(self.endpoint_enabled)
        form.addRow("Port", self.port)
        form.addRow("Token", self.token)
        row = QHBoxLayout()
        row.addWidget(show)
        row.addWidget(regenerate)
        form.addRow(row)
        return tab

    def _show_token(self) -> None:
        token = self._endpoint_token()
        self.token.setText(token or "(the endpoint is off)")
        self.token.setEchoMode(QLineEdit.EchoMode.Normal)

    def _regenerate(self) -> None:
        self.bridge.run(new_endpoint_token(),
                        lambda _secret: self.token.setText("new token saved; it applies when the "
                                                           "endpoint restarts"))

    def _general_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        self.start_at_login = QCheckBox("Start Exo Bridge at login")
        self.start_at_login.setChecked(self.autostart.enabled())
        self.start_at_login.setEnabled(self.autostart.supported)
        self.start_at_login.toggled.connect(self.autostart.set_enabled)
        layout.addWidget(self.start_at_login)
        if not self.autostart.supported:
            layout.addWidget(QLabel("On this system, add Exo Bridge to your login items by hand."))
        layout.addWidget(QLabel("Notify me when…"))
        labels = {"failover": "requests fail over to the cloud", "failback": "exo is back",
                  "invalid-key": "a key is rejected", "budget": "a budget reaches 80% or runs out",
                  "cost-anomaly": "a reported cost looks wrong",
                  "crash": "Exo Bridge quit unexpectedly (told at the next start)",
                  "ledger": "the usage ledger cannot record (paid providers go off)"}
        self.notify_boxes = {}
        for kind, on in self.document.notifications().items():
            box = QCheckBox(labels.get(kind, kind))
            box.setChecked(on)
            self.notify_boxes[kind] = box
            layout.addWidget(box)
        layout.addStretch()
        return tab

    def save(self) -> None:
        assert self.providers is not None
        self.providers.collect()
        server = ServerEdit(self.endpoint_enabled.isChecked(), self.port.value())
        try:
            config: Config = self.document.save(
                self.providers.edits, server,
                {kind: box.isChecked() for kind, box in self.notify_boxes.items()})
        except ConfigError as exc:
            self.error.setText(f"Not saved: {exc}")
            self.error.show()
            return
        self.error.hide()
        self.saved.emit(config)

    def _open_file(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.document.path)))
