"""The tray menu's provider rows (a state dot, use, a short reason; a click opens Settings on
that provider), its window shortcuts, the status window, and crisp dots at HiDPI (issue 18)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

pytest.importorskip("PySide6", reason="the desktop extra is not installed")

from PySide6.QtCore import QObject, QSize, Qt, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel

from desktop.autostart import Autostart
from desktop.icons import COLOURS, dot_pixmap, menu_dot_icon
from desktop.status_model import Light, provider_row
from router import HealthState, LimitCause, ProviderStatus, Role, Router

NAMES = {"exo": "Exo Local", "openrouter": "OpenRouter", "huggingface": "Hugging Face"}


def status(pid: str, state: str, detail: str = "", *, requests: int = 0, limit: int | None = None,
           cost: float = 0.0, cause: LimitCause | None = None, ends: datetime | None = None,
           calls: int | None = None, invalid_key: bool = False) -> ProviderStatus:
    """``requests`` answered today; ``calls``: every attempt (default: all answered)."""
    return ProviderStatus(pid, NAMES[pid], Role.LOCAL if pid == "exo" else Role.CLOUD,
                          HealthState(state), detail, 1.0, None, pid != "exo",
                          requests if calls is None else calls, 0, cost,
                          {"requests": limit, "tokens": None, "cost_usd": None},
                          limit=cause, limit_ends=ends, answered_today=requests,
                          invalid_key=invalid_key)


def two_pm_today() -> datetime:
    local = datetime.now().astimezone().replace(hour=14, minute=0, second=0, microsecond=0)
    return local.astimezone(UTC)


@pytest.mark.parametrize(("given", "light", "reason", "text"), [
    (status("exo", "healthy", "v1 at http://a · 1 model(s) ready", requests=3), Light.GREEN, None,
     "Exo Local · 3 requests · free today"),
    (status("exo", "down", "connection refused"), Light.RED, "not running",
     "Exo Local · 0 requests · free today · not running"),
    (status("exo", "degraded", "v1 at http://a · no model loaded"), Light.YELLOW,
     "model not loaded", "Exo Local · 0 requests · free today · model not loaded"),
    (status("openrouter", "no-key", "no API key"), Light.GREY, "no key",
     "OpenRouter · 0 requests · $0.00 today · no key"),
    (status("openrouter", "down", "HTTP 401: bad key", invalid_key=True), Light.RED, "key invalid",
     "OpenRouter · 0 requests · $0.00 today · key invalid"),
    (status("openrouter", "degraded", "the key's credit limit is reached, until …", requests=7,
            limit=100, cost=1.5, cause=LimitCause.KEY_LIMIT, ends=two_pm_today()), Light.YELLOW,
     "credit limit until 14:00",
     "OpenRouter · 7 requests · limit 7 of 100 calls · $1.50 today · credit limit until 14:00"),
    (status("exo", "healthy", "v1 at http://a", requests=5, calls=7), Light.GREEN, None,
     "Exo Local · 5 requests (2 unanswered) · free today"),
    (status("huggingface", "unknown", "not checked yet"), Light.GREY, "not checked yet",
     "Hugging Face · 0 requests · $0.00 today · not checked yet"),
])
def test_row_dot_reason_and_text(given, light, reason, text):
    row = provider_row(given, now=datetime.now().astimezone())
    assert (row.light, row.reason, row.text) == (light, reason, text)
    assert row.detail.startswith(f"{given.name}: {given.state}")


def test_a_limit_ending_another_day_names_the_day():
    tomorrow = two_pm_today() + timedelta(days=1)
    row = provider_row(status("openrouter", "degraded", "x", cause=LimitCause.CREDITS, ends=tomorrow))
    assert row.reason == f"out of credit until {tomorrow.astimezone():%a} 14:00"


def test_dot_pixmap_at_device_pixel_ratio_2_has_twice_the_pixels(qapp):
    pixmap = dot_pixmap(Light.RED, 16, 2.0)
    assert (pixmap.width(), pixmap.height()) == (32, 32)
    assert pixmap.deviceIndependentSize().toSize() == QSize(16, 16)
    icon_pixmap = menu_dot_icon(Light.GREEN).pixmap(QSize(16, 16), 2.0)
    assert icon_pixmap.width() == 32  # painted at 2x, not a 16 px dot scaled up
    assert icon_pixmap.toImage().pixelColor(16, 16).name() == QColor(COLOURS[Light.GREEN]).name()


@pytest.fixture
def tray(qapp, make_config, tmp_path):
    from desktop.bridge import Bridge
    from desktop.tray import Tray

    config, _ = make_config()
    router = Router(config)
    tray = Tray(Bridge(router), endpoint_url=lambda: None, endpoint_token=lambda: None,
                autostart=Autostart(tmp_path))
    tray.starting = False
    yield tray
    tray.timer.stop()
    if tray.status_window is not None:
        tray.status_window.deleteLater()
    tray.menu.deleteLater()
    tray.deleteLater()
    qapp.processEvents()


def show(tray, statuses) -> None:
    tray.router.statuses = lambda: statuses
    tray.refresh()


def centre(action) -> str:
    return action.icon().pixmap(QSize(16, 16)).toImage().pixelColor(8, 8).name()


def test_menu_rows_are_enabled_with_the_state_dot_and_reason(tray):
    show(tray, [status("exo", "down", "connection refused"),
                status("openrouter", "healthy", "ok", requests=4, limit=200, cost=0.25),
                status("huggingface", "no-key", "no API key")])
    exo, openrouter, hf = tray._provider_actions
    assert all(a.isEnabled() for a in (exo, openrouter, hf))
    assert [centre(a) for a in (exo, openrouter, hf)] == [
        QColor(COLOURS[light]).name() for light in (Light.RED, Light.GREEN, Light.GREY)]
    assert exo.text() == "Exo Local · 0 requests · free today · not running"
    assert openrouter.text() == "OpenRouter · 4 requests · limit 4 of 200 calls · $0.25 today"
    assert hf.text().endswith("· no key")
    assert exo.toolTip() == "Exo Local: down — connection refused" and tray.menu.toolTipsVisible()


def test_rows_are_only_touched_when_they_change(tray):
    statuses = [status("exo", "healthy", "ok"), status("openrouter", "healthy", "ok"),
                status("huggingface", "healthy", "ok")]
    show(tray, statuses)
    changed = []
    for action in tray._provider_actions:
        action.changed.connect(lambda a=action: changed.append(a))
    show(tray, list(statuses))
    assert changed == []
    show(tray, [status("exo", "down", "connection refused"), *statuses[1:]])
    assert set(changed) == {tray._provider_actions[0]}


def test_an_ampersand_in_a_name_is_no_mnemonic(tray):
    named = ProviderStatus("exo", "Tom & Jerry", Role.LOCAL, HealthState.HEALTHY, "ok", 1.0, None,
                           False)
    show(tray, [named, status("openrouter", "healthy"), status("huggingface", "healthy")])
    assert tray._provider_actions[0].text().startswith("Tom && Jerry ·")


def test_clicking_a_row_asks_for_that_providers_settings(tray):
    asked = []
    tray.provider_requested.connect(asked.append)
    tray._provider_actions[2].trigger()
    tray._provider_actions[0].trigger()
    assert asked == ["huggingface", "exo"]


def activate(qapp, window) -> None:
    """Show and focus a window (offscreen, activateWindow alone does not make it active)."""
    from PySide6.QtWidgets import QApplication

    window.show()
    window.windowHandle().requestActivate()
    qapp.processEvents()
    assert QApplication.activeWindow() is window


def test_window_items_have_mnemonics_and_app_wide_shortcuts(qapp, tray, qtbot):
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QWidget

    texts = {a.text(): a.shortcut().toString() for a in tray.window_actions}
    assert texts == {"&Chat…": "Ctrl+Shift+C", "C&osts…": "Ctrl+Shift+G", "&Settings…": "Ctrl+,"}
    assert all(a.shortcutContext() is Qt.ShortcutContext.ApplicationShortcut
               for a in tray.window_actions)
    from PySide6.QtWidgets import QApplication

    for other in QApplication.topLevelWidgets():  # earlier tests' windows and their shortcuts
        other.hide()
    window = QWidget()  # any of our windows carries the actions (app.py adds them)
    window.addActions(tray.window_actions)
    qtbot.addWidget(window)
    activate(qapp, window)
    asked = []
    tray.costs_requested.connect(lambda: asked.append("costs"))
    tray.settings_requested.connect(lambda: asked.append("settings"))
    QTest.keyClick(window, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.ShiftModifier)
    QTest.keyClick(window, Qt.Key.Key_Comma, Qt.KeyboardModifier.ControlModifier)
    assert asked == ["costs", "settings"]


def test_status_window_rows_links_and_buttons(tray):
    show(tray, [status("exo", "down", "connection refused"), status("openrouter", "healthy"),
                status("huggingface", "no-key", "no API key")])
    window = tray._status_window()
    window.show_view(tray.view)
    asked, opened = [], []
    tray.provider_requested.connect(asked.append)
    tray.chat_requested.connect(lambda: opened.append("chat"))
    dot, text = window.rows[0]
    assert "not running" in text.text() and "href='provider:exo'" in text.text()
    assert dot.pixmap().toImage().pixelColor(8 * round(dot.pixmap().devicePixelRatio()),
                                             8 * round(dot.pixmap().devicePixelRatio())).name() \
        == QColor(COLOURS[Light.RED]).name()
    text.linkActivated.emit("provider:exo")
    window.buttons[0].click()
    assert asked == ["exo"] and opened == ["chat"]
    assert [b.text() for b in window.buttons] == ["&Chat…", "C&osts…", "&Settings…", "&Quit"]
    assert all(t.focusPolicy() & Qt.FocusPolicy.TabFocus for _, t in window.rows)  # by keyboard


def test_status_window_redraws_only_the_rows_that_changed(tray):
    show(tray, [status("exo", "healthy", requests=1), status("openrouter", "healthy"),
                status("huggingface", "no-key", "no API key")])
    window = tray._status_window()
    window.show_view(tray.view)
    handed: list[str] = []
    for index, (dot, text) in enumerate(window.rows):
        text.setText = lambda value, i=index, label=text: (handed.append(f"text{i}"),  # type: ignore[method-assign]
                                                            QLabel.setText(label, value))
        dot.setPixmap = lambda value, i=index, label=dot: (handed.append(f"dot{i}"),  # type: ignore[method-assign]
                                                           QLabel.setPixmap(label, value))
    show(tray, [status("exo", "healthy", requests=2), status("openrouter", "healthy"),
                status("huggingface", "no-key", "no API key")])
    window.show_view(tray.view)
    assert handed == ["text0"] and "2 requests" in window.rows[0][1].text()
    show(tray, [status("exo", "down", "connection refused", requests=2),
                status("openrouter", "healthy"), status("huggingface", "no-key", "no API key")])
    window.show_view(tray.view)
    assert handed == ["text0", "dot0", "text0"] and "not running" in window.rows[0][1].text()


def _most_contrast(image, rect, background) -> float:
    """The strongest contrast of any pixel in ``rect`` against ``background`` (a mark's edge,
    a letter's stroke)."""
    from desktop.windows.cost_format import contrast

    best = 1.0
    for x in range(rect.left(), rect.right(), 1):
        for y in range(rect.top(), rect.bottom(), 1):
            best = max(best, contrast(image.pixelColor(x, y).name(), background))
    return best


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_check_boxes_and_cluster_rows_read_in_light_and_dark(tray, restored_palette, qtbot, scheme):
    """The menu opened as a person opens it (its cluster submenu with the mouse): the check
    boxes have a visible edge, a node's row is text in the menu's own colour, not greyed out."""
    from PySide6.QtCore import QPoint, QRect

    from desktop import appearance
    from desktop.cluster_model import ClusterMenuView, Item

    appearance.apply(restored_palette, appearance.Appearance(scheme))
    restored_palette.processEvents()  # the menus' palette comes in a posted event
    tray.refresh()
    tray.cluster.show_view(ClusterMenuView("Exo Local cluster: 1 node", (
        Item("Mac mini · 16 GB · 1 model"),), ()))
    tray.menu.popup(QPoint(0, 0))
    qtbot.waitExposed(tray.menu)
    image = tray.menu.grab().toImage()
    row = tray.menu.actionGeometry(tray.pause)
    background = image.pixelColor(row.right() - 4, row.center().y()).name()
    box = QRect(row.left(), row.top(), row.height(), row.height())
    assert _most_contrast(image, box, background) >= 3.0  # WCAG's floor for a control's edge
    for _ in range(10):  # down the menu with the keyboard to the cluster's line, then in
        if tray.menu.activeAction() is tray.cluster.entry:
            break
        qtbot.keyClick(tray.menu, Qt.Key.Key_Down)
    qtbot.keyClick(tray.menu, Qt.Key.Key_Right)
    submenu = tray.cluster.submenu
    qtbot.waitUntil(submenu.isVisible)
    [node] = submenu.actions()
    assert node.text() == "Mac mini · 16 GB · 1 model"
    image = submenu.grab().toImage()
    line = submenu.actionGeometry(node)
    background = image.pixelColor(line.right() - 2, line.top() + 2).name()
    assert _most_contrast(image, line, background) >= 4.5  # WCAG's floor for text
    submenu.hide()
    tray.menu.hide()


def test_the_status_window_shows_every_wrapped_line_as_it_grows_and_narrows(tray, qtbot):
    """No tray: the status window. Its rows grow longer (a limit, a reason, the ledger's line)
    and the user makes it narrower: every line of every label still shows."""
    tray.show()  # offscreen has no tray: the status window is the app
    window = tray.status_window
    assert window is not None and window.isVisible()
    qtbot.waitExposed(window)
    show(tray, [status("exo", "down", "connection refused", requests=3, calls=9),
                status("openrouter", "degraded", "the key's credit limit is reached for today",
                       requests=3, calls=5, limit=1000, cost=1.5, cause=LimitCause.KEY_LIMIT),
                status("huggingface", "no-key", "no API key")])
    tray.router.ledger = type("Ledger", (), {"problem": "disk full: cannot write to "
                                             "/home/someone/.local/share/exo-bridge/usage.sqlite3"})()
    tray.refresh()

    def all_lines_show() -> bool:
        labels = [w for w in window.findChildren(QLabel) if w.isVisible() and w.wordWrap()]
        return bool(labels) and all(w.height() >= w.heightForWidth(w.width()) for w in labels)

    qtbot.waitUntil(all_lines_show)
    window.resize(window.width() * 3 // 4, window.height())  # the user drags it narrower
    qtbot.waitUntil(all_lines_show)


def test_the_menu_has_the_version_about_and_open_log(tray, qtbot, tmp_path):
    """From the keyboard, as in any menu: b opens About (the version, the endpoint, where the
    log is), g opens the log in the desktop's viewer."""
    from PySide6.QtCore import QPoint, QUrl
    from PySide6.QtGui import QDesktopServices
    from PySide6.QtWidgets import QMessageBox

    from desktop.about import app_version

    version = app_version()
    assert version[0].isdigit()
    assert tray.about.text() == f"A&bout Exo Bridge {version}…"
    tray.log_file = tmp_path / "exo-bridge.log"
    tray.log_file.write_text("a line\n")
    tray.menu.popup(QPoint(0, 0))
    qtbot.waitExposed(tray.menu)
    qtbot.keyClick(tray.menu, Qt.Key.Key_B)
    qtbot.waitUntil(lambda: tray.about_box is not None and tray.about_box.isVisible())
    text = tray.about_box.text()
    assert f"<td>{version}</td>" in text and str(tray.log_file) in text
    assert not tray.about_box.iconPixmap().isNull()
    qtbot.keyClick(tray.about_box, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not tray.about_box.isVisible())
    opened: list[str] = []

    class Viewer(QObject):
        @Slot(QUrl)
        def show(self, url: QUrl) -> None:
            opened.append(url.toLocalFile())

    viewer = Viewer()
    QDesktopServices.setUrlHandler("file", viewer, "show")
    try:
        tray.menu.popup(QPoint(0, 0))
        qtbot.waitExposed(tray.menu)
        qtbot.keyClick(tray.menu, Qt.Key.Key_G)
        qtbot.waitUntil(lambda: opened == [str(tray.log_file)])
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert isinstance(tray.about_box, QMessageBox)
