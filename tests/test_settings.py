"""The settings window and the config editing under it (offscreen Qt, in-memory keyring)."""

from __future__ import annotations

import asyncio
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import Qt

pytest.importorskip("PySide6", reason="the desktop extra is not installed")

from desktop.autostart import Autostart
from desktop.settings_model import SettingsDocument
from router import Router
from router.config import DEFAULT_CONFIG_TOML, load_config
from tests.conftest import OR_KEY


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("# my exo cluster\n" + DEFAULT_CONFIG_TOML.replace(
        'name = "Exo Local"', 'name = "Exo Local"  # the mac minis'))
    return path


@pytest.fixture
async def window(qapp, config_file, tmp_path):
    from desktop.bridge import Bridge
    from desktop.windows.settings import SettingsWindow

    async with Router(load_config(config_file)) as router:
        win = SettingsWindow(Bridge(router), SettingsDocument(config_file), Autostart(tmp_path / "auto"),
                             endpoint_token=lambda: "the-token")
        yield win
        win.close()
        win.deleteLater()
        qapp.processEvents()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.02)


def answer_with(label: str, seen: list[str] | None = None) -> None:
    """Press ``label`` with the mouse in the dialog about to open (``seen``: its text)."""
    from PySide6.QtCore import QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QAbstractButton, QApplication, QMessageBox

    def press() -> None:
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(10, press)
            return
        if seen is not None and isinstance(dialog, QMessageBox):
            seen.append(dialog.text())
        button = next(b for b in dialog.findChildren(QAbstractButton)
                      if b.text().replace("&", "") == label)
        QTest.mouseClick(button, Qt.MouseButton.LeftButton)

    QTimer.singleShot(0, press)


@pytest.fixture
async def fakes_window(qapp, make_config, tmp_path):
    """The window on the fake providers (a key test reaches them, never the internet)."""
    from desktop.bridge import Bridge
    from desktop.windows.settings import SettingsWindow

    config, path = make_config()
    async with Router(config) as router:
        win = SettingsWindow(Bridge(router), SettingsDocument(path), Autostart(tmp_path / "auto"),
                             endpoint_token=lambda: "the-token")
        yield win
        win.close()
        win.deleteLater()
        qapp.processEvents()


from tests.conftest import until  # noqa: E402


async def test_a_failed_key_test_says_what_to_check_and_widens_nothing(fakes_window, qtbot,
                                                                    keyring_store, openrouter):
    """Keys, then Test, with the mouse, while OpenRouter cannot be reached: the answer says
    the connection failed and what to check, on a wrapped line under the field; the window
    keeps its width and the key field its room."""
    from PySide6.QtWidgets import QApplication

    window = fakes_window
    window.show()
    qtbot.waitExposed(window)
    bar = window.tabs.tabBar()
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(1).center())  # Keys
    assert window.tabs.tabText(window.tabs.currentIndex()) == "Keys"
    row = next(r for r in window.key_rows if r.provider_id == "openrouter")
    qtbot.mouseClick(row.field, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(row.field, OR_KEY)
    qtbot.mouseClick(row.save, Qt.MouseButton.LeftButton)
    await until(lambda: row.state.text().startswith("in the keychain"))
    width, field = window.width(), row.field.width()
    openrouter.stop()  # the network goes away
    qtbot.mouseClick(row.test, Qt.MouseButton.LeftButton)
    await until(lambda: row.state.text().startswith("✗"))
    QApplication.processEvents()
    text = row.state.text()
    assert "Connection refused" in text and "could not reach OpenRouter at 127.0.0.1" in text
    assert "internet connection" in text and OR_KEY not in text
    assert window.width() == width and row.field.width() >= field
    assert row.field.width() >= row.field.fontMetrics().averageCharWidth() * 28
    assert row.state.height() >= row.state.heightForWidth(row.state.width())  # all of it shows


async def test_remove_asks_first_and_cancel_keeps_the_key(fakes_window, qtbot, keyring_store):
    window = fakes_window
    window.show()
    row = next(r for r in window.key_rows if r.provider_id == "openrouter")
    keyring_store.entries[("exo-bridge", "openrouter")] = OR_KEY
    seen: list[str] = []
    answer_with("Cancel", seen)
    qtbot.mouseClick(row.remove, Qt.MouseButton.LeftButton)
    await settle()
    assert seen and "Remove the OpenRouter key" in seen[0]
    assert keyring_store.entries[("exo-bridge", "openrouter")] == OR_KEY
    answer_with("Remove")
    qtbot.mouseClick(row.remove, Qt.MouseButton.LeftButton)
    await until(lambda: ("exo-bridge", "openrouter") not in keyring_store.entries)


async def test_round_trip_keeps_comments_and_applies_edits(window, config_file):
    saved = []
    window.saved.connect(saved.append)
    tab = window.providers
    tab.order.setCurrentRow(1)  # OpenRouter
    tab.requests.setText("250")
    tab.cost.setText("1.5")
    tab.order.setCurrentRow(2)  # Hugging Face
    tab.enabled.setChecked(False)
    tab.up.click()  # Hugging Face before OpenRouter
    tab.order.setCurrentRow(0)  # exo: add a node
    tab.url_entry.setText("http://studio.local:52415/")
    tab.add_url.click()
    window.port.setValue(9100)
    window.save()
    text = config_file.read_text()
    assert "# my exo cluster" in text and "# the mac minis" in text
    config = load_config(config_file)
    assert [p.id for p in config.providers] == ["exo", "huggingface", "openrouter"]
    assert config.provider("openrouter").daily_request_limit == 250
    assert config.provider("openrouter").daily_cost_limit_usd == 1.5
    assert not config.provider("huggingface").enabled
    assert config.provider("exo").base_urls[-1] == "http://studio.local:52415"
    assert config.server.port == 9100
    assert saved and saved[0].server.port == 9100


async def test_broken_file_is_shown_and_never_overwritten(qapp, tmp_path):
    from desktop.bridge import Bridge
    from desktop.windows.settings import SettingsWindow

    path = tmp_path / "config.toml"
    broken = '[[providers]]\nid = "exo"\nkind = exo\n'
    path.write_text(broken)
    async with Router(load_config(None)) as router:
        win = SettingsWindow(Bridge(router), SettingsDocument(path), Autostart(tmp_path),
                             endpoint_token=lambda: None)
        assert not win.save_button.isEnabled()
        assert "line 3" in win.error.text() and not win.open_file.isHidden()
        win.close()
    assert path.read_text() == broken


async def test_an_edit_that_would_not_load_is_not_written(window, config_file):
    before = config_file.read_text()
    tab = window.providers
    tab.order.setCurrentRow(0)
    tab.urls.clear()
    tab.urls.addItem("not a url")
    window.save()
    assert config_file.read_text() == before
    assert "Not saved" in window.error.text()


async def test_keys_saved_to_the_keychain_and_never_shown_again(window, keyring_store):
    row = next(r for r in window.key_rows if r.provider_id == "openrouter")
    row.field.setText(OR_KEY)
    row.save.click()
    await settle()
    assert keyring_store.entries[("exo-bridge", "openrouter")] == OR_KEY
    assert row.field.text() == "" and OR_KEY not in row.state.text()
    assert row.state.text().endswith(OR_KEY[-4:])
    assert window.bridge.router.has_key(window.bridge.router.config.provider("openrouter"))
    answer_with("Remove")  # the confirmation
    row.remove.click()
    await settle()
    assert ("exo-bridge", "openrouter") not in keyring_store.entries
    assert row.state.text() == "no key in the keychain"


async def test_no_keychain_explains_the_environment_variable(qapp, config_file, tmp_path):
    import keyring
    import keyring.backends.fail

    from desktop.bridge import Bridge
    from desktop.windows.settings import SettingsWindow

    keyring.set_keyring(keyring.backends.fail.Keyring())
    async with Router(load_config(config_file)) as router:
        win = SettingsWindow(Bridge(router), SettingsDocument(config_file), Autostart(tmp_path),
                             endpoint_token=lambda: None)
        await settle()
        assert "api_key_env" in win.keychain_note.text()
        assert not any(row.save.isEnabled() for row in win.key_rows)
        win.close()


async def test_token_shown_on_request_and_start_at_login(window, tmp_path):
    assert window.token.text() == ""
    window._show_token()
    assert window.token.text() == "the-token"
    window.start_at_login.setChecked(True)
    assert (tmp_path / "auto" / "exo-bridge.desktop").exists()


async def test_notification_kinds_are_saved_and_honoured(window, config_file):
    window.notify_boxes["budget"].setChecked(False)
    window.save()
    config = load_config(config_file)
    assert config.notifications["budget"] is False and config.notifications["failover"] is True
    from desktop.bridge import Bridge
    from desktop.notify import Note
    from desktop.tray import Tray

    async with Router(config) as router:
        tray = Tray(Bridge(router), endpoint_url=lambda: None, endpoint_token=lambda: None)
        assert not tray.debouncer.offer(Note("budget", "openrouter", "t", "b"))
        assert tray.debouncer.offer(Note("failover", "exo", "t", "b"))
        tray.deleteLater()


async def test_a_providers_row_opens_its_section(keys_in_env, window):
    await window.bridge.router.keys_ready()
    window.providers.order.setCurrentRow(0)
    window.show_provider("huggingface")
    providers = window.providers
    assert window.tabs.currentIndex() == 0
    edit = providers.edits[providers.order.currentRow()]
    assert edit.id == "huggingface" and window.focusWidget() is providers.order
    assert providers.requests.text() == ("" if edit.daily_request_limit is None
                                         else str(edit.daily_request_limit))


async def test_a_provider_without_a_key_opens_on_its_key(window):
    window.show_provider("openrouter")  # no key in the keychain or the environment
    row = next(r for r in window.key_rows if r.provider_id == "openrouter")
    assert window.tabs.currentWidget().isAncestorOf(row)
    assert window.focusWidget() is row.field


async def test_esc_is_cancel_unsaved_edits_are_forgotten(window, config_file):
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    before = config_file.read_text()
    saved = []
    window.saved.connect(saved.append)
    window.show()
    window.show_provider("exo")
    window.providers.requests.setText("7")
    window.port.setValue(9999)
    QTest.keyClick(window.providers.requests, Qt.Key.Key_Escape)
    assert not window.isVisible() and saved == [] and config_file.read_text() == before
    window.show()
    window.show_provider("exo")
    assert window.providers.requests.text() == "" and window.port.value() == 8741
    window.providers.collect()
    assert window.providers.edits[0].daily_request_limit is None


async def test_tab_goes_through_the_fields_then_save_and_cancel(window):
    chain, widget = [], window.tabs
    for _ in range(200):
        widget = widget.nextInFocusChain()
        if widget is window.tabs:
            break
        if widget.focusPolicy() & Qt.FocusPolicy.TabFocus:
            chain.append(widget)
    assert chain.index(window.providers.order) < chain.index(window.providers.cost) \
        < chain.index(window.save_button) < chain.index(window.cancel_button)


async def test_nothing_clipped_at_a_large_font(qapp, window):
    from PySide6.QtWidgets import QAbstractButton, QLabel

    font = window.font()
    font.setPointSizeF(font.pointSizeF() * 2)
    window.setFont(font)
    window.show()
    qapp.processEvents()
    assert window.width() >= window.minimumSizeHint().width()
    assert window.height() >= window.minimumSizeHint().height()
    for widget in window.findChildren(QAbstractButton) + window.findChildren(QLabel):
        if widget.isVisible() and not (isinstance(widget, QLabel) and widget.wordWrap()):
            hint = widget.minimumSizeHint()
            assert widget.width() >= hint.width() and widget.height() >= hint.height(), widget


# -- the file changes while the window is open ---------------------------------------------

def _edits(document: SettingsDocument):
    return document.providers(), document.server(), document.notifications()


def test_a_save_keeps_what_the_first_run_assistant_wrote_meanwhile(config_file):
    window = SettingsDocument(config_file)
    window.load()
    assistant = SettingsDocument(config_file)
    assistant.load()
    assistant.set_paid_failover(False)
    assistant.use_address("exo", "http://studio.local:52415")
    providers, server, notifications = _edits(window)
    next(p for p in providers if p.id == "openrouter").daily_request_limit = 250
    window.save(providers, server, notifications)
    config = load_config(config_file)
    assert config.allow_paid_failover is False  # the assistant's answer survives
    assert config.provider("exo").base_urls[0] == "http://studio.local:52415"
    assert config.provider("openrouter").daily_request_limit == 250  # and so does the edit
    assert "# the mac minis" in config_file.read_text()


def test_fields_the_user_left_alone_keep_what_is_on_disk_now(config_file):
    window = SettingsDocument(config_file)
    window.load()
    providers, server, notifications = _edits(window)
    config_file.write_text(config_file.read_text().replace(
        "daily_request_limit = 1000", "daily_request_limit = 99"))  # by hand, meanwhile
    next(p for p in providers if p.id == "huggingface").enabled = False
    server.port = 9200
    window.save(providers, server, notifications)
    config = load_config(config_file)
    assert config.provider("openrouter").daily_request_limit == 99
    assert not config.provider("huggingface").enabled
    assert config.server.port == 9200
    # a second save compares with what the first one wrote, not with the first load
    providers, server, notifications = _edits(window)
    next(p for p in providers if p.id == "huggingface").enabled = True
    window.save(providers, server, notifications)
    config = load_config(config_file)
    assert config.provider("huggingface").enabled and config.server.port == 9200
    assert config.provider("openrouter").daily_request_limit == 99


def test_a_file_broken_meanwhile_is_not_overwritten(config_file):
    from router import ConfigError

    window = SettingsDocument(config_file)
    window.load()
    providers, server, notifications = _edits(window)
    broken = config_file.read_text().replace('kind = "exo"', "kind = exo")
    config_file.write_text(broken)
    server.port = 9300
    with pytest.raises(ConfigError) as caught:
        window.save(providers, server, notifications)
    assert str(config_file) in str(caught.value)
    assert config_file.read_text() == broken


def test_a_full_disk_is_said_and_the_file_stays_as_it_was(config_file, monkeypatch):
    import errno

    import desktop.settings_model as model
    from router import ConfigError

    window = SettingsDocument(config_file)
    window.load()
    providers, server, notifications = _edits(window)
    before = config_file.read_text()
    real_fsync = model.os.fsync

    def disk_full(fd: int) -> None:
        real_fsync(fd)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(model.os, "fsync", disk_full)
    server.port = 9400
    with pytest.raises(ConfigError) as caught:
        window.save(providers, server, notifications)
    assert "No space left on device" in str(caught.value) and str(config_file) in str(caught.value)
    with pytest.raises(ConfigError):
        window.set_paid_failover(False)  # the assistant's edits say it the same way
    assert config_file.read_text() == before
    assert list(config_file.parent.glob("*.partial")) == []
    monkeypatch.setattr(model.os, "fsync", real_fsync)
    window.save(providers, server, notifications)  # room again: the same save goes through
    assert load_config(config_file).server.port == 9400


# -- issue 28: saves that fail, fields typed wrong -----------------------------------------

def click_row(listing, row: int) -> None:
    """Click a row of a list as a person does."""
    from PySide6.QtTest import QTest

    rect = listing.visualItemRect(listing.item(row))
    QTest.mouseClick(listing.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     rect.center())


def click(button) -> None:
    from PySide6.QtTest import QTest

    QTest.mouseClick(button, Qt.MouseButton.LeftButton)


def retype(field, text: str) -> None:
    """Select all of a field and type over it."""
    from PySide6.QtTest import QTest

    field.setFocus()
    QTest.keyClick(field, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(field, Qt.Key.Key_Delete)
    QTest.keyClicks(field, text)


def test_a_failed_save_leaves_nothing_behind_for_the_next(config_file):
    document = SettingsDocument(config_file)
    document.load()
    before = config_file.read_text()
    providers, server, notifications = _edits(document)
    providers[0].base_urls.append("my mac mini")
    with pytest.raises(Exception, match="base_url"):
        document.save(providers, server, notifications)
    assert config_file.read_text() == before
    providers[0].base_urls.remove("my mac mini")  # the node removed again
    providers[1], providers[2] = providers[2], providers[1]  # and the order changed
    document.save(providers, server, notifications)
    config = load_config(config_file)
    assert [p.id for p in config.providers] == ["exo", "huggingface", "openrouter"]
    assert "my mac mini" not in config_file.read_text()


def test_a_save_that_changes_nothing_writes_nothing(config_file):
    before = config_file.read_text()
    mtime = config_file.stat().st_mtime_ns
    document = SettingsDocument(config_file)
    document.load()
    document.save(*_edits(document))
    assert config_file.read_text() == before and "[server]" not in before
    assert config_file.stat().st_mtime_ns == mtime


async def test_a_bad_node_address_is_said_beside_it_and_saving_still_works(window, config_file):
    from PySide6.QtTest import QTest

    window.show()
    tab = window.providers
    click_row(tab.order, 0)  # exo
    QTest.keyClicks(tab.url_entry, "my mac mini")
    click(tab.add_url)
    assert tab.url_problem.isVisible() and "not an address" in tab.url_problem.text()
    nodes = [tab.urls.item(i).text() for i in range(tab.urls.count())]
    assert "my mac mini" not in nodes
    retype(tab.url_entry, "http://studio.local:52415")
    assert not tab.url_problem.isVisible()
    QTest.keyClick(tab.url_entry, Qt.Key.Key_Return)
    click_row(tab.order, 2)  # Hugging Face, then up: before OpenRouter
    click(tab.up)
    click(window.save_button)
    config = load_config(config_file)
    assert config.provider("exo").base_urls == (*nodes, "http://studio.local:52415")
    assert [p.id for p in config.providers] == ["exo", "huggingface", "openrouter"]
    assert not window.error.isVisible()


async def test_a_non_numeric_usd_a_day_is_said_beside_it_and_nothing_is_saved(
        window, config_file, caplog):
    window.show()
    before = config_file.read_text()
    saved = []
    window.saved.connect(saved.append)
    tab = window.providers
    click_row(tab.order, 1)  # OpenRouter
    retype(tab.cost, "abc1.2.3")
    problem = tab.problems["daily_cost_limit_usd"]
    assert problem.isVisible() and "amount in USD" in problem.text()
    click_row(tab.order, 0)  # away and back: the text and its problem are still there
    click_row(tab.order, 1)
    assert tab.cost.text() == "abc1.2.3" and problem.isVisible()
    click_row(tab.order, 0)
    click(window.save_button)
    assert config_file.read_text() == before and saved == []
    assert "OpenRouter's USD a day" in window.error.text() and window.error.isVisible()
    assert tab.order.currentRow() == 1 and window.focusWidget() is tab.cost
    assert "Traceback" not in caplog.text
    retype(tab.cost, "2.50")
    assert not problem.isVisible()
    retype(tab.requests, "12x")
    assert tab.problems["daily_request_limit"].isVisible()
    retype(tab.requests, "1000")
    click(window.save_button)
    assert load_config(config_file).provider("openrouter").daily_cost_limit_usd == 2.5
    assert load_config(config_file).provider("openrouter").daily_request_limit == 1000
    assert saved and not window.error.isVisible()


@pytest.mark.parametrize("text", ["abc1.2.3", "1.2.3", "-1", "1e3", "nan", "inf", "2,50", "٣"])
def test_usd_a_day_takes_only_an_amount(text):
    from desktop.settings_fields import FieldProblem, read_usd

    with pytest.raises(FieldProblem):
        read_usd(text)


def test_field_readers_take_what_they_show_and_give_a_problem_or_a_value():
    from hypothesis import given
    from hypothesis import strategies as st

    from desktop.settings_fields import FieldProblem, read_address, read_count, read_usd

    @given(st.text(max_size=20))
    def any_text(text):
        for read in (read_count, read_usd, read_address):
            try:
                value = read(text)
            except FieldProblem as exc:
                assert str(exc)
                continue
            if read is read_count:
                assert value is None or 0 <= value <= 2**31 - 1
            elif read is read_usd:
                assert value is None or 0 <= value <= 1_000_000
            else:
                assert value.startswith(("http://", "https://")) and " " not in value

    @given(st.integers(0, 2**31 - 1), st.decimals(0, 999_999, places=2))
    def shown_values_read_back(count, usd):
        assert read_count(str(count)) == count
        assert read_usd(f"{usd:f}") == pytest.approx(float(usd))

    any_text()
    shown_values_read_back()


async def test_regenerate_with_the_endpoint_off_says_when_the_token_applies(window, keyring_store):
    window.show()
    window.tabs.setCurrentIndex(2)
    window._endpoint_token = lambda: None  # the endpoint is off in this app
    click(window.regenerate)
    box = window.confirmation
    click(next(b for b in box.buttons() if b.text() == "Make a new token"))
    await settle()
    stored = keyring_store.entries[("exo-bridge", "local-token")]
    assert stored and "takes it when it is turned on" in window.token_note.text()
    assert stored not in window.token_note.text() and window.token.text() == ""


async def test_regenerate_is_off_when_the_token_comes_from_the_environment(
        qapp, config_file, tmp_path, monkeypatch):
    from desktop.bridge import Bridge
    from desktop.windows.settings import SettingsWindow

    monkeypatch.setenv("EXO_BRIDGE_TOKEN", "t" * 32)
    async with Router(load_config(config_file)) as router:
        win = SettingsWindow(Bridge(router), SettingsDocument(config_file), Autostart(tmp_path),
                             endpoint_token=lambda: "t" * 32)
        assert not win.regenerate.isEnabled() and "EXO_BRIDGE_TOKEN" in win.regenerate.toolTip()
        win.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_provider_names_whole_and_check_boxes_edged(window, qtbot, restored_palette, scheme):
    """The Providers tab as it opens: every provider's name whole in the order list (it was
    cut under a scroll bar), the check boxes with a visible edge in light and dark."""
    from PySide6.QtCore import QRect

    from desktop import appearance
    from desktop.windows.cost_format import contrast

    appearance.apply(restored_palette, appearance.Appearance(scheme))
    restored_palette.processEvents()
    window.show()
    qtbot.waitExposed(window)
    order = window.providers.order
    for row in range(order.count()):
        rect = order.visualItemRect(order.item(row))
        assert rect.right() <= order.viewport().width(), order.item(row).text()
    assert not order.horizontalScrollBar().isVisible()
    box = window.providers.paid
    image = box.grab().toImage()
    background = image.pixelColor(box.width() - 2, box.height() // 2).name()
    edge = QRect(0, 0, box.height(), box.height())
    best = max(contrast(image.pixelColor(x, y).name(), background)
               for x in range(edge.left(), edge.right()) for y in range(edge.top(), edge.bottom()))
    assert best >= 3.0  # WCAG's floor for a control's edge
