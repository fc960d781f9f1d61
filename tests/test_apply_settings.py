"""The whole tray app taking on new settings in place (issue 28): a save keeps the open chat and
its conversation, the endpoint restarts only when its own settings change, and a regenerated
token is the one that works, everywhere, at once. Driven as a person does: menu items, then
keyboard and mouse on the real widgets."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import httpx
import pytest

pytest.importorskip("PySide6", reason="the desktop extra is not installed")

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from router.config import load_config
from tests.conftest import until, unused_port
from tests.test_settings import click, click_row, retype

ASK = {"model": "llama-3.2-3b", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def app(qapp, make_config, keys_in_env, monkeypatch):
    """The tray app on the fake providers, its endpoint's token in the (in-memory) keychain."""
    from desktop import operations
    from desktop.app import DesktopApp
    from desktop.single_instance import SingleInstance
    from router import keys

    # the keychain read in-process: the in-memory keychain is not the helper process's
    monkeypatch.setattr(operations, "endpoint_token_in_helper", keys.endpoint_token)
    config, path = make_config(extra=f"\n[server]\nport = {unused_port()}\n")
    desktop = DesktopApp(config, SingleInstance(f"exo-bridge-apply-{os.getpid()}"))
    desktop.config_path = path
    running = asyncio.ensure_future(desktop.run())
    await asyncio.wait_for(desktop.ready.wait(), 20)
    await until(lambda: not desktop.tray.starting)
    try:
        yield desktop
    finally:
        desktop.quit.set()
        await asyncio.wait_for(running, 20)
        if desktop.tray is not None:
            desktop.tray.timer.stop()
        for window in (desktop.chat, desktop.settings):
            if window is not None:
                window.close()
        desktop.dispose()
        qapp.processEvents()


async def _ask(url: str, token: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(f"{url}/chat/completions", json=ASK,
                               headers={"Authorization": f"Bearer {token}"})


async def _chat_once(app) -> None:
    app.tray.open_chat.trigger()
    chat = app.chat
    QTest.keyClicks(chat.prompt, "hello")
    QTest.keyClick(chat.prompt, Qt.Key.Key_Return)
    await until(lambda: chat.task is None and chat.turns and chat.turns[-1].done)


async def test_a_save_keeps_the_chat_and_its_conversation_and_the_endpoint(app, make_config):
    await _chat_once(app)
    chat, server, url, token = app.chat, app.server, app.server.url, app.token
    assert "Hello from the fake provider" in chat.transcript.toPlainText()
    app.tray.open_settings.trigger()
    settings = app.settings
    tab = settings.providers
    click_row(tab.order, 1)  # OpenRouter: a lower daily limit, and last in the order
    retype(tab.requests, "5")
    click(tab.down)
    click(settings.save_button)
    await until(lambda: app.router.config.provider("openrouter").daily_request_limit == 5)
    assert [p.id for p in app.router.config.providers] == ["exo", "huggingface", "openrouter"]
    assert not app.quit.is_set()
    assert app.chat is chat and chat.isVisible() and len(chat.turns) == 1
    assert "Hello from the fake provider" in chat.transcript.toPlainText()
    assert app.server is server  # its address did not change: not restarted
    assert app.tray._provider_actions[1].data() == "huggingface"  # the menu follows the order
    assert (await _ask(url, token)).status_code == 200
    # the conversation goes on, on the new settings
    QTest.keyClicks(chat.prompt, "and again")
    QTest.keyClick(chat.prompt, Qt.Key.Key_Return)
    await until(lambda: chat.task is None and len(chat.turns) == 2 and chat.turns[1].done)
    assert chat.turns[1].answer and not chat.turns[1].error


async def test_a_new_port_moves_the_endpoint_and_nothing_else(app):
    await _chat_once(app)
    chat, old_url, token = app.chat, app.server.url, app.token
    app.tray.open_settings.trigger()
    settings = app.settings
    settings.tabs.setCurrentIndex(2)  # Local endpoint
    port = unused_port()
    retype(settings.port, str(port))
    click(settings.save_button)
    await until(lambda: app.server is not None and app.server.port == port)
    assert load_config(app.config_path).server.port == port
    assert app.chat is chat and len(chat.turns) == 1 and not app.quit.is_set()
    assert (await _ask(app.server.url, token)).status_code == 200
    with pytest.raises(httpx.ConnectError):
        await _ask(old_url, token)


async def test_a_save_with_no_change_writes_nothing_and_restarts_nothing(app):
    before = app.config_path.read_text()
    server, router = app.server, app.router
    app.tray.open_settings.trigger()
    click(app.settings.save_button)
    await asyncio.sleep(0.2)  # the in-place apply, had there been one to make, has run
    assert app.config_path.read_text() == before and "[server]\nport" in before
    assert before.count("[server]") == 1
    assert app.server is server and app.router is router and not app.quit.is_set()


def _the_button(box, text: str):
    return next(b for b in box.buttons() if b.text() == text)


async def test_regenerate_asks_first_then_the_new_token_works_everywhere_at_once(app, qapp):
    from PySide6.QtGui import QGuiApplication

    from router.cli.main import main as cli

    old = app.token
    url = app.server.url
    app.tray.open_settings.trigger()
    settings = app.settings
    bar = settings.tabs.tabBar()
    QTest.mouseClick(bar, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     bar.tabRect(2).center())
    click(settings.regenerate)
    box = settings.confirmation
    assert box is not None and box.isVisible() and "401" in box.informativeText()
    click(_the_button(box, "Cancel"))  # no: nothing changes
    await asyncio.sleep(0.1)
    assert app.token == old and (await _ask(url, old)).status_code == 200
    click(settings.regenerate)
    click(_the_button(settings.confirmation, "Make a new token"))
    await until(lambda: app.token != old)
    new = app.token
    refused = await _ask(url, old)
    assert refused.status_code == 401 and "exo-bridge token" in refused.json()["error"]["message"]
    assert (await _ask(url, new)).status_code == 200
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli(["token"]) == 0
    assert printed.getvalue().strip() == new
    app.tray.copy_token.trigger()
    assert QGuiApplication.clipboard().text() == new
    assert settings.token.text() == "" and settings.token_note.isVisible()
    assert "in use now" in settings.token_note.text()
    click(settings.show_token)
    assert settings.token.text() == new


async def test_a_new_port_that_is_taken_is_said_and_the_chat_stays(app):
    import socket

    await _chat_once(app)
    chat = app.chat
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        port = taken.getsockname()[1]
        app.tray.open_settings.trigger()
        settings = app.settings
        settings.tabs.setCurrentIndex(2)
        retype(settings.port, str(port))
        click(settings.save_button)
        await until(lambda: any("cannot listen" in n.body for n in app.tray.shown_notes))
        assert app.server is None and app.chat is chat and len(chat.turns) == 1
        assert not app.quit.is_set()
    finally:
        taken.close()
