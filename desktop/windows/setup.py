"""Set up…: the first-run assistant. Four pages — exo on this machine, the cloud keys, paid
failover, a test question — each saying what it found and what to do next.

Opened from the tray menu, and by itself on a first run. Widgets never touch httpx, the
keychain or the ledger: discovery, keys and the question go through desktop.operations on the
bridge (the qasync loop); the config file is edited through SettingsDocument (comments kept).
Enter is the page's main action (save a typed key, ask the typed question) or Next; Esc cancels.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent, QResizeEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QFrame,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from desktop.appearance import colours
from desktop.bridge import Bridge
from desktop.key_check import connection_failed, connection_hint
from desktop.operations import KeyOperations, SetupOperations, TestAnswer
from desktop.settings_fields import SUGGESTED_USD_A_DAY, FieldProblem, read_usd
from desktop.settings_model import SettingsDocument
from desktop.windows.chat import markdown_html
from desktop.windows.field_problem import problem_label
from router import (
    Advice,
    ConfigError,
    Found,
    HealthState,
    ProviderConfig,
    Secret,
    Snapshot,
    configured,
    exo_start_advice,
    footer_text,
)

TEST_QUESTION = "Say hello in five words."


class _Text(QTextBrowser):
    """Paragraphs that may run long (guidance, an answer): wrapped, scrolled rather than clipped
    (a QWizard gives a word-wrapped rich-text QLabel one line), drawn on the page's own
    background with the palette's text colour (light or dark alike)."""

    def __init__(self, text: str = "", lines: int = 5):
        super().__init__()
        self.source_html = ""
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.viewport().setAutoFillBackground(False)
        self.setOpenLinks(False)
        height = self.fontMetrics().lineSpacing() * lines + 8
        self.setMinimumHeight(height)
        self.short = lines < 5  # a status line or two: as tall as its text, up to MAX_LINES
        if self.short:
            self.setMaximumHeight(height)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Tab goes to the page's fields and buttons
        self.set(text)

    MAX_LINES = 8

    def set(self, text: str) -> None:
        self.source_html = text
        self.setHtml(text)
        self._fit()

    def _fit(self) -> None:
        """A short text grows to show all its lines (a failed key test's hint ran past two and
        was cut to a scrolled sliver)."""
        if not self.short:
            return
        self.document().setTextWidth(self.viewport().width())
        frame = 2 * self.frameWidth() + 8
        most = self.fontMetrics().lineSpacing() * self.MAX_LINES + frame
        need = min(most, max(self.minimumHeight(), int(self.document().size().height()) + frame))
        if self.maximumHeight() != need:
            self.setMaximumHeight(need)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def text(self) -> str:
        return self.toPlainText()


def advice_html(advice: Sequence[Advice]) -> str:
    """The guidance as paragraphs, each command in a monospaced span."""
    parts = []
    for item in advice:
        text = html.escape(item.text)
        for command in item.commands:
            quoted = html.escape(f"`{command}`")
            text = text.replace(quoted, f"<code>{html.escape(command)}</code>")
        parts.append(f"<p>{text}</p>")
    return "".join(parts)


class _Enter(QObject):
    """Enter in a field runs ``action`` (when the field has text) instead of Next."""

    def __init__(self, field: QLineEdit, action: Callable[[], None]):
        super().__init__(field)
        self.field, self.action = field, action

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (isinstance(event, QKeyEvent) and event.type() == QEvent.Type.KeyPress
                and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                and self.field.text().strip()):
            self.action()
            return True
        return super().eventFilter(watched, event)


# -- a. exo ----------------------------------------------------------------------------------
class ExoPage(QWizardPage):
    def __init__(self, wizard: SetupWindow):
        super().__init__()
        self.owner = wizard
        self.setTitle("exo on this machine")
        self.setSubTitle("exo runs models on your own machines, free. Exo Bridge asks it first.")
        self.found_label = _Text("Looking for exo…")
        self.use = QPushButton("Use this address")
        self.use.setVisible(False)
        self.use.clicked.connect(self._use)
        self.again = QPushButton("Look again")
        self.again.clicked.connect(self.look)
        for button in (self.use, self.again):
            button.setAutoDefault(False)  # Enter is Next; Space presses these
        self.found: list[Found] = []
        self.offered: Found | None = None  # reachable, but not in the config
        layout = QVBoxLayout(self)
        layout.addWidget(self.found_label, 1)
        layout.addWidget(self.use)
        layout.addWidget(self.again)

    def initializePage(self) -> None:
        self.look()

    def look(self) -> None:
        self.found_label.set("Looking for exo on this machine…")
        self.use.setVisible(False)
        self.again.setEnabled(False)
        self.owner.bridge.run(self.owner.setup.discover(), self._show)

    def _show(self, found: list[Found]) -> None:
        self.found = found
        self.again.setEnabled(True)
        exo = self.owner.exo_provider()
        reachable = [f for f in found if f.reachable]
        if not reachable:
            self.offered = None
            advice = exo_start_advice(exo, self.owner.config_path(), "nothing answered") \
                if exo is not None else None
            self.found_label.set("<p><b>exo is not running here.</b></p>"
                                     + (advice_html([advice]) if advice else "")
                                     + "<p>You can go on without it: the cloud keys are next.</p>")
            return
        lines = [f"<p><b>Found exo</b> at {html.escape(f.url)} ({f.generation} API): "
                 f"{len(f.models)} model(s) served; loaded now: "
                 f"{html.escape(', '.join(f.loaded) or 'none')}.</p>" for f in reachable]
        best = reachable[0]
        if not best.loaded:
            model = self.owner.document_default_model()
            lines.append(f"<p>No model is loaded yet. Load one with "
                         f"<code>exo-bridge exo warm {html.escape(model)}</code>.</p>")
        known = exo.base_urls if exo is not None else ()
        self.offered = None if any(configured(f.url, known) for f in reachable) else best
        if self.offered is not None:
            lines.append(f"<p>This address is not in your config ({html.escape(', '.join(known))}).</p>")
            self.use.setText(f"Use {self.offered.url}")
            self.use.setVisible(True)
        else:
            lines.append("<p>Your config already points there.</p>")
        self.found_label.set("".join(lines))

    def _use(self) -> None:
        exo = self.owner.exo_provider()
        if self.offered is None or exo is None:
            return
        url = self.offered.url
        if self.owner.write(lambda doc: doc.use_address(exo.id, url)):
            self.use.setVisible(False)
            self.found_label.set(self.found_label.source_html + "<p>Saved, and in use now.</p>")


# -- b. keys ---------------------------------------------------------------------------------
class KeyField(QWidget):
    """One cloud provider's key: typed (hidden), stored in the keychain, tested at once."""

    def __init__(self, bridge: Bridge, provider: ProviderConfig):
        super().__init__()
        self.bridge, self.provider = bridge, provider
        self.keys = KeyOperations(bridge.router)
        self.field = QLineEdit()
        self.field.setEchoMode(QLineEdit.EchoMode.Password)
        self.field.setPlaceholderText(f"{provider.name} API key (Enter saves and tests it)")
        self.field.setAccessibleName(f"{provider.name} API key")
        self.field.installEventFilter(_Enter(self.field, self.save_and_test))
        self.save = QPushButton("Save and test")
        self.save.clicked.connect(self.save_and_test)
        self.save.setAutoDefault(False)
        self.state = _Text("", lines=2)
        self.works: bool | None = None

    def refresh(self) -> None:
        self.bridge.run(self.keys.stored(self.provider.id), self._show_stored)

    def _show_stored(self, key: Secret | None) -> None:
        if self.works is None:
            self.state.set(html.escape(f"A key is stored ({key.masked()})." if key
                                       else "No key stored."))

    def save_and_test(self) -> None:
        value = self.field.text().strip()
        if not value:
            return
        self.field.clear()  # never shown again
        self.state.set("Saving and testing…")
        self.bridge.run(self._save_then_test(value), self._show_test)

    async def _save_then_test(self, value: str) -> Snapshot:
        await self.keys.save(self.provider.id, value)
        return await self.keys.test(self.provider.id)

    def _show_test(self, snapshot: Snapshot) -> None:
        self.works = snapshot.state is HealthState.HEALTHY
        if self.works:
            text = f"✓ Saved in the keychain; it works ({snapshot.detail})."
        elif snapshot.invalid_key:
            text = (f"✗ Saved, but {self.provider.name} rejected it: invalid key "
                    f"({snapshot.detail}). Paste the key again.")
        elif connection_failed(snapshot):
            text = f"✗ Saved, but not tested: {snapshot.detail}. {connection_hint(self.provider)}"
        else:
            text = f"✗ Saved, but the test failed: {snapshot.detail}."
        self.state.set(html.escape(text))


class KeysPage(QWizardPage):
    def __init__(self, wizard: SetupWindow):
        super().__init__()
        self.owner = wizard
        self.setTitle("Cloud keys (optional)")
        self.setSubTitle("When exo cannot answer, a cloud provider can. Keys go to the OS keychain, "
                         "never to a file. Skip this page to stay local.")
        grid = QGridLayout(self)
        self.rows: list[KeyField] = []
        for index, provider in enumerate(wizard.cloud_providers()):
            row = KeyField(wizard.bridge, provider)
            self.rows.append(row)
            grid.addWidget(QLabel(provider.name), 2 * index, 0)
            grid.addWidget(row.field, 2 * index, 1)
            grid.addWidget(row.save, 2 * index, 2)
            grid.addWidget(row.state, 2 * index + 1, 1, 1, 2)
        grid.setColumnStretch(1, 1)
        grid.setRowStretch(2 * len(self.rows), 1)

    def initializePage(self) -> None:
        for row in self.rows:
            row.refresh()
        if self.rows:
            self.rows[0].field.setFocus()


# -- c. paid failover -----------------------------------------------------------------------
class PaidPage(QWizardPage):
    """May a paid provider answer when exo cannot? Nothing is preselected until the file says
    so (the user chooses); allowing it comes with a daily USD limit per paid provider, a
    suggestion filled in that the user confirms or changes."""

    def __init__(self, wizard: SetupWindow):
        super().__init__()
        self.owner = wizard
        self.setTitle("Paid failover")
        self.allowed = QRadioButton("Allowed: fail over to paid providers, within a daily USD "
                                    "limit (every cent is recorded in the cost graph)")
        self.local = QRadioButton("Local only: never spend money; free providers still answer")
        self.group = QButtonGroup(self)
        self.group.addButton(self.allowed)
        self.group.addButton(self.local)
        self.limits: dict[str, QLineEdit] = {}
        self.problems: dict[str, QLabel] = {}
        self.limit_rows = QGridLayout()
        self.note = _Text("", lines=2)
        layout = QVBoxLayout(self)
        layout.addWidget(self.allowed)
        layout.addLayout(self.limit_rows)
        layout.addWidget(self.local)
        layout.addWidget(self.note, 1)
        self.group.buttonToggled.connect(lambda _button, _on: self._follow_choice())

    def _paid(self) -> list[ProviderConfig]:
        return [p for p in self.owner.bridge.router.config.providers if p.paid and p.enabled]

    def _fill_limits(self) -> None:
        """One "at most … USD a day" field per paid provider: its limit, or the suggestion."""
        while self.limit_rows.count():
            item = self.limit_rows.takeAt(0)
            if item is not None and (widget := item.widget()) is not None:
                widget.deleteLater()
        self.limits, self.problems = {}, {}
        for row, provider in enumerate(self._paid()):
            limit = provider.daily_cost_limit_usd
            field = QLineEdit(f"{SUGGESTED_USD_A_DAY if limit is None else limit:.2f}")
            field.setPlaceholderText("no limit")
            field.setAccessibleName(f"{provider.name}: at most this many USD a day")
            label = QLabel(f"{provider.name}: at most")
            label.setBuddy(field)
            problem = problem_label()
            field.textEdited.connect(lambda _text, pid=provider.id: self._check(pid))
            self.limit_rows.addWidget(label, row * 2, 0)
            self.limit_rows.addWidget(field, row * 2, 1)
            self.limit_rows.addWidget(QLabel("USD a day" + ("" if limit is not None
                                                            else " (suggested)")), row * 2, 2)
            self.limit_rows.addWidget(problem, row * 2 + 1, 1, 1, 2)
            self.limits[provider.id], self.problems[provider.id] = field, problem
        self.limit_rows.setContentsMargins(24, 0, 0, 0)  # under "Allowed", indented

    def initializePage(self) -> None:
        paid = [p.name for p in self._paid()] or ["none"]
        self.setSubTitle(f"May a paid provider ({', '.join(paid)}) answer when exo cannot? "
                         "Choose one.")
        self._fill_limits()
        chosen = self.owner.document.paid_failover_chosen()
        self.group.setExclusive(False)  # so that neither can be checked: nothing chosen yet
        self.allowed.setChecked(chosen is True)
        self.local.setChecked(chosen is False)
        self.group.setExclusive(True)
        (self.local if chosen is False else self.allowed).setFocus()
        self._follow_choice()
        self.note.set(html.escape(f"Written as allow_paid_failover and daily_cost_limit_usd in "
                                  f"{self.owner.config_path()}. The chat asks before the first "
                                  "paid answer of each day."))

    def _follow_choice(self) -> None:
        for field in self.limits.values():
            field.setEnabled(self.allowed.isChecked())
        self.completeChanged.emit()

    def _check(self, provider_id: str) -> bool:
        field, problem = self.limits[provider_id], self.problems[provider_id]
        try:
            read_usd(field.text())
        except FieldProblem as exc:
            problem.setText(str(exc))
            problem.show()
            self.completeChanged.emit()
            return False
        problem.hide()
        self.completeChanged.emit()
        return True

    def isComplete(self) -> bool:
        if self.local.isChecked():
            return True
        return self.allowed.isChecked() and all(self._valid(f.text()) for f in self.limits.values())

    @staticmethod
    def _valid(text: str) -> bool:
        try:
            read_usd(text)
        except FieldProblem:
            return False
        return True

    def validatePage(self) -> bool:
        allowed = self.allowed.isChecked()
        limits = {pid: read_usd(field.text()) for pid, field in self.limits.items()} \
            if allowed else None
        return self.owner.write(lambda doc: doc.set_paid_failover(allowed, limits))


# -- d. test question -----------------------------------------------------------------------
class TestPage(QWizardPage):
    def __init__(self, wizard: SetupWindow):
        super().__init__()
        self.owner = wizard
        self.setTitle("Try it")
        self.setSubTitle("Ask a short question the way the chat window does (Enter asks).")
        self.question = QLineEdit(TEST_QUESTION)
        self.question.setAccessibleName("Test question")
        self.question.installEventFilter(_Enter(self.question, self.ask))
        self.ask_button = QPushButton("Ask")
        self.ask_button.clicked.connect(self.ask)
        self.ask_button.setAutoDefault(False)
        self.answer = _Text("")
        self.who = _Text("", lines=2)
        self.outcome: TestAnswer | None = None
        layout = QVBoxLayout(self)
        layout.addWidget(self.question)
        layout.addWidget(self.ask_button)
        layout.addWidget(self.answer, 1)
        layout.addWidget(self.who)

    def initializePage(self) -> None:
        self.question.setFocus()

    def ask(self) -> None:
        text = self.question.text().strip()
        if not text:
            return
        self.ask_button.setEnabled(False)
        self.answer.set("Asking…")
        self.who.set("")
        self.owner.bridge.run(self.owner.setup.ask(text), self._show)

    def _show(self, outcome: TestAnswer) -> None:
        self.outcome = outcome
        self.ask_button.setEnabled(True)
        result = outcome.result
        if result is None:
            self.answer.set("<p><b>No answer.</b> What to do:</p>" + advice_html(outcome.advice)
                                if outcome.advice else f"<p><b>No answer:</b> "
                                f"{html.escape(outcome.error)}</p>")
            return
        # a model's answer is Markdown: rendered as the chat window does (no Copy links here)
        self.answer.set(markdown_html(result.text.strip(), None, colours(self.palette())))
        names = {p.id: p.name for p in self.owner.bridge.router.config.providers}
        name = names.get(result.provider_used, result.provider_used)
        self.who.set(html.escape(f"Answered by {footer_text(result, f'{name} ({result.model})')}"))


# -- the assistant ---------------------------------------------------------------------------
class SetupWindow(QWizard):
    """``done_setup(wrote)``: emitted when the assistant closes (finished or cancelled);
    ``wrote`` says the config file was changed (the running router took each change on at
    once; the app catches up with the file)."""

    done_setup = Signal(bool)

    def __init__(self, bridge: Bridge, document: SettingsDocument,
                 setup: SetupOperations | None = None):
        super().__init__()
        self.bridge, self.document = bridge, document
        self.setup = setup or SetupOperations(bridge.router)
        self.wrote = False  # the config file was changed (the app takes it on when it closes)
        self.setWindowTitle("Exo Bridge — Set up")
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        metrics = self.fontMetrics()  # room for the guidance, in the font's units (HiDPI too)
        self.resize(metrics.averageCharWidth() * 96, metrics.lineSpacing() * 30)
        self.problem = ""  # the last config problem shown
        try:
            document.load()
        except ConfigError as exc:
            self.problem = str(exc)
        self.exo_page, self.keys_page = ExoPage(self), KeysPage(self)
        self.paid_page, self.test_page = PaidPage(self), TestPage(self)
        for page in (self.exo_page, self.keys_page, self.paid_page, self.test_page):
            page.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
            self.addPage(page)
        self.finished.connect(self._closed)

    # -- what the pages share ---------------------------------------------------------------
    def exo_provider(self) -> ProviderConfig | None:
        return next((p for p in self.bridge.router.config.providers if p.traits.local
                     and p.traits.several_nodes), None)

    def cloud_providers(self) -> list[ProviderConfig]:
        return [p for p in self.bridge.router.config.providers if p.traits.takes_key]

    def config_path(self) -> str:
        return str(self.document.path)

    def document_default_model(self) -> str:
        return self.bridge.router.config.default_model or "MODEL"

    def write(self, edit: Callable[[SettingsDocument], object]) -> bool:
        """Apply one edit to the config file; a file that will not load is shown, not
        overwritten (False)."""
        try:
            if self.document.config is None:
                self.document.load()
            edit(self.document)
        except ConfigError as exc:
            self.problem = str(exc)
            self.bridge.error.emit(f"The config was not changed: {exc}")
            return False
        assert self.document.config is not None
        self.setup.take(self.document.config)  # in use at once (exo's address, consent, limits)
        self.wrote = True
        return True

    def present(self) -> None:
        """Show it from its first page (again, when it was closed), on the file as it is now."""
        if not self.isVisible():
            try:
                self.document.load()
            except ConfigError as exc:
                self.problem = str(exc)
            self.restart()
        self.show()
        self.raise_()
        self.activateWindow()

    def _closed(self, _result: int) -> None:
        """A first run ends here either way: the file now exists, so the next start is none."""
        try:
            self.document.ensure_written()
        except (ConfigError, OSError) as exc:
            self.bridge.error.emit(f"The config file could not be written: {exc}")
        self.done_setup.emit(self.wrote)
