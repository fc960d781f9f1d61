"""The tray icon, its menu and tooltip; a small status window when there is no tray."""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeyEvent, QKeySequence, QResizeEvent
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QSystemTrayIcon,
    QVBoxLayout,
    QWidget,
)

from desktop.about import about_html, app_version, open_log, show_about
from desktop.appearance import colours
from desktop.bridge import Bridge
from desktop.cluster_menu import ClusterMenu
from desktop.cluster_model import cluster_menu, warming_note_line
from desktop.icons import app_icon, cached_dot_pixmap, dot_icon, menu_dot_icon
from desktop.menu_rows import InfoRow
from desktop.notify import Debouncer, NativeNotifications, Note, note_for
from desktop.present import present
from desktop.status_model import Light, ProviderRow, TrayView, tray_view
from router import CrashWatch

# Shown in the menu; they work app-wide while one of our windows has the focus (a tray menu's
# own shortcuts are hints only: the windows carry the same actions, see ``window_actions``).
SHORTCUTS = {"chat": "Ctrl+Shift+C", "costs": "Ctrl+Shift+G", "settings": "Ctrl+,"}
REFRESH_MS = 5000  # the exo probe interval: the tray never polls faster than the probes
AFTER_REQUEST_MS = 250  # finished requests are shown together: one refresh, however many


class StatusWindow(QWidget):
    """Shown instead of a tray icon where the desktop has no tray, so the app is never an
    invisible process: the tray menu's state and actions, usable from the keyboard (Tab moves
    through the providers and the buttons, Enter opens one)."""

    provider_requested = Signal(str)
    chat_requested = Signal()
    costs_requested = Signal()
    settings_requested = Signal()
    quit_requested = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("Exo Bridge")
        self._light: Light | None = None
        self._view: TrayView | None = None
        self.dot = QLabel()
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.providers = QLabel()  # the note lines (a ledger that cannot record)
        self.providers.setWordWrap(True)
        self.rows: list[tuple[QLabel, QLabel]] = []
        self._shown_rows: list[ProviderRow | None] = []  # what each row shows now
        self._rows = QGridLayout()
        self._rows.setColumnStretch(1, 1)
        top = QHBoxLayout()
        top.addWidget(self.dot)
        top.addWidget(self.summary, 1)
        buttons = QHBoxLayout()
        self.buttons: list[QPushButton] = []
        for text, signal in (("&Chat…", self.chat_requested), ("C&osts…", self.costs_requested),
                             ("&Settings…", self.settings_requested), ("&Quit", self.quit_requested)):
            button = QPushButton(text)
            button.clicked.connect(signal.emit)
            buttons.addWidget(button)
            self.buttons.append(button)
        layout = self._layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(self._rows)
        layout.addWidget(self.providers)
        layout.addLayout(buttons)

    def show_view(self, view: TrayView) -> None:
        if self._light is not view.light:
            self.dot.setPixmap(cached_dot_pixmap(view.light, 24, self.devicePixelRatioF()))
            self._light = view.light
        if self.summary.text() != view.tooltip:
            self.summary.setText(view.tooltip)
        if self._view is None or self._view.rows != view.rows:
            self._show_rows(view.rows)
        notes = "\n".join(view.lines[len(view.rows):])
        if self.providers.text() != notes:
            self.providers.setText(notes)
        self.providers.setVisible(bool(notes))
        self._view = view
        self._fit()

    def _fit(self) -> None:
        """Tall enough for every wrapped line at the width it has now (a top-level window
        does not grow by itself for text that wraps to more lines: it was cut)."""
        layout = self._layout
        layout.activate()
        need = layout.totalHeightForWidth(self.width()) if layout.hasHeightForWidth() \
            else layout.totalMinimumSize().height()
        if need > 0 and self.minimumHeight() != need:
            self.setMinimumHeight(need)
        if self.height() < need:
            self.resize(self.width(), need)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self._fit()  # narrower: more lines

    def _show_rows(self, rows: tuple[ProviderRow, ...], *, again: bool = False) -> None:
        """Hand Qt only the rows that changed (a request changes one row's counts; every
        row's rich text and dot each time cost ~20 ms a refresh); ``again``: all of them."""
        while len(self.rows) < len(rows):
            dot, text = QLabel(), QLabel()
            text.setTextFormat(Qt.TextFormat.RichText)
            text.setWordWrap(True)
            text.setTextInteractionFlags(Qt.TextInteractionFlag.LinksAccessibleByKeyboard
                                         | Qt.TextInteractionFlag.LinksAccessibleByMouse)
            text.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            text.linkActivated.connect(lambda link: self.provider_requested.emit(
                link.partition(":")[2]))
            self._rows.addWidget(dot, len(self.rows), 0, Qt.AlignmentFlag.AlignTop)
            self._rows.addWidget(text, len(self.rows), 1)
            self.rows.append((dot, text))
            self._shown_rows.append(None)
        muted = colours(self.palette()).muted
        ratio = self.devicePixelRatioF()
        for i, ((dot, text), row) in enumerate(zip(self.rows, rows, strict=False)):
            old = None if again else self._shown_rows[i]
            if old == row:
                continue
            if old is None or old.light is not row.light:
                dot.setPixmap(cached_dot_pixmap(row.light, 16, ratio))
            rest = f" · {html.escape(row.usage)}"
            if row.reason:
                rest += f" · <span style='color:{muted}'>{html.escape(row.reason)}</span>"
            text.setText(f"<a href='provider:{html.escape(row.id)}'>{html.escape(row.name)}</a>{rest}")
            if old is None or old.detail != row.detail:
                text.setToolTip(row.detail)
            dot.show()
            text.show()
            self._shown_rows[i] = row
        for i, (dot, text) in enumerate(self.rows[len(rows):], start=len(rows)):
            dot.hide()
            text.hide()
            self._shown_rows[i] = None

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange and self._view is not None:
            self._show_rows(self._view.rows, again=True)  # the muted colour of the reasons
        super().changeEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.showMinimized()  # never hidden: with no tray this window is the app
            return
        super().keyPressEvent(event)


class Tray(QObject):
    quit_requested = Signal()
    settings_requested = Signal()
    setup_requested = Signal()  # the first-run assistant (Set up…)
    chat_requested = Signal()
    costs_requested = Signal()
    paused_changed = Signal(bool)
    provider_requested = Signal(str)  # a provider's row was clicked: its settings, by id

    def __init__(self, bridge: Bridge, *, endpoint_url: Callable[[], str | None],
                 endpoint_token: Callable[[], str | None], autostart: object | None = None,
                 clock: Callable[[], float] = time.monotonic, log_file: Path | None = None,
                 config_file: Path | None = None):
        super().__init__()
        self.bridge = bridge
        self.router = bridge.router
        self.starting = True
        self.view = tray_view([], starting=True)
        self.debouncer = Debouncer(clock, enabled=dict(self.router.config.notifications))
        self.shown_notes: list[Note] = []  # what reached the user, newest last
        self.native: NativeNotifications | None = None  # else the tray balloon
        self._endpoint_url = endpoint_url
        self._endpoint_token = endpoint_token
        self._autostart = autostart
        self.log_file = log_file if log_file is not None else CrashWatch("tray").log_file
        self.config_file = config_file
        self.about_box: QMessageBox | None = None
        self.icon = QSystemTrayIcon(dot_icon(Light.GREY))
        self.menu = QMenu()
        self.status_window: StatusWindow | None = None
        self._shown = False  # whether the icon and tooltip have been set once
        self._provider_actions: list[QAction] = []
        self._shown_rows: list[ProviderRow | None] = []
        self.window_actions: list[QAction] = []  # Chat, Costs, Settings: add them to each window
        self._build_menu()
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._on_activated)
        self._balloon: Note | None = None  # the last balloon shown, for its click
        self.icon.messageClicked.connect(self._on_balloon_clicked)
        for signal in (bridge.health_changed, bridge.failover, bridge.budget_alert,
                       bridge.cost_anomaly, bridge.usage_invalid, bridge.ledger_problem,
                       bridge.cluster, bridge.account):
            signal.connect(self._on_event)
        self._soon = QTimer(self)
        self._soon.setSingleShot(True)
        self._soon.setInterval(AFTER_REQUEST_MS)
        self._soon.timeout.connect(self.refresh)
        bridge.request_finished.connect(lambda _event: self._soon.start()
                                        if not self._soon.isActive() else None)
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self._tick)

    # -- building -------------------------------------------------------------------------
    def _build_menu(self) -> None:
        self.menu.setToolTipsVisible(True)  # a row's tooltip: the provider's whole state
        for provider in self.router.config.providers:
            action = self.menu.addAction(menu_dot_icon(Light.GREY), provider.name.replace("&", "&&"))
            self._provider_action(action, provider.id)
        self.ledger_line = InfoRow("", self.menu)  # only while the ledger cannot record
        self.menu.addAction(self.ledger_line)
        self.ledger_line.setVisible(False)
        self.cluster = ClusterMenu(self.menu, self.menu.addSeparator(), self.bridge)
        self.cluster.failed.connect(lambda what, why: self.notify(
            Note("cluster", f"failed:{what}", f"Could not {what}", why)))
        self.open_chat = self._window_action("&Chat…", "chat", self.chat_requested.emit)
        self.open_costs = self._window_action("C&osts…", "costs", self.costs_requested.emit)
        self.check_accounts = self.menu.addAction("Check &accounts now", self._check_accounts)
        self.open_settings = self._window_action("&Settings…", "settings",
                                                 self.settings_requested.emit)
        self.set_up = self.menu.addAction("Set &up…", self.setup_requested.emit)
        self.copy_url = self.menu.addAction("Copy endpoint &URL", self._copy_url)
        self.copy_token = self.menu.addAction("Copy endpoint &token", self._copy_token)
        self.pause = self.menu.addAction("&Pause cloud failover (local only)")
        self.pause.setCheckable(True)
        self.pause.toggled.connect(self._on_pause)
        self.login = self.menu.addAction("Start at &login")
        self.login.setCheckable(True)
        if self._autostart is not None:
            self.login.setChecked(self._autostart.enabled())  # type: ignore[attr-defined]
            self.login.toggled.connect(self._autostart.set_enabled)  # type: ignore[attr-defined]
        else:
            self.login.setEnabled(False)
        self.menu.addSeparator()
        self.about = self.menu.addAction(f"A&bout Exo Bridge {app_version()}…", self._about)
        self.open_log = self.menu.addAction("Open lo&g", self._open_log)
        self.menu.addAction("&Quit", self.quit_requested.emit)

    def _provider_action(self, action: QAction, provider_id: str) -> None:
        action.setData(provider_id)  # the row's provider: set anew when the order changes
        action.triggered.connect(lambda _=False: self.provider_requested.emit(action.data()))
        self._provider_actions.append(action)
        self._shown_rows.append(None)

    def take_config(self) -> None:
        """The router's config changed in place (Settings): one row per provider in its new
        order, the chosen notifications."""
        providers = self.router.config.providers
        while len(self._provider_actions) < len(providers):
            action = QAction(menu_dot_icon(Light.GREY), "", self.menu)
            self.menu.insertAction(self.ledger_line, action)
            self._provider_action(action, providers[len(self._provider_actions)].id)
        while len(self._provider_actions) > len(providers):
            self.menu.removeAction(self._provider_actions.pop())
            self._shown_rows.pop()
        for action, provider in zip(self._provider_actions, providers, strict=True):
            action.setData(provider.id)
        self._shown_rows = [None] * len(providers)
        self.debouncer.enabled = dict(self.router.config.notifications)
        self.refresh()

    def _window_action(self, text: str, window: str, slot: Callable[[], None]) -> QAction:
        action = self.menu.addAction(text, slot)
        action.setShortcut(QKeySequence(SHORTCUTS[window]))
        action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        self.window_actions.append(action)
        return action

    def _status_window(self) -> StatusWindow:
        if self.status_window is None:
            window = StatusWindow()
            window.addActions(self.window_actions)
            for ours, theirs in ((window.chat_requested, self.chat_requested),
                                 (window.costs_requested, self.costs_requested),
                                 (window.settings_requested, self.settings_requested),
                                 (window.quit_requested, self.quit_requested)):
                ours.connect(theirs.emit)
            window.provider_requested.connect(self.provider_requested.emit)
            self.status_window = window
        return self.status_window

    def show(self) -> None:
        self.refresh()
        self._place()
        self.timer.start()

    def _place(self) -> None:
        """Use the tray when there is one; otherwise a window, until a tray appears."""
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.icon.show()
            if self.status_window is not None:
                self.status_window.hide()
        else:
            window = self._status_window()
            window.show_view(self.view)
            window.show()

    # -- updating -------------------------------------------------------------------------
    def refresh(self) -> None:
        """Show the router's state now; only what changed is handed to Qt."""
        old = self.view
        ledger = self.router.ledger
        companion = self.router.companion
        self.view = tray_view(self.router.statuses(), paused=self.router.local_only,
                              starting=self.starting,
                              ledger_problem=ledger.problem if ledger is not None else None,
                              warming=warming_note_line(companion.warmings()))
        if self.view.light is not old.light or not self._shown:
            self.icon.setIcon(dot_icon(self.view.light))
        if self.view.tooltip != old.tooltip or not self._shown:
            self.icon.setToolTip(self.view.tooltip)
        self._shown = True
        for i, (action, row) in enumerate(zip(self._provider_actions, self.view.rows, strict=False)):
            self._show_row(i, action, row)
        extra = self.view.lines[len(self.view.rows):]
        self.ledger_line.setVisible(bool(extra))
        if extra and self.ledger_line.label.text() != extra[0]:
            self.ledger_line.set_text(extra[0])
        self.cluster.show_view(cluster_menu(companion.cluster(), companion.warmings(),
                                            companion.problems()))
        self.copy_url.setEnabled(self._endpoint_url() is not None)
        self.copy_token.setEnabled(self._endpoint_token() is not None)
        if self.status_window is not None:
            self.status_window.show_view(self.view)

    def _show_row(self, i: int, action: QAction, row: ProviderRow) -> None:
        """Hand Qt only what changed (the menu is redrawn only for a changed row)."""
        old = self._shown_rows[i]
        if old == row:
            return
        if old is None or old.light is not row.light:
            action.setIcon(menu_dot_icon(row.light))
        if old is None or old.text != row.text:
            action.setText(row.text.replace("&", "&&"))
        if old is None or old.detail != row.detail:
            action.setToolTip(row.detail)
        self._shown_rows[i] = row

    def _tick(self) -> None:
        if self.status_window is not None and self.status_window.isVisible():
            self._place()  # adopt a tray that appeared
        self.refresh()
        for note in self.debouncer.due_summaries():
            self._notify(note)

    def _on_event(self, event: object) -> None:
        self.refresh()
        names = {p.id: p.name for p in self.router.config.providers}
        note = note_for(event, names)
        if note is not None:
            self.notify(note)

    def notify(self, note: Note) -> None:
        """Tell the user, unless the settings turned this kind off or it is a repeat within the
        debounce window (those become one summary later)."""
        if self.debouncer.offer(note):
            self._notify(note)

    def close(self) -> None:
        """Stop refreshing and hide (the app is quitting)."""
        self.timer.stop()
        self._soon.stop()
        self.icon.hide()

    def use_native_notifications(self, native: NativeNotifications) -> None:
        """Send through the desktop's notification service from now on."""
        self.native = native

    def _notify(self, note: Note) -> None:
        self.shown_notes.append(note)
        if self.native is not None:
            self.bridge.run(self.native.send(note, on_action=self.on_note_action))
        elif self.icon.isVisible():
            self._balloon = note
            body = f"{note.body}\n(click: {note.action})" if note.action else note.body
            self.icon.showMessage(note.title, body, app_icon(), 8000)  # ours, as natively

    def on_note_action(self, note: Note) -> None:
        """A notification's button (or its balloon) was pressed: load, or reload, the model."""
        if note.act:
            self.cluster.act(note.act, note.model)

    def _on_balloon_clicked(self) -> None:
        if self._balloon is not None:
            self.on_note_action(self._balloon)
            self._balloon = None

    # -- actions --------------------------------------------------------------------------
    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self.chat_requested.emit()

    def bring_forward(self) -> None:
        """Another launch asked for us: show a window for real. With a tray, the chat window
        (what the icon opens); without one, the status window (the app's only face)."""
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.chat_requested.emit()
            return
        window = self._status_window()
        window.show_view(self.view)
        present(window)

    def _on_pause(self, paused: bool) -> None:
        self.router.local_only = paused
        self.paused_changed.emit(paused)
        self.refresh()

    def _check_accounts(self) -> None:
        """The cloud keys' credit, limits and free requests now (the user may have added
        credit: a credit rest ends on a good answer)."""
        from desktop.operations import AccountOperations

        self.bridge.run(AccountOperations(self.router).check_now(), lambda _: self.refresh())

    def _about(self) -> None:
        self.about_box = show_about(None, about_html(self._endpoint_url(), self.config_file,
                                                      self.log_file))

    def _open_log(self) -> None:
        problem = open_log(self.log_file)
        if problem is not None:
            self.notify(Note("log", "log", "Open log", problem))

    def _copy_url(self) -> None:
        url = self._endpoint_url()
        if url:
            QGuiApplication.clipboard().setText(url)

    def _copy_token(self) -> None:
        token = self._endpoint_token()
        if token:
            QGuiApplication.clipboard().setText(token)
