"""The first-run assistant (Set up…), offscreen, against the fake providers and the in-memory
keyring: the page flow by keyboard, exo found, a key saved and tested, the paid-failover choice
written (comments kept), the test question, and the first-run trigger."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

pytest.importorskip("PySide6", reason="the desktop extra is not installed")

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from desktop.operations import SetupOperations
from desktop.settings_model import SettingsDocument
from router import Router, load_config
from tests.conftest import OR_KEY, config_text, until, unused_port


@pytest.fixture
def closed() -> str:
    return f"http://127.0.0.1:{unused_port()}"


@pytest.fixture
async def wizard_for(qapp, tmp_path):
    """wizard_for(exo_urls, candidates, **config) -> the SetupWindow on a router of that config,
    whose file starts with the user's own comment."""
    from desktop.bridge import Bridge
    from desktop.windows.setup import SetupWindow

    made = []

    async def build(exo_urls, candidates, openrouter_url, hf_url, *, write=True):
        path = tmp_path / "config.toml"
        if write:
            path.write_text("# my own notes\n" + config_text(exo_urls, openrouter_url, hf_url))
        config = load_config(path if write else None)
        router = Router(config)
        await router.__aenter__()
        bridge = Bridge(router)
        window = SetupWindow(bridge, SettingsDocument(path), SetupOperations(router, candidates))
        made.append((window, bridge, router))
        window.present()
        return window, path

    yield build
    for window, bridge, router in made:
        window.hide()
        bridge.close()
        await router.__aexit__(None, None, None)
        window.deleteLater()
        bridge.deleteLater()
        qapp.processEvents()


def press(widget, key=Qt.Key.Key_Return) -> None:
    QTest.keyClick(widget, key)


async def test_keyboard_flow_key_saved_and_tested_paid_choice_written_and_answered(
        wizard_for, exo, openrouter, hf, keyring_store):
    window, path = await wizard_for([exo.origin], [exo.origin], openrouter.base_url, hf.base_url)
    page = window.exo_page
    await until(lambda: "Found exo" in page.found_label.text())
    assert "Your config already points there" in page.found_label.text()
    assert not page.use.isVisible()
    press(window)  # Enter: Next
    assert window.currentPage() is window.keys_page
    row = next(r for r in window.keys_page.rows if r.provider.id == "openrouter")
    row.field.setFocus()
    QTest.keyClicks(row.field, "sk-wrong-key-0000")
    press(row.field)  # Enter in a typed key: save and test, stay on the page
    await until(lambda: row.works is not None)
    assert window.currentPage() is window.keys_page
    assert row.works is False and "invalid key" in row.state.text()
    QTest.keyClicks(row.field, OR_KEY)
    press(row.field)
    await until(lambda: row.works is True)
    assert keyring_store.entries[("exo-bridge", "openrouter")] == OR_KEY
    assert "works" in row.state.text() and OR_KEY not in row.state.text()
    assert row.field.text() == ""  # never shown again
    press(window)  # an empty field: Enter is Next
    assert window.currentPage() is window.paid_page
    paid = window.paid_page
    # nothing chosen for the user: the file does not say, so the assistant asks
    assert not paid.allowed.isChecked() and not paid.local.isChecked()
    press(window)  # Enter: no Next before a choice
    assert window.currentPage() is window.paid_page
    QTest.keyClick(paid.allowed, Qt.Key.Key_Space)  # Allowed, by keyboard
    limit = paid.limits["openrouter"]
    assert paid.allowed.isChecked() and limit.isEnabled() and limit.text() == "1.00"  # suggested
    press(window)  # the suggestion confirmed
    assert window.currentPage() is window.test_page
    text = path.read_text()
    assert text.startswith("# my own notes\n") and "allow_paid_failover = true" in text
    config = load_config(path)
    assert config.allow_paid_failover is True
    assert config.provider("openrouter").daily_cost_limit_usd == 1.0
    live = window.bridge.router.config  # in use at once
    assert live.allow_paid_failover is True and live.provider("openrouter").daily_cost_limit_usd == 1.0
    press(window.test_page.question)  # Enter asks the question shown
    await until(lambda: window.test_page.outcome is not None)
    assert "Hello from the fake provider" in window.test_page.answer.text()
    assert window.test_page.who.text().startswith("Answered by Exo Local")
    assert "free" in window.test_page.who.text()
    assert exo.chat_requests


async def test_exo_found_elsewhere_is_offered_and_written_first(wizard_for, exo, closed):
    window, path = await wizard_for([closed], [closed, exo.origin], closed + "/api/v1", closed + "/v1")
    restarts = []
    window.done_setup.connect(restarts.append)
    page = window.exo_page
    await until(lambda: page.offered is not None)
    assert page.offered.url == exo.origin and page.use.isVisible()
    assert "not in your config" in page.found_label.text()
    page.use.click()
    config = load_config(path)
    assert config.provider("exo").base_urls == (exo.origin, closed)
    assert path.read_text().startswith("# my own notes\n")
    assert window.wrote and "in use now" in page.found_label.text()
    assert window.bridge.router.config.provider("exo").base_urls[0] == exo.origin  # at once
    press(window, Qt.Key.Key_Escape)  # Esc: cancel
    assert restarts == [True]  # the app catches up with the file (in place)
    window.present()  # Set up… again: from the first page, on the file as it is now
    assert window.currentPage() is window.exo_page and window.isVisible()
    assert window.document.config.provider("exo").base_urls[0] == exo.origin


async def test_exo_the_config_already_names_is_found_on_its_own_address(wizard_for, exo, closed):
    window, _ = await wizard_for([exo.origin], [closed], closed + "/api/v1", closed + "/v1")
    page = window.exo_page
    await until(lambda: bool(page.found))
    assert [f.url for f in page.found if f.reachable] == [exo.origin]  # not a usual address
    assert page.offered is None and not page.use.isVisible()
    assert "already points there" in page.found_label.text()


async def test_no_exo_says_how_to_start_it(wizard_for, closed):
    window, _ = await wizard_for([closed], [closed], closed + "/api/v1", closed + "/v1")
    page = window.exo_page
    await until(lambda: bool(page.found))
    text = page.found_label.text()  # as shown
    assert "not running" in text and "run exo" in text and "52415" in text
    assert "<code>exo</code>" in page.found_label.source_html
    assert page.offered is None and not page.use.isVisible()


async def test_nobody_answers_the_test_question_shows_the_guidance(wizard_for, closed):
    window, path = await wizard_for([closed], [closed], closed + "/api/v1", closed + "/v1")
    for _ in range(3):
        window.next()
    assert window.currentPage() is window.test_page
    window.test_page.ask_button.click()
    await until(lambda: window.test_page.outcome is not None)
    assert "No answer" in window.test_page.answer.text()
    text = window.test_page.answer.source_html
    assert "<code>exo-bridge keys set openrouter</code>" in text
    assert "<code>exo</code>" in text and str(path) in text


async def test_first_run_writes_the_config_when_the_assistant_closes(wizard_for, closed, tmp_path,
                                                                      monkeypatch):
    target = tmp_path / "config.toml"
    monkeypatch.setenv("EXO_BRIDGE_CONFIG", str(target))
    window, path = await wizard_for([closed], [closed], "", "", write=False)
    assert path == target and not target.exists()
    press(window, Qt.Key.Key_Escape)
    assert target.exists() and load_config(target).source == str(target)


# -- the trigger, and the menu item --------------------------------------------------------
async def test_the_app_opens_the_assistant_on_a_first_run_only(qapp, tmp_path, monkeypatch, closed):
    from desktop.app import DesktopApp
    from desktop.bridge import Bridge
    from router import HealthState, ProviderStatus, Role

    monkeypatch.setattr("router.exo.discover.CANDIDATES", (closed,))
    up = [ProviderStatus("exo", "Exo Local", Role.LOCAL, HealthState.HEALTHY, "", 0.0, None, False)]

    class FakeTray:
        starting = True

        def refresh(self) -> None:
            pass

    fresh = load_config(None)  # EXO_BRIDGE_CONFIG names no file: the defaults
    assert fresh.source == "<defaults>"
    async with Router(fresh) as router:
        bridge = Bridge(router)
        app = DesktopApp(fresh, instance=None)  # type: ignore[arg-type]
        app._started(FakeTray(), bridge, up)  # type: ignore[arg-type]
        assert app.setup is not None and app.setup.isVisible()
        await until(lambda: bool(app.setup.exo_page.found))
        looked = [f.url for f in app.setup.exo_page.found]  # the config's addresses, then the usual
        assert looked == [*fresh.provider("exo").base_urls, closed]
        app.setup.reject()
        app.setup.deleteLater()
        written = load_config(None)
        assert written.source != "<defaults>"  # the next start is no first run
        again = DesktopApp(written, instance=None)  # type: ignore[arg-type]
        again._started(FakeTray(), bridge, up)  # type: ignore[arg-type]
        assert again.setup is None
        quiet = DesktopApp(fresh, instance=None, quit_after_ready=True)  # type: ignore[arg-type]
        quiet._started(FakeTray(), bridge, [])  # type: ignore[arg-type]
        assert quiet.setup is None  # the benchmark run never opens a window
        bridge.close()
        bridge.deleteLater()
        qapp.processEvents()


def test_the_tray_menu_has_set_up(qapp, tmp_path):
    from desktop.autostart import Autostart
    from desktop.bridge import Bridge
    from desktop.tray import Tray

    router = Router(load_config(None))
    tray = Tray(Bridge(router), endpoint_url=lambda: None, endpoint_token=lambda: None,
                autostart=Autostart(tmp_path))
    try:
        asked = []
        tray.setup_requested.connect(lambda: asked.append(True))
        texts = [a.text().replace("&", "") for a in tray.menu.actions()]
        assert texts.index("Set up…") == texts.index("Settings…") + 1
        next(a for a in tray.menu.actions() if a.text() == "Set &up…").trigger()
        assert asked == [True]
    finally:
        tray.timer.stop()
        tray.menu.deleteLater()
        tray.deleteLater()
        qapp.processEvents()


async def test_a_typed_daily_limit_is_checked_and_local_only_needs_none(
        wizard_for, exo, openrouter, hf):
    from tests.test_settings import click, retype

    window, path = await wizard_for([exo.origin], [exo.origin], openrouter.base_url, hf.base_url)
    window.next()
    window.next()
    paid = window.paid_page
    assert window.currentPage() is paid
    click(paid.allowed)
    limit = paid.limits["openrouter"]
    retype(limit, "abc1.2.3")
    assert paid.problems["openrouter"].isVisible() and not paid.isComplete()
    assert not window.button(window.WizardButton.NextButton).isEnabled()
    retype(limit, "")  # empty: no limit, the user's own choice
    assert paid.isComplete()
    click(paid.local)
    assert not limit.isEnabled() and paid.isComplete()
    click(window.button(window.WizardButton.NextButton))
    assert window.currentPage() is window.test_page
    config = load_config(path)
    assert config.allow_paid_failover is False
    assert config.provider("openrouter").daily_cost_limit_usd is None  # not written for local only
    assert window.bridge.router.config.allow_paid_failover is False
    window.back()  # back again: the choice written is the one shown
    assert paid.local.isChecked() and not paid.allowed.isChecked()


async def test_the_test_answer_is_rendered_markdown(wizard_for, exo, closed):
    """Enter through the pages to the test question, Enter asks: the answer reads as text
    (bold, a list, code), not as Markdown's marks."""
    from tests.test_settings import click

    exo.reply = "Hello **there**, friend:\n\n- one\n- two\n\nRun `exo` to start."
    window, _ = await wizard_for([exo.origin], [exo.origin], closed + "/api/v1", closed + "/v1")
    await until(lambda: "Found exo" in window.exo_page.found_label.text())
    for _ in range(2):  # exo, keys: Next each
        press(window)
    click(window.paid_page.local)  # paid failover: nothing is chosen for the user
    press(window)
    assert window.currentPage() is window.test_page
    press(window.test_page.question)
    await until(lambda: window.test_page.outcome is not None)
    shown = window.test_page.answer.text()
    assert "Hello there, friend" in shown and "**" not in shown and "`" not in shown
    assert "- one" not in shown and "one" in shown and "two" in shown
    assert "font-weight" in window.test_page.answer.toHtml()  # bold as bold


async def test_one_exo_on_localhost_and_127_0_0_1_is_listed_once(wizard_for, exo, closed):
    twin = exo.origin.replace("127.0.0.1", "localhost")
    window, _ = await wizard_for([exo.origin], [twin, exo.origin, closed], closed + "/api/v1",
                                 closed + "/v1")
    page = window.exo_page
    await until(lambda: "Found exo" in page.found_label.text())
    assert page.found_label.text().count("Found exo") == 1
    assert len([f for f in page.found if f.reachable]) == 1


async def test_a_key_test_that_cannot_connect_says_so_whole(wizard_for, exo, openrouter, hf,
                                                            keyring_store):
    """A key typed and Enter while OpenRouter cannot be reached: saved, not tested, what to check
    — every line of it shown (two lines used to scroll the rest away)."""
    window, _ = await wizard_for([exo.origin], [exo.origin], openrouter.base_url, hf.base_url)
    press(window)  # Next: the keys
    row = next(r for r in window.keys_page.rows if r.provider.id == "openrouter")
    openrouter.stop()
    row.field.setFocus()
    QTest.keyClicks(row.field, OR_KEY)
    press(row.field)
    await until(lambda: row.works is not None)
    text = row.state.text()
    assert row.works is False and "not tested: connection refused" in text
    assert "could not reach OpenRouter" in text and "internet connection" in text
    assert keyring_store.entries[("exo-bridge", "openrouter")] == OR_KEY  # saved all the same
    QApplication.processEvents()
    document = row.state.document()
    document.setTextWidth(row.state.viewport().width())
    assert row.state.viewport().height() >= document.size().height() - 1  # no line scrolled away
