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
from typing import Any

from router import load_config
from router.config import Config, data_dir
from router.errors import ConfigError, ExoBridgeError


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
    app.setQuitOnLastWindowClosed(False)  # closing a window must not stop the loop
    instance = SingleInstance()
    if instance.forward_to_running():
        print("Exo Bridge is already running; brought it forward.")
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
    from router import crashes

    desktop.previous_crash = crashes.detect()
    watch = crashes.CrashWatch("tray")
    watch.start()
    desktop.crash_watch = watch
    desktop.config_path = Path(args.config) if args.config else None
    try:
        code = int(run(desktop.run()))
    except Exception as exc:  # the last line of defence: logged, reported at the next start
        logging.getLogger(__name__).exception("the tray app stopped on an unexpected error")
        watch.crashed(f"{exc.__class__.__name__}: {exc}")
        print(f"exo-bridge: stopped on an unexpected error ({exc.__class__.__name__}); details in "
              f"{watch.directory / crashes.LOG_FILE}", file=sys.stderr)
        return 1
    desktop.dispose()
    watch.stop()
    if desktop.restart:  # new settings: start afresh on them
        os.execv(sys.executable, [sys.executable, "-m", "desktop.main", *argv])
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
    def __init__(self, config: Config, instance: object, *, quit_after_ready: bool = False):
        self.config = config
        self.instance = instance
        self.quit_after_ready = quit_after_ready
        self.quit = asyncio.Event()
        self.ready = asyncio.Event()
        self.router: object | None = None
        self.tray: object | None = None
        self.server: object | None = None
        self.token: str | None = None
        self.notice: str | None = None
        self.settings: object | None = None
        self.native: object | None = None
        self.chat: object | None = None
        self.costs: object | None = None
        self.restart = False
        self.config_path: Path | None = None
        self.previous_crash: object | None = None  # router.crashes.Crash, reported once
        self.crash_watch: object | None = None  # router.crashes.CrashWatch
        self.collector: object | None = None  # desktop.gc_policy.GuiThreadCollector

    async def run(self) -> int:
        from desktop.autostart import Autostart
        from desktop.bridge import Bridge
        from desktop.tray import Tray
        from router import Router
        from router.keychain_helper import read_in_helper
        from router.keys import KeyStore

        watch = self.crash_watch
        loop = asyncio.get_running_loop()
        if watch is not None:
            loop.set_exception_handler(watch.loop_exception)  # type: ignore[attr-defined]
        _quit_on_signals(loop, self.quit)
        ledger = self._open_ledger()
        try:  # keychain reads in a helper process: keyring's client would stay resident here
            async with Router(self.config, ledger=ledger,
                              keys=KeyStore(reader=read_in_helper)) as router:
                bridge = Bridge(router)
                if self.collector is not None:  # garbage of a request: collected in this thread
                    bridge.request_finished.connect(
                        lambda _event: self.collector.maybe_collect())  # type: ignore[union-attr]
                tray = Tray(bridge, endpoint_url=self._endpoint_url,
                            endpoint_token=lambda: self.token, autostart=Autostart())
                self.router, self.tray = router, tray  # for the end-to-end test
                tray.quit_requested.connect(self.quit.set)
                tray.settings_requested.connect(lambda: self._open_settings(bridge))
                tray.chat_requested.connect(lambda: self._open_chat(bridge))
                tray.costs_requested.connect(lambda: self._open_costs(bridge, ledger))
                self.instance.activated.connect(tray.bring_forward)  # type: ignore[attr-defined]
                tray.show()
                bridge.run(self._native_notifications(tray),
                           on_done=lambda _: self._report_at_start(tray, router))
                if watch is not None:
                    router.spawn(watch.beat())  # type: ignore[attr-defined]
                router.start_probes()
                checked = bridge.run(router.check_all(), on_done=lambda _: self._started(tray))
                print(f"ready in {process_age_ms():.0f} ms", flush=True)
                await self._serve_endpoint(router, tray)
                self.ready.set()
                if self.quit_after_ready:  # for benchmarks: when the HTTP stack was in use too
                    await asyncio.wait([checked])
                    print(f"exo-bridge: endpoint up and providers checked at "
                          f"{process_age_ms():.0f} ms", file=sys.stderr, flush=True)
                else:
                    await self.quit.wait()
                await self._stop_endpoint()
                close_native = getattr(self.native, "close", None)
                if close_native is not None:
                    await close_native()
                tray.close()
                bridge.close()
        finally:
            if ledger is not None:
                ledger.close()
        return 0

    def dispose(self) -> None:
        """Destroy the windows and the tray before the interpreter exits (Qt objects destroyed
        in an arbitrary order at exit can crash the process as it quits). Call it after the
        event loop has stopped."""
        import shiboken6

        owned = [self.settings, self.chat, self.costs, getattr(self.tray, "status_window", None),
                 getattr(self.tray, "menu", None), getattr(self.tray, "icon", None), self.tray]
        for item in owned:
            if item is not None and shiboken6.isValid(item):
                shiboken6.delete(item)

    def _open_settings(self, bridge: object) -> None:
        """One settings window, brought forward if already open; saving restarts the app so
        that the router, the endpoint and the tray all run on the new config."""
        from desktop.autostart import Autostart
        from desktop.settings_model import SettingsDocument
        from desktop.windows.settings import SettingsWindow

        if self.settings is None:
            document = SettingsDocument(self.config_path)
            self.settings = SettingsWindow(bridge, document, Autostart(),  # type: ignore[arg-type]
                                           endpoint_token=lambda: self.token)
            self.settings.saved.connect(self._restart)
        self.settings.show()
        self.settings.raise_()
        self.settings.activateWindow()

    def _open_chat(self, bridge: object) -> None:
        from desktop.windows.chat import ChatWindow

        if self.chat is None:
            self.chat = ChatWindow(bridge)  # type: ignore[arg-type]
        self.chat.open()

    def _open_costs(self, bridge: object, ledger: object | None) -> None:
        if ledger is None:
            print(f"exo-bridge: no cost graph without the usage ledger: {self.notice}",
                  file=sys.stderr)
            return
        if self.costs is None:
            from desktop.windows.costs import CostWindow  # imports pyqtgraph, only now

            self.costs = CostWindow(bridge, ledger)  # type: ignore[arg-type]
        self.costs.open()

    def _restart(self, _config: object) -> None:
        self.restart = True
        self.quit.set()

    async def _native_notifications(self, tray: object) -> None:
        from desktop.notify import NativeNotifications

        native = NativeNotifications()
        if await native.available():
            self.native = native
            tray.use_native_notifications(native)  # type: ignore[attr-defined]

    def _report_at_start(self, tray: object, router: object) -> None:
        """What the user should know from the start: a crash last time, a ledger that cannot
        record (paid providers are off until it can)."""
        from router.events import LedgerProblem

        self._report_previous_crash(tray)
        ledger = getattr(router, "ledger", None)
        if ledger is not None and ledger.problem:
            router.events.emit(LedgerProblem(ledger.problem))  # type: ignore[attr-defined]

    def _report_previous_crash(self, tray: object) -> None:
        """Once, at the first start after the app died: when, and where the details are."""
        from desktop.notify import Note
        from router import crashes

        crash = self.previous_crash
        if isinstance(crash, crashes.Crash) and not crash.notified:
            tray.notify(Note("crash", "exo-bridge", crash.message().split(" — ")[0],  # type: ignore[attr-defined]
                             f"Details in {crash.details}"))
            crashes.mark_notified()

    def _started(self, tray: object) -> None:
        tray.starting = False  # type: ignore[attr-defined]
        tray.refresh()  # type: ignore[attr-defined]

    def _open_ledger(self) -> object:
        """The usage ledger; one that cannot record still opens (exo answers, paid providers
        are off until it can, and the tray says why)."""
        from router.ledger import Ledger

        ledger = Ledger.in_dir(data_dir())
        self.notice = ledger.notice or ledger.problem
        return ledger

    def _endpoint_url(self) -> str | None:
        return getattr(self.server, "url", None)

    async def _serve_endpoint(self, router: object, tray: object) -> None:
        from router.keychain_helper import endpoint_token_in_helper
        from router.server import EndpointServer

        if not self.config.server.enabled:
            return
        try:
            token = await asyncio.to_thread(endpoint_token_in_helper)
            server = EndpointServer(router, token=token, host=self.config.server.host,  # type: ignore[arg-type]
                                    port=self.config.server.port)
            await server.start()
        except ExoBridgeError as exc:
            self.notice = f"Local endpoint off: {exc}"
            print(f"exo-bridge: {self.notice}", file=sys.stderr)
            return
        self.server, self.token = server, token.reveal()
        tray.refresh()  # type: ignore[attr-defined]

    async def _stop_endpoint(self) -> None:
        stop = getattr(self.server, "stop", None)
        if stop is not None:
            await stop(drain_s=2.0)
