"""The tray app: one process, one qasync loop, the router, the local endpoint and the tray.

``exo-bridge [--config F] [--quit-after-ready]``. A second launch brings the running instance
forward and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from router import Config, ConfigError, ExoBridgeError, load_config

if TYPE_CHECKING:
    from PySide6.QtCore import QObject
    from PySide6.QtWidgets import QWidget

    from desktop.bridge import Bridge
    from desktop.gc_policy import GuiThreadCollector
    from desktop.notify import NativeNotifications
    from desktop.single_instance import SingleInstance
    from desktop.tray import Tray
    from desktop.windows.chat import ChatWindow
    from desktop.windows.costs import CostWindow
    from desktop.windows.settings import SettingsWindow
    from desktop.windows.setup import SetupWindow
    from router import Crash, CrashWatch, Ledger, ProviderStatus, Router, Secret
    from router.endpoint.server import EndpointServer


def process_age_ms() -> float:
    """Milliseconds since this process started (Linux /proc; else since this module loaded)."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime_s = float(Path("/proc/uptime").read_text().split()[0])
        return (uptime_s - start_ticks / os.sysconf("SC_CLK_TCK")) * 1000
    except (OSError, ValueError, IndexError):
        return (time.perf_counter() - _LOADED) * 1000


_LOADED = time.perf_counter()


# Qt's X11 platform plugin needs these system libraries; without them Qt aborts the process.
X11_LIBRARIES = {"xcb-cursor": "libxcb-cursor0", "xcb-icccm": "libxcb-icccm4",
                 "xcb-keysyms": "libxcb-keysyms1", "xkbcommon-x11": "libxkbcommon-x11-0"}


def missing_x11_libraries(environ: dict[str, str] | None = None) -> list[str]:
    """Debian package names of the libraries Qt would abort for, on an X11 session."""
    import ctypes.util

    env = os.environ if environ is None else environ
    platform = env.get("QT_QPA_PLATFORM", "")
    on_x11 = sys.platform.startswith("linux") and bool(env.get("DISPLAY")) and (
        platform.startswith("xcb") or (not platform and not env.get("WAYLAND_DISPLAY")))
    if not on_x11:
        return []
    return [package for name, package in X11_LIBRARIES.items() if ctypes.util.find_library(name) is None]


def no_display(environ: dict[str, str] | None = None) -> bool:
    """True on Linux with no graphical session to show a tray in (Qt would abort)."""
    env = os.environ if environ is None else environ
    return (sys.platform.startswith("linux") and not env.get("QT_QPA_PLATFORM")
            and not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"))


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="exo-bridge", description="The Exo Bridge tray app "
                                     "(`exo-bridge --help-commands` lists the headless commands).")
    parser.add_argument("--config", metavar="FILE")
    parser.add_argument("--quit-after-ready", action="store_true",
                        help="start, print `ready in N ms` once the icon shows, and exit")
    return parser.parse_args(argv)


def run_app(argv: Sequence[str]) -> int:
    args = parse(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"exo-bridge: {exc}", file=sys.stderr)
        return 2
    if no_display():
        print("exo-bridge: no graphical session here (neither DISPLAY nor WAYLAND_DISPLAY is set), "
              "so there is no tray to show. Headless, use `exo-bridge serve` (the local endpoint) "
              "or `exo-bridge ask`.", file=sys.stderr)
        return 2
    missing = missing_x11_libraries()
    if missing:
        print("exo-bridge: the tray app needs these system libraries for X11: "
              f"{', '.join(missing)} (Debian/Ubuntu: sudo apt install {' '.join(missing)}). "
              "Headless use works without them: `exo-bridge serve`, `exo-bridge ask`.",
              file=sys.stderr)
        return 2
    from PySide6.QtWidgets import QApplication  # before qasync, so it picks PySide6

    from desktop.pyside_imports import lighten_feature_check
    from desktop.qt_check import BROKEN_QT_MESSAGE, callbacks_lose_references
    from desktop.single_instance import SingleInstance

    lighten_feature_check()

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    if callbacks_lose_references():
        print(f"exo-bridge: {BROKEN_QT_MESSAGE}", file=sys.stderr)
        return 2
    app.setApplicationName("Exo Bridge")
    from desktop.icons import APP_ICON_NAME, app_icon

    app.setWindowIcon(app_icon())  # every window's, and the balloons'
    app.setDesktopFileName(APP_ICON_NAME)  # packaging/exo-bridge.desktop
    from desktop import appearance

    appearance.apply(app)  # light or dark: the system's, or EXO_BRIDGE_APPEARANCE
    app.setQuitOnLastWindowClosed(False)  # closing a window must not stop the loop
    instance = SingleInstance()
    if instance.forward_to_running():
        print("Exo Bridge is already running: its window is shown there.")
        return 0
    instance.listen()
    from desktop.gc_policy import GuiThreadCollector

    desktop = DesktopApp(config, instance, quit_after_ready=args.quit_after_ready)
    from desktop import qt_loop

    desktop.collector = GuiThreadCollector(app)
    return _run_watched(desktop, args, argv, qt_loop.run)


def _run_watched(desktop: DesktopApp, args: argparse.Namespace, argv: Sequence[str],
                 run: Callable[[Coroutine[Any, Any, int]], int]) -> int:
    """Run the app on the loop with crash reporting: a fatal error or an unexpected exception
    goes to the crash log (never to a terminal that may not be there) and the next start
    says so once."""
    from desktop.operations import watch_crashes

    watch, desktop.previous_crash = watch_crashes("tray")
    desktop.crash_watch = watch
    desktop.config_path = Path(args.config) if args.config else None
    try:
        code = int(run(desktop.run()))
    except Exception as exc:  # the last line of defence: logged, reported at the next start
        logging.getLogger(__name__).exception("the tray app stopped on an unexpected error")
        watch.crashed(f"{exc.__class__.__name__}: {exc}")
        print(f"exo-bridge: stopped on an unexpected error ({exc.__class__.__name__}); details in "
              f"{watch.log_file}", file=sys.stderr)
        return 1
    desktop.dispose()
    watch.stop()
    return code


def _quit_on_signals(loop: asyncio.AbstractEventLoop, quit_event: asyncio.Event) -> None:
    """SIGTERM (a logout, `kill`) and Ctrl-C quit cleanly: requests in flight finish, nothing is
    reported as a crash."""
    import signal

    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, quit_event.set)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows; not the main thread
            return


class DesktopApp:
    def __init__(self, config: Config, instance: SingleInstance, *, quit_after_ready: bool = False):
        self.config = config
        self.instance = instance
        self.quit_after_ready = quit_after_ready
        self.quit = asyncio.Event()
        self.ready = asyncio.Event()
        self.router: Router | None = None
        self.tray: Tray | None = None
        self.server: EndpointServer | None = None
        self.token: str | None = None
        self.notice: str | None = None
        self.settings: SettingsWindow | None = None
        self.native: NativeNotifications | None = None
        self.chat: ChatWindow | None = None
        self.costs: CostWindow | None = None
        self.setup: SetupWindow | None = None
        self.config_path: Path | None = None
        self.previous_crash: Crash | None = None  # reported once
        self.crash_watch: CrashWatch | None = None
        self.collector: GuiThreadCollector | None = None

    async def run(self) -> int:
        from desktop import operations
        from router import Router

        loop = asyncio.get_running_loop()
        if self.crash_watch is not None:
            loop.set_exception_handler(self.crash_watch.loop_exception)
        _quit_on_signals(loop, self.quit)
        ledger = self._open_ledger()
        try:  # keychain reads in a helper process: keyring's client would stay resident here
            async with Router(self.config, ledger=ledger,
                              keys=operations.keys_from_helper()) as router:
                await self._run_with(router, ledger)
        finally:
            ledger.close()
        return 0

    async def _run_with(self, router: Router, ledger: Ledger) -> None:
        from desktop.bridge import Bridge

        bridge = Bridge(router)
        collector = self.collector
        if collector is not None:  # the garbage of a request: collected in this thread
            bridge.request_finished.connect(lambda _event: collector.maybe_collect())
        tray = self._make_tray(bridge, ledger)
        bridge.error.connect(lambda message: self._tell(tray, message))
        self.router, self.tray = router, tray  # for the end-to-end test
        tray.show()
        bridge.run(self._native_notifications(tray),
                   on_done=lambda _: self._report_at_start(tray, router))
        if self.crash_watch is not None:
            router.spawn(self.crash_watch.beat())
        router.start_probes()
        checked = bridge.run(router.check_all(),
                             on_done=lambda found: self._started(tray, bridge, found))
        print(f"ready in {process_age_ms():.0f} ms", flush=True)
        await self._serve_endpoint(router, tray)
        self.ready.set()
        if self.quit_after_ready:  # for benchmarks: when the HTTP stack was in use too
            await asyncio.wait([checked])
            print(f"exo-bridge: endpoint up and providers checked at {process_age_ms():.0f} ms",
                  file=sys.stderr, flush=True)
        else:
            await self.quit.wait()
        await self._stop_endpoint()
        if self.native is not None:
            await self.native.close()
        tray.close()
        bridge.close()

    @staticmethod
    def _tell(tray: Tray, message: str) -> None:
        """A failure of something the user did (a new port taken, a keychain that refused): a
        notification, never only a log line."""
        from desktop.notify import Note

        tray.notify(Note("error", f"error:{message}", "Exo Bridge", message))

    def _make_tray(self, bridge: Bridge, ledger: Ledger) -> Tray:
        from desktop.autostart import Autostart
        from desktop.tray import Tray

        tray = Tray(bridge, endpoint_url=self._endpoint_url, endpoint_token=lambda: self.token,
                    autostart=Autostart(), config_file=self.config_path or self.config_source(),
                    log_file=self.crash_watch.log_file if self.crash_watch is not None else None)
        tray.quit_requested.connect(self.quit.set)
        tray.settings_requested.connect(lambda: self._open_settings(bridge))
        tray.setup_requested.connect(lambda: self._open_setup(bridge))
        tray.provider_requested.connect(lambda pid: self._open_settings(bridge, pid))
        tray.chat_requested.connect(lambda: self._open_chat(bridge))
        tray.costs_requested.connect(lambda: self._open_costs(bridge, ledger))
        self.instance.activated.connect(tray.bring_forward)
        return tray

    def config_source(self) -> Path | None:
        """The file the running config came from (None: built in)."""
        source = self.config.source
        return None if source.startswith("<") else Path(source)

    def dispose(self) -> None:
        """Destroy the windows and the tray before the interpreter exits (Qt objects destroyed
        in an arbitrary order at exit can crash the process as it quits). Call it after the
        event loop has stopped."""
        import shiboken6

        tray = self.tray
        owned: list[QObject | None] = [self.settings, self.chat, self.costs, self.setup]
        if tray is not None:
            owned += [tray.about_box, tray.status_window, tray.menu, tray.icon, tray]
        for item in owned:
            if item is not None and shiboken6.isValid(item):
                shiboken6.delete(item)

    def _window_shortcuts(self, window: QWidget) -> None:
        """The tray menu's Chat/Costs/Settings shortcuts, working in every window."""
        if self.tray is not None:
            window.addActions(self.tray.window_actions)

    def _open_settings(self, bridge: Bridge, provider_id: str | None = None) -> None:
        """One settings window, brought forward if already open (on ``provider_id``'s section
        when a provider's row was clicked); a save is taken on in place (apply_config)."""
        from desktop.autostart import Autostart
        from desktop.settings_model import SettingsDocument
        from desktop.windows.settings import SettingsWindow

        if self.settings is None:
            document = SettingsDocument(self.config_path)
            self.settings = SettingsWindow(bridge, document, Autostart(),
                                           endpoint_token=lambda: self.token)
            self.settings.saved.connect(lambda config: self.apply_config(bridge, config))
            self.settings.token_regenerated.connect(self._use_token)
            self._window_shortcuts(self.settings)
        if provider_id is not None:
            self.settings.show_provider(provider_id)
        self.settings.show()
        self.settings.raise_()
        self.settings.activateWindow()

    def _open_setup(self, bridge: Bridge) -> None:
        """The first-run assistant (Set up…); what it wrote that the running router has not
        taken on yet (exo's address) is taken on in place when it closes."""
        from desktop.settings_model import SettingsDocument
        from desktop.windows.setup import SetupWindow

        if self.setup is None:
            self.setup = SetupWindow(bridge, SettingsDocument(self.config_path))
            self.setup.done_setup.connect(lambda changed: self._reload_config(bridge) if changed
                                          else None)
        self.setup.present()

    def _open_chat(self, bridge: Bridge) -> None:
        from desktop.windows.chat import ChatWindow

        if self.chat is None:
            self.chat = ChatWindow(bridge)
            self._window_shortcuts(self.chat)
        self.chat.open()

    def _open_costs(self, bridge: Bridge, ledger: Ledger) -> None:
        if self.costs is None:
            from desktop.windows.costs import CostWindow  # imports pyqtgraph, only now

            self.costs = CostWindow(bridge, ledger)
            self._window_shortcuts(self.costs)
        self.costs.open()

    def apply_config(self, bridge: Bridge, config: Config) -> asyncio.Task[None]:
        """New settings, taken on in place: the router follows the new order, limits,
        addresses and consent at once (requests in flight finish as they are); the local
        endpoint restarts only when its own settings changed; the open windows (the chat and
        its conversation) stay as they are."""
        return bridge.router.spawn(self._apply(bridge, config))

    async def _apply(self, bridge: Bridge, config: Config) -> None:
        router, tray = bridge.router, self.tray
        if config == self.config and config == router.config:
            return  # a save that changed nothing: nothing to take on
        endpoint_changed = config.server != self.config.server
        self.config = config
        router.reconfigure(config)
        if tray is not None:
            tray.take_config()
        if self.chat is not None:
            self.chat.take_config()
        if endpoint_changed and tray is not None:
            await self._stop_endpoint()
            await self._serve_endpoint(router, tray)
            if self.server is None and config.server.enabled and self.notice:
                bridge.error.emit(self.notice)  # the new port is taken: said, not only logged
            tray.refresh()
        await router.check_all()  # new addresses, a provider switched on: seen at once
        if tray is not None:
            tray.refresh()

    def _use_token(self, token: Secret) -> None:
        """A regenerated token, in use at once: the running endpoint checks it from the next
        request; Copy endpoint token gives it."""
        if self.server is not None:
            self.server.use_token(token)
            self.token = token.reveal()

    def _reload_config(self, bridge: Bridge) -> None:
        """The file as the first-run assistant left it, taken on in place."""
        try:
            config = load_config(str(self.config_path) if self.config_path else None)
        except ConfigError as exc:
            bridge.error.emit(f"The new settings were not taken on: {exc}")
            return
        self.apply_config(bridge, config)

    async def _native_notifications(self, tray: Tray) -> None:
        from desktop.notify import NativeNotifications

        native = NativeNotifications()
        if await native.available():
            self.native = native
            tray.use_native_notifications(native)

    def _report_at_start(self, tray: Tray, router: Router) -> None:
        """What the user should know from the start: a crash last time, a ledger that cannot
        record (paid providers are off until it can)."""
        from router import LedgerProblem

        self._report_previous_crash(tray)
        ledger = router.ledger
        if ledger is not None and ledger.problem:
            router.events.emit(LedgerProblem(ledger.problem))

    def _report_previous_crash(self, tray: Tray) -> None:
        """Once, at the first start after the app died: when, and where the details are."""
        from desktop.notify import Note
        from desktop.operations import crash_reported

        crash = self.previous_crash
        if crash is not None and not crash.notified:
            tray.notify(Note("crash", "exo-bridge", crash.message().split(" — ")[0],
                             f"Details in {crash.details}"))
            crash_reported()

    def _started(self, tray: Tray, bridge: Bridge | None = None,
                 statuses: Sequence[ProviderStatus] = ()) -> None:
        from router import needs_setup

        tray.starting = False
        tray.refresh()
        if bridge is not None and not self.quit_after_ready \
                and needs_setup(not self.config.source.startswith("<"), statuses):
            self._open_setup(bridge)  # a first run, or nothing usable and no key: help

    def _open_ledger(self) -> Ledger:
        from desktop.operations import open_ledger

        ledger = open_ledger()
        self.notice = ledger.notice or ledger.problem
        return ledger

    def _endpoint_url(self) -> str | None:
        return self.server.url if self.server is not None else None

    async def _serve_endpoint(self, router: Router, tray: Tray) -> None:
        from desktop.operations import endpoint_token, start_endpoint

        if not self.config.server.enabled:
            return
        try:
            token = await endpoint_token()
            server = await start_endpoint(router, token)
        except ExoBridgeError as exc:
            self.notice = f"Local endpoint off: {exc}"
            print(f"exo-bridge: {self.notice}", file=sys.stderr)
            return
        self.server, self.token = server, token.reveal()
        tray.refresh()

    async def _stop_endpoint(self) -> None:
        server, self.server, self.token = self.server, None, None
        if server is not None:
            await server.stop()
