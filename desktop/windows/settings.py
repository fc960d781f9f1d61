"""Settings…: providers, keys, the local endpoint, start at login.

Widgets never touch httpx or the keychain: they call desktop.operations through the bridge.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QKeyEvent
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
from desktop.operations import KeyOperations, new_endpoint_token, token_from_environment
from desktop.settings_fields import (
    SUGGESTED_USD_A_DAY,
    FieldProblem,
    read_address,
    read_count,
    read_usd,
)
from desktop.settings_model import ProviderEdit, ServerEdit, SettingsDocument
from desktop.windows.field_problem import problem_label
from router import Config, ConfigError, HealthState, Secret, Snapshot

LIMIT_FIELDS = {"daily_request_limit": ("&Requests a day", read_count),
                "daily_token_limit": ("&Tokens a day", read_count),
                "daily_cost_limit_usd": ("&USD a day", read_usd)}  # Alt+R, Alt+T, Alt+U


def _shown_value(name: str, value: int | float | None) -> str:
    if value is None:
        return ""
    return f"{value:g}" if name == "daily_cost_limit_usd" else str(value)


class ProvidersTab(QWidget):
    def __init__(self, edits: list[ProviderEdit]):
        super().__init__()
        self.edits = edits
        self.order = QListWidget()
        self.up, self.down = QPushButton("Up"), QPushButton("Down")
        self.enabled, self.paid = QCheckBox("Enabled"), QCheckBox("Paid (needs consent to fail over to)")
        self.requests, self.tokens, self.cost = QLineEdit(), QLineEdit(), QLineEdit()
        self.fields = {"daily_request_limit": self.requests, "daily_token_limit": self.tokens,
                       "daily_cost_limit_usd": self.cost}
        self.problems = {name: problem_label() for name in self.fields}
        for field, hint in ((self.requests, "no limit"), (self.tokens, "no limit"),
                            (self.cost, "no limit (USD)")):
            field.setPlaceholderText(hint)
        self.urls = QListWidget()
        self.url_entry = QLineEdit()
        self.url_entry.setPlaceholderText("http://host:52415")
        self.url_problem = problem_label()
        self.add_url, self.remove_url = QPushButton("Add node"), QPushButton("Remove node")
        self.typed: dict[str, dict[str, str]] = {}  # provider id -> field -> text with a problem
        self._layout()
        self.order.currentRowChanged.connect(self._show)
        self.up.clicked.connect(lambda: self._move(-1))
        self.down.clicked.connect(lambda: self._move(1))
        self.add_url.clicked.connect(self._add_url)
        self.url_entry.returnPressed.connect(self._add_url)
        self.url_entry.textEdited.connect(lambda _text: self._check_address(quiet_if_empty=True))
        for name, field in self.fields.items():
            field.textEdited.connect(lambda _text, name=name: self._check(name))
        self.remove_url.clicked.connect(self._remove_url)
        self._current = -1
        self._fill_order()
        self.order.setCurrentRow(0)

    def reset(self, edits: list[ProviderEdit]) -> None:
        """Show these edits, forgetting the form's own (Cancel)."""
        row = max(0, self.order.currentRow())
        self.edits = edits
        self.typed = {}
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
        for name, (words, _read) in LIMIT_FIELDS.items():
            label = QLabel(words)
            label.setBuddy(self.fields[name])  # its Alt+letter goes to the field itself
            form.addRow(label, self._with_problem(self.fields[name], self.problems[name]))
        form.addRow("Addresses", self.urls)
        url_row = QHBoxLayout()
        url_row.addWidget(self.url_entry)
        url_row.addWidget(self.add_url)
        url_row.addWidget(self.remove_url)
        form.addRow(url_row)
        form.addRow(self.url_problem)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 1)
        layout.addLayout(form, 2)

    @staticmethod
    def _with_problem(field: QLineEdit, problem: QLabel) -> QWidget:
        cell = QWidget()
        column = QVBoxLayout(cell)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addWidget(field)
        column.addWidget(problem)
        return cell

    def _fill_order(self) -> None:
        self.order.clear()
        self.order.addItems([f"{e.name} ({e.id})" for e in self.edits])
        # every name whole (it was cut, under a scroll bar)
        self.order.setMinimumWidth(self.order.sizeHintForColumn(0) + 2 * self.order.frameWidth()
                                   + self.order.fontMetrics().averageCharWidth() * 2)

    def _show(self, row: int) -> None:
        self.collect()
        self._current = row
        self.url_problem.hide()
        if row < 0:
            return
        edit = self.edits[row]
        self.enabled.setChecked(edit.enabled)
        self.paid.setChecked(edit.paid)
        self.cost.setPlaceholderText(f"no limit (suggested: {SUGGESTED_USD_A_DAY:.2f})"
                                     if edit.paid else "no limit (USD)")
        typed = self.typed.get(edit.id, {})
        for name, field in self.fields.items():
            field.setText(typed.get(name, _shown_value(name, getattr(edit, name))))
            self._check(name)
        self.urls.clear()
        self.urls.addItems(edit.base_urls)
        several = edit.several_nodes
        self.add_url.setEnabled(several)
        self.remove_url.setEnabled(several)
        self.url_entry.setEnabled(several)

    def _check(self, name: str) -> bool:
        """Check one limit field as it stands: its problem shown beside it, or hidden."""
        field, problem = self.fields[name], self.problems[name]
        try:
            LIMIT_FIELDS[name][1](field.text())
        except FieldProblem as exc:
            problem.setText(str(exc))
            problem.show()
            field.setAccessibleDescription(str(exc))
            return False
        problem.hide()
        field.setAccessibleDescription("")
        return True

    def collect(self) -> None:
        """Write the form back into the edit it shows; a field whose text has a problem keeps
        that text (shown again, and Save refuses) and leaves the edit's value as it was."""
        if not 0 <= self._current < len(self.edits):
            return
        edit = self.edits[self._current]
        edit.enabled = self.enabled.isChecked()
        edit.paid = self.paid.isChecked()
        typed = self.typed.setdefault(edit.id, {})
        for name, field in self.fields.items():
            try:
                setattr(edit, name, LIMIT_FIELDS[name][1](field.text()))
                typed.pop(name, None)
            except FieldProblem:
                typed[name] = field.text()
        if not typed:
            del self.typed[edit.id]
        edit.base_urls = [self.urls.item(i).text() for i in range(self.urls.count())]

    def first_problem(self) -> tuple[int, str, str] | None:
        """(row, field, what is wrong) of the first field whose text has a problem, else None."""
        self.collect()
        for row, edit in enumerate(self.edits):
            for name, text in self.typed.get(edit.id, {}).items():
                try:
                    LIMIT_FIELDS[name][1](text)
                except FieldProblem as exc:
                    words = LIMIT_FIELDS[name][0].replace("&", "")
                    return row, name, f"{edit.name}'s {words}: {exc}"
        return None

    def focus_problem(self, row: int, name: str) -> None:
        self.order.setCurrentRow(row)
        self.fields[name].setFocus()
        self.fields[name].selectAll()

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

    def _check_address(self, quiet_if_empty: bool = False) -> str | None:
        text = self.url_entry.text()
        if quiet_if_empty and not text.strip():
            self.url_problem.hide()
            return None
        try:
            url = read_address(text)
        except FieldProblem as exc:
            self.url_problem.setText(str(exc))
            self.url_problem.show()
            return None
        self.url_problem.hide()
        return url

    def _add_url(self) -> None:
        url = self._check_address()
        if url is None:
            self.url_entry.setFocus()
            return
        if url not in [self.urls.item(i).text() for i in range(self.urls.count())]:
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


def confirm(parent: QWidget, title: str, text: str, yes: str,
            then: Callable[[], object]) -> QMessageBox:
    """Ask before something that cannot be undone; ``then`` runs on yes. Cancel is the default
    (Enter, Esc). Window-modal and not a nested event loop (the asyncio loop runs on)."""
    box = QMessageBox(QMessageBox.Icon.Question, title, f"<b>{html.escape(title)}</b>",
                      QMessageBox.StandardButton.NoButton, parent)
    box.setInformativeText(html.escape(text))
    box.setObjectName("confirm")
    accept = box.addButton(yes, QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(box.addButton(QMessageBox.StandardButton.Cancel))
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.buttonClicked.connect(lambda button: then() if button is accept else None)
    box.open()
    return box


class SettingsWindow(QWidget):
    saved = Signal(object)  # the new Config
    token_regenerated = Signal(object)  # the new endpoint token (a Secret): use it at once

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
        self.confirmation: QMessageBox | None = None  # the question open now, if any
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
                status.state is HealthState.NO_KEY or status.invalid_key):
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
        self.error.hide()  # a "Not saved" of the edits forgotten now
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
        self.show_token, self.regenerate = QPushButton("Show"), QPushButton("Regenerate…")
        self.show_token.clicked.connect(self._show_token)
        self.regenerate.clicked.connect(self._regenerate)
        self.token_note = QLabel("")  # what a regeneration did (never in the Token field)
        self.token_note.setWordWrap(True)
        self.token_note.hide()
        if (variable := token_from_environment()) is not None:
            self.regenerate.setEnabled(False)
            self.regenerate.setToolTip(f"The token is ${variable}: change it there")
        form.addRow(self.endpoint_enabled)
        form.addRow("Port", self.port)
        form.addRow("Token", self.token)
        row = QHBoxLayout()
        row.addWidget(self.show_token)
        row.addWidget(self.regenerate)
        form.addRow(row)
        form.addRow(self.token_note)
        return tab

    def _show_token(self) -> None:
        token = self._endpoint_token()
        if token is None:
            self.token.clear()
            self.token.setPlaceholderText("(the endpoint is off)")
        else:
            self.token.setText(token)
        self.token.setEchoMode(QLineEdit.EchoMode.Normal)

    def _regenerate(self) -> None:
        """A new token, after the user says yes: in use at once, the old one refused."""
        self.confirmation = confirm(
            self, "Make a new endpoint token?",
            "Apps that use the local endpoint with the current token will be refused (401) "
            "from now on, until you give them the new one (Copy endpoint token in the tray "
            "menu, or `exo-bridge token`).", "Make a new token",
            lambda: self.bridge.run(new_endpoint_token(), self._regenerated))

    def _regenerated(self, token: Secret) -> None:
        self.token_regenerated.emit(token)
        shown = self.token.echoMode() == QLineEdit.EchoMode.Normal
        self.token.clear()
        if shown:
            self._show_token()
        running = self._endpoint_token() is not None
        self.token_note.setText(
            ("New token in use now; the old one is refused. " if running else
             "New token saved; the endpoint (off now) takes it when it is turned on. ")
            + "Give it to your apps: Copy endpoint token in the tray menu, or `exo-bridge token`.")
        self.token_note.show()

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
        problem = self.providers.first_problem()
        if problem is not None:  # said beside the field too; the file is left as it was
            row, name, words = problem
            self.error.setText(f"Not saved: {words}")
            self.error.show()
            self.tabs.setCurrentWidget(self.providers)
            self.providers.focus_problem(row, name)
            return
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
