"""Render every window offscreen, light and dark, into docs/screenshots/NAME-APPEARANCE.png.

    .venv/bin/python -m docs.make_screenshots [--appearance light|dark|both]

The chat window shows a real answer from a fake provider, the cost window a synthetic month (and
12 months); the tray menu (and its cluster submenu, About), the settings window (and a failed
key test, Remove's confirmation), the first-run assistant (exo found, a test answer) and the
status window (used where there is no tray) are shown as a user sees them. The desktop-session
check runs this after its own real-desktop screenshots."""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication

OUT = Path(__file__).resolve().parent / "screenshots"
FIXED_IN_ISSUE_28 = ("settings-usd-problem", "settings-node-problem", "token-regenerate-confirm",
                     "token-regenerated", "setup-paid-unchosen", "setup-paid-allowed",
                     "chat-paid-question")


def synthetic_ledger(directory: Path):
    from router.ledger.ledger import Ledger, Row

    ledger = Ledger.in_dir(directory)
    rng = random.Random(3)
    rows = []
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    for back in range(30):
        day = today - timedelta(days=back)
        for i in range(rng.randint(20, 60)):
            provider = rng.choice(["exo"] * 5 + ["openrouter", "huggingface"])
            cost = 0.0 if provider == "exo" else rng.uniform(0.0002, 0.003)
            rows.append(Row(day.timestamp(), f"r{back}-{i}", "llama-3.2-3b", "m", provider, "ok", True,
                            True, rng.randint(50, 400), rng.randint(50, 600), cost,
                            "free" if provider == "exo" else "reported", rng.uniform(200, 2500), 90.0,
                            provider != "exo", int(provider != "exo"), "",
                            rng.uniform(0.0005, 0.002) if provider == "exo" else 0.0,
                            f"s-{back}-{i}").values())
    ledger.write_now(rows)
    return ledger


class Shots:
    """Every window in one appearance, as ``NAME-APPEARANCE.png``."""

    def __init__(self, appearance: str, router, ledger, config_path: Path, fakes: dict):
        from desktop import appearance as look
        from desktop.bridge import Bridge

        app = QApplication.instance()
        assert isinstance(app, QApplication)
        look.apply(app, look.Appearance(appearance))
        self.appearance, self.router, self.ledger = appearance, router, ledger
        self.config_path = config_path
        self.fakes = fakes  # "exo", "openrouter", "huggingface": the fake providers
        self.exo = fakes["exo"]  # stopped for the chat's paid answer
        self.bridge = Bridge(router)
        self.written: list[Path] = []

    def save(self, widget, name: str) -> None:
        for _ in range(3):  # a layout's changes reach its parents' in turn (no Qt loop runs here)
            QApplication.processEvents()
        path = OUT / f"{name}-{self.appearance}.png"
        widget.grab().save(str(path))
        self.written.append(path)

    def save_side_by_side(self, menu, submenu, top: int, name: str) -> None:
        """A menu with its submenu open beside it at ``top``, as on screen."""
        from PySide6.QtGui import QPainter, QPixmap

        QApplication.processEvents()
        left, right = menu.grab(), submenu.grab()
        canvas = QPixmap(left.width() + right.width(), max(left.height(), top + right.height()))
        canvas.fill(menu.palette().color(menu.palette().ColorRole.Base))  # the menus' own
        painter = QPainter(canvas)
        painter.drawPixmap(0, 0, left)
        painter.drawPixmap(left.width(), top, right)
        painter.end()
        path = OUT / f"{name}-{self.appearance}.png"
        canvas.save(str(path))
        self.written.append(path)

    async def chat(self) -> None:
        from desktop.windows.chat import ChatWindow

        chat = ChatWindow(self.bridge)
        chat.resize(720, 560)
        chat.show()
        chat.prompt.setPlainText("Show me a loop in Python")
        chat.submit()
        while chat.task is not None:
            await asyncio.sleep(0.05)
        chat.prompt.setPlainText("Thanks!")
        self.save(chat, "chat")
        chat.hide()

    async def costs(self) -> None:
        from PySide6.QtCore import QPointF

        from desktop.windows.costs import CostWindow

        costs = CostWindow(self.bridge, self.ledger)
        costs.open()
        while not costs.rows or costs.graphs is None:
            await asyncio.sleep(0.05)
            QApplication.processEvents()  # the plots are built on a Qt timer
        graphs = costs.graphs
        yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
        box = graphs.main.getPlotItem().getViewBox()  # the read-out of one bucket
        graphs.hover(graphs.main, box.mapViewToScene(QPointF(graphs.centre(yesterday), 0.0)))
        await asyncio.sleep(0.2)
        self.save(costs, "costs")
        costs.rows = []
        costs.range_box.setCurrentText("12 months")  # the current month whole, p50 dots apart
        while not costs.rows:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        self.save(costs, "costs-12-months")
        costs.hide()

    async def settings(self) -> None:
        from desktop.autostart import Autostart
        from desktop.settings_model import SettingsDocument
        from desktop.windows.settings import SettingsWindow
        from desktop.windows.setup import SetupWindow

        with tempfile.TemporaryDirectory() as auto:
            settings = SettingsWindow(self.bridge, SettingsDocument(self.config_path),
                                      Autostart(Path(auto)), endpoint_token=lambda: None)
            settings.show()
            await asyncio.sleep(0.2)
            self.save(settings, "settings")
            await self.key_test(settings)
            settings.hide()
        setup = SetupWindow(self.bridge, SettingsDocument(self.config_path))
        setup.show()
        await asyncio.sleep(1.0)  # its first page looks for exo
        self.save(setup, "setup")
        setup.hide()
        await self.setup_found_and_answered()

    async def key_test(self, settings) -> None:
        """Keys → Test while OpenRouter cannot be reached: the hint on a line of its own, the
        field as wide as before; then Remove, which asks first."""
        from PySide6.QtCore import QTimer

        settings.tabs.setCurrentIndex(1)
        row = next(r for r in settings.key_rows if r.provider_id == "openrouter")
        cloud = self.fakes["openrouter"]
        cloud.stop()
        try:
            row.test.click()
            while not row.state.text().startswith("✗"):
                await asyncio.sleep(0.05)
        finally:
            cloud.start()
        await self.router.probe(self.router.config.provider("openrouter"))  # reachable again
        await asyncio.sleep(0.2)  # the layout takes the wrapped lines
        self.save(settings, "settings-key-test")

        def shoot_and_cancel() -> None:
            dialog = QApplication.activeModalWidget()
            if dialog is None:
                QTimer.singleShot(20, shoot_and_cancel)
                return
            self.save(dialog, "settings-remove-key")
            dialog.reject()

        QTimer.singleShot(0, shoot_and_cancel)
        row.remove.click()  # modal until the shot is taken; Cancel keeps the key

    async def setup_found_and_answered(self) -> None:
        """exo answering on localhost and 127.0.0.1 (listed once); the test answer, rendered."""
        from desktop.operations import SetupOperations
        from desktop.settings_model import SettingsDocument
        from desktop.windows.setup import SetupWindow
        from router.config import parse_config

        before = self.config_path.read_text()
        origin = self.fakes["exo"].origin
        setup = SetupWindow(self.bridge, SettingsDocument(self.config_path), SetupOperations(
            self.router, [origin.replace("127.0.0.1", "localhost"), origin]))
        setup.show()
        while "Found exo" not in setup.exo_page.found_label.text():
            await asyncio.sleep(0.05)
        self.save(setup, "setup-found-exo")
        for _ in range(3):  # exo, keys, paid failover (as the config has it)
            setup.next()
        assert setup.currentPage() is setup.test_page
        setup.test_page.ask()
        while setup.test_page.outcome is None:
            await asyncio.sleep(0.05)
        self.save(setup, "setup-answer")
        setup.hide()
        # what the assistant wrote (its paid-failover choice, applied in place) is undone: the
        # shots of issue 28's states start from the config as it was
        self.config_path.write_text(before)
        self.router.reconfigure(parse_config(before, str(self.config_path)))

    def tray(self) -> None:
        from PySide6.QtCore import QPoint

        from desktop.status_model import tray_view
        from desktop.tray import StatusWindow, Tray

        status = StatusWindow()
        status.show_view(tray_view(self.router.statuses(), ledger_problem="disk full: cannot "
                                   "write to ~/.local/share/exo-bridge/usage.sqlite3"))
        status.show()
        status.resize(status.width() * 4 // 5, status.height())  # narrower: more lines, all shown
        self.save(status, "status-window")
        status.hide()
        tray = Tray(self.bridge, endpoint_url=lambda: "http://127.0.0.1:8741/v1",
                    endpoint_token=lambda: None)
        tray.refresh()
        tray.menu.popup(QPoint(0, 0))
        self.save(tray.menu, "tray-menu")
        entry = tray.menu.actionGeometry(tray.cluster.entry)
        tray.cluster.submenu.popup(tray.menu.mapToGlobal(entry.topRight()))
        self.save_side_by_side(tray.menu, tray.cluster.submenu, entry.top(), "tray-cluster")
        tray.cluster.submenu.hide()  # (a node's rows: the menu's own text colour)
        tray.menu.hide()
        tray.about.trigger()
        assert tray.about_box is not None
        self.save(tray.about_box, "about")
        tray.about_box.close()
        tray.timer.stop()

    async def fixed_in_issue_28(self) -> None:
        """The states issue 28 fixed: a field typed wrong said beside it, Regenerate asking
        first and saying what it did, the paid-failover choice with a suggested daily limit, and
        the chat saying (and asking) before a paid answer."""
        await self._settings_problems()
        await self._paid_choice()
        await self._chat_paid()

    def _settings_window(self, auto: str):  # type: ignore[no-untyped-def]
        from desktop.autostart import Autostart
        from desktop.settings_model import SettingsDocument
        from desktop.windows.settings import SettingsWindow

        settings = SettingsWindow(self.bridge, SettingsDocument(self.config_path),
                                  Autostart(Path(auto)), endpoint_token=lambda: "n" * 43)
        settings.show()
        return settings

    async def _settings_problems(self) -> None:
        from PySide6.QtCore import Qt
        from PySide6.QtTest import QTest

        from router import Secret

        with tempfile.TemporaryDirectory() as auto:
            settings = self._settings_window(auto)
            tab = settings.providers
            assert tab is not None
            tab.order.setCurrentRow(1)  # OpenRouter
            QTest.keyClicks(tab.cost, "abc1.2.3")
            QTest.mouseClick(settings.save_button, Qt.MouseButton.LeftButton)
            self.save(settings, "settings-usd-problem")
            settings.cancel()
            settings.show()
            tab.order.setCurrentRow(0)  # exo: a node typed wrong
            QTest.keyClicks(tab.url_entry, "my mac mini")
            QTest.mouseClick(tab.add_url, Qt.MouseButton.LeftButton)
            self.save(settings, "settings-node-problem")
            settings.cancel()
            settings.show()
            settings.tabs.setCurrentIndex(2)  # Local endpoint
            QTest.mouseClick(settings.regenerate, Qt.MouseButton.LeftButton)
            box = settings.confirmation
            assert box is not None
            await asyncio.sleep(0.1)
            self.save(box, "token-regenerate-confirm")
            box.reject()  # no keychain is written by a screenshot
            settings._regenerated(Secret("n" * 43))  # what a yes shows
            self.save(settings, "token-regenerated")
            settings.hide()

    async def _paid_choice(self) -> None:
        from PySide6.QtCore import Qt
        from PySide6.QtTest import QTest

        from desktop.settings_model import SettingsDocument
        from desktop.windows.setup import SetupWindow

        setup = SetupWindow(self.bridge, SettingsDocument(self.config_path))
        setup.show()
        setup.next()
        setup.next()
        await asyncio.sleep(0.1)
        self.save(setup, "setup-paid-unchosen")
        QTest.mouseClick(setup.paid_page.allowed, Qt.MouseButton.LeftButton)
        self.save(setup, "setup-paid-allowed")
        setup.hide()

    async def _chat_paid(self) -> None:
        from desktop.windows.chat import ChatWindow

        if self.exo is None:
            return
        chat = ChatWindow(self.bridge)
        chat.resize(720, 560)
        chat.show()
        self.exo.stop()
        before = os.environ.get("OPENROUTER_API_KEY")
        os.environ["OPENROUTER_API_KEY"] = "sk-or-screenshots"  # the fake takes any key
        try:
            await self.router.reload_keys()
            await self.router.probe(self.router.config.provider("exo"))
            chat.open()
            chat.prompt.setPlainText("What is the capital of France?")
            chat.submit()
            await asyncio.sleep(0.1)
            self.save(chat, "chat-paid-question")
            chat.paid_question.cancel.click()
        finally:
            if before is None:
                del os.environ["OPENROUTER_API_KEY"]
            else:
                os.environ["OPENROUTER_API_KEY"] = before
            await self.router.reload_keys()
            self.exo.start()
            await self.router.probe(self.router.config.provider("exo"))
        chat.hide()

    async def all(self) -> list[Path]:
        await self.chat()
        await self.costs()
        await self.settings()
        self.tray()
        await self.fixed_in_issue_28()
        self.bridge.close()
        return self.written


async def main(appearances: list[str]) -> None:
    from router import Router
    from router.config import parse_config
    from tests.conftest import config_text
    from tests.fakes.provider import FakeProvider

    OUT.mkdir(exist_ok=True)
    os.environ.pop("EXO_BRIDGE_TOKEN", None)  # Regenerate is off under it: shown as a user sees it
    os.environ["OPENROUTER_API_KEY"] = "sk-or-screenshots-0000000000"  # a key to test (the fake's)
    exo, cloud, hf = FakeProvider("exo"), FakeProvider("openrouter"), FakeProvider("huggingface")
    exo.reply = ("Here is a loop in Python:\n\n- it counts **three** times\n- it prints each "
                 "number\n\n```python\nfor i in range(3):\n    print(i)\n```\n"
                 "| i | printed |\n|---|---|\n| 0 | 0 |\n| 1 | 1 |\n| 2 | 2 |\n")
    text = config_text([exo.origin], cloud.base_url, hf.base_url)
    config = parse_config(text, "screens")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config_path = Path(tmp) / "config.toml"
            config_path.write_text(text)
            ledger = synthetic_ledger(Path(tmp))
            async with Router(config, ledger=ledger) as router:
                fakes = {"exo": exo, "openrouter": cloud, "huggingface": hf}
                for appearance in appearances:
                    for path in await Shots(appearance, router, ledger, config_path, fakes).all():
                        print("wrote", path.relative_to(OUT.parent.parent))
            ledger.close()
    finally:
        for fake in (exo, cloud, hf):
            fake.close()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--appearance", choices=("light", "dark", "both"), default="both")
    chosen = parser.parse_args().appearance
    app = QApplication([])
    asyncio.run(main(["light", "dark"] if chosen == "both" else [chosen]))
