"""The tray app, offscreen (pytest-qt): colours, tooltip, menu, notifications, single instance."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

pytest.importorskip("PySide6", reason="the desktop extra is not installed")

from PySide6.QtGui import QColor

from desktop.autostart import Autostart
from desktop.icons import COLOURS, dot_pixmap
from desktop.notify import Debouncer, Note, note_for
from desktop.status_model import Light, tray_view
from router import (
    BudgetAlert,
    BudgetLevel,
    Failover,
    HealthChanged,
    HealthState,
    Outcome,
    ProviderStatus,
    Role,
    Router,
)
from tests.conftest import OR_KEY, subprocess_env

ASK = {"model": "llama-3.2-3b", "messages": [{"role": "user", "content": "hi"}]}


def status(pid: str, state: str, *, requests: int = 0, limit: int | None = None,
           cost: float = 0.0, progress: float | None = None, detail: str = "") -> ProviderStatus:
    names = {"exo": "Exo Local", "openrouter": "OpenRouter", "huggingface": "Hugging Face"}
    role = Role.LOCAL if pid == "exo" else Role.CLOUD
    return ProviderStatus(pid, names[pid], role, HealthState(state), detail, 1.0, progress,
                          pid != "exo", requests, 0, cost,
                          {"requests": limit, "tokens": None, "cost_usd": None},
                          answered_today=requests)


@pytest.mark.parametrize(("states", "light", "tooltip"), [
    (("healthy", "healthy", "no-key"), Light.GREEN, "Exo Local serving · $0.03 today"),
    (("down", "healthy", "no-key"), Light.YELLOW, "Exo offline — using OpenRouter · $0.03 today"),
    (("busy", "no-key", "healthy"), Light.YELLOW, "Exo busy — using Hugging Face · $0.03 today"),
    (("down", "down", "no-key"), Light.RED, "Exo offline — no provider can answer · $0.03 today"),
])
def test_tray_view_light_and_tooltip(states, light, tooltip):
    view = tray_view([status("exo", states[0]), status("openrouter", states[1], cost=0.03),
                      status("huggingface", states[2])])
    assert (view.light, view.tooltip) == (light, tooltip)


def test_budget_above_80_percent_is_yellow_and_menu_lines():
    view = tray_view([status("exo", "healthy", requests=3, progress=43.0),
                      status("openrouter", "healthy", requests=850, limit=1000, cost=1.5)])
    assert view.light is Light.YELLOW and "above 80%" in view.tooltip
    assert view.lines == ("Exo Local · 3 requests · free today · downloading 43%",
                          "OpenRouter · 850 requests · limit 850 of 1,000 calls · $1.50 today")


def test_paused_and_starting_are_grey():
    statuses = [status("exo", "healthy"), status("openrouter", "healthy")]
    assert tray_view(statuses, paused=True).light is Light.GREY
    assert "paused" in tray_view(statuses, paused=True).tooltip
    assert tray_view([], starting=True).light is Light.GREY


@pytest.mark.parametrize("light", list(Light))
def test_dot_colour_and_outline(qapp, light):
    image = dot_pixmap(light, 64).toImage()
    assert image.pixelColor(32, 32).name() == QColor(COLOURS[light]).name()
    edge = image.pixelColor(6, 32)  # on the dark outline: contrast on a light panel
    assert edge.lightness() < 80 and edge.alpha() > 200
    assert image.pixelColor(0, 0).alpha() == 0


def test_debouncer_one_per_provider_per_minute_then_a_summary():
    now = [0.0]
    debouncer = Debouncer(clock=lambda: now[0])
    shown = []
    for i in range(10):  # exo flaps every 3 s
        note = Note("failover" if i % 2 == 0 else "failback", "exo", f"t{i}", f"b{i}")
        if debouncer.offer(note):
            shown.append(note)
        now[0] += 3
    assert [n.title for n in shown] == ["t0"]
    assert debouncer.due_summaries() == []
    now[0] = 61
    [summary] = debouncer.due_summaries()
    assert "9 changes" in summary.body and summary.body.endswith("b9")
    assert debouncer.offer(Note("failover", "openrouter", "other provider", "")) is True


def _reachability(old: HealthState, new: HealthState, detail: str = "") -> HealthChanged:
    return HealthChanged("exo", old, new, detail, new is HealthState.HEALTHY
                         and old is not HealthState.UNKNOWN, Role.LOCAL)


def test_exo_going_offline_and_back_is_said_at_once_each_change_once():
    """Issue 27: "exo went offline" when the prober sees it, "exo is back" when it answers again
    (not 46 s later as "1 changes in the last minute"); a failover after "went offline" adds
    nothing; a storm becomes one note of where it ended, or none if it ended where it began."""
    names = {"exo": "Exo Local", "openrouter": "OpenRouter"}
    now = [0.0]
    debouncer = Debouncer(clock=lambda: now[0])

    def said(event: object) -> str | None:
        note = note_for(event, names)
        return note.title if note is not None and debouncer.offer(note) else None

    offline = said(_reachability(HealthState.HEALTHY, HealthState.DOWN, "connection refused"))
    assert offline == "Exo Local went offline"
    note = note_for(_reachability(HealthState.HEALTHY, HealthState.DOWN, "connection refused"), names)
    assert note is not None and note.body.startswith("Connection refused. Requests go to your other")
    now[0] += 1
    assert said(Failover("r", "exo", "openrouter", Outcome.REFUSED)) is None  # already said
    now[0] += 2
    assert said(_reachability(HealthState.DOWN, HealthState.DEGRADED)) == "Exo Local is back"
    now[0] += 1
    assert said(_reachability(HealthState.DEGRADED, HealthState.HEALTHY)) == \
        "Exo Local is back — requests are free again"
    assert debouncer.due_summaries() == []
    for _ in range(6):  # then it flaps: held, and it ends where it was
        now[0] += 2
        assert said(_reachability(HealthState.HEALTHY, HealthState.DOWN)) is None
        now[0] += 2
        assert said(_reachability(HealthState.DOWN, HealthState.HEALTHY)) is None
    now[0] += 61
    assert debouncer.due_summaries() == []  # it ended as it was said last: nothing to say
    now[0] += 1
    assert said(_reachability(HealthState.HEALTHY, HealthState.DOWN)) == "Exo Local went offline"


def test_a_storm_that_ends_elsewhere_is_said_once_in_words():
    now = [0.0]
    debouncer = Debouncer(clock=lambda: now[0])
    names = {"exo": "Exo Local"}
    events = [_reachability(HealthState.HEALTHY, HealthState.DOWN),
              _reachability(HealthState.DOWN, HealthState.HEALTHY)] * 4
    shown = []
    for event in events:  # it ends back (the last said: offline)
        note = note_for(event, names)
        if note is not None and debouncer.offer(note):
            shown.append(note.title)
        now[0] += 1
    assert shown == ["Exo Local went offline", "Exo Local is back — requests are free again",
                     "Exo Local went offline"]
    now[0] = 70
    [summary] = debouncer.due_summaries()
    assert summary.title == "Exo Local is back — requests are free again"  # where it ended
    assert "changes in the last minute" not in summary.body
    assert "went offline and came back several times" in summary.body
    assert debouncer.due_summaries() == []


def test_a_failover_for_a_model_does_not_hide_exo_going_offline_and_nothing_is_held_for_ever():
    names = {"exo": "Exo Local", "openrouter": "OpenRouter", "huggingface": "Hugging Face"}
    now = [0.0]
    debouncer = Debouncer(clock=lambda: now[0])

    def said(event: object) -> str | None:
        note = note_for(event, names)
        return note.title if note is not None and debouncer.offer(note) else None

    assert said(Failover("r", "exo", "openrouter", Outcome.MODEL_UNAVAILABLE)) == \
        "Exo Local model-unavailable — failing over to OpenRouter"
    now[0] += 5
    assert said(_reachability(HealthState.DEGRADED, HealthState.DOWN)) == "Exo Local went offline"
    outage = Failover("r", "openrouter", "huggingface", Outcome.SERVER_ERROR)
    assert said(outage) == "OpenRouter server-error — failing over to Hugging Face"
    now[0] += 30
    assert said(outage) is None  # the same change, within the minute
    now[0] += 31
    assert said(outage) == "OpenRouter server-error — failing over to Hugging Face"  # a reminder


def test_notification_kinds_can_be_turned_off():
    debouncer = Debouncer()
    debouncer.enabled["budget"] = False
    assert not debouncer.offer(Note("budget", "openrouter", "x", "y"))
    assert debouncer.offer(Note("failover", "exo", "x", "y"))


def test_note_texts():
    names = {"exo": "Exo Local", "openrouter": "OpenRouter"}
    assert note_for(Failover("r", "exo", "openrouter", Outcome.REFUSED), names).title == \
        "Exo Local offline — failing over to OpenRouter"
    assert note_for(HealthChanged("exo", HealthState.DOWN, HealthState.HEALTHY, "", True,
                                  Role.LOCAL), names).title == \
        "Exo Local is back — requests are free again"
    assert note_for(BudgetAlert("openrouter", BudgetLevel.NEARLY, "d"), names).title == \
        "OpenRouter budget at 80%"
    assert note_for(HealthChanged("openrouter", HealthState.HEALTHY, HealthState.DOWN, "invalid key",
                                  False, Role.CLOUD, invalid_key=True), names).kind == \
        "invalid-key"


def test_autostart_entry_written_and_removed(tmp_path):
    autostart = Autostart(tmp_path)
    assert not autostart.enabled()
    autostart.set_enabled(True)
    text = (tmp_path / "exo-bridge.desktop").read_text()
    assert autostart.enabled() and "Exec=" in text and "[Desktop Entry]" in text
    autostart.set_enabled(False)
    assert not autostart.enabled() and not (tmp_path / "exo-bridge.desktop").exists()


@pytest.fixture
def tray_for(qapp, tmp_path):
    from desktop.bridge import Bridge
    from desktop.tray import Tray

    made = []

    def build(router: Router):
        tray = Tray(Bridge(router), endpoint_url=lambda: "http://127.0.0.1:8741/v1",
                    endpoint_token=lambda: "tok", autostart=Autostart(tmp_path))
        tray.starting = False
        made.append(tray)
        return tray
    yield build
    for tray in made:
        tray.timer.stop()
        tray.icon.hide()
        if tray.status_window is not None:
            tray.status_window.deleteLater()
        tray.menu.deleteLater()
        tray.deleteLater()
    qapp.processEvents()


async def test_failover_turns_yellow_with_one_notification_then_back_to_green(tray_for, make_config, exo,
                                                                           keys_in_env):
    config, _ = make_config()
    async with Router(config) as router:
        tray = tray_for(router)
        await router.check_all()
        tray.show()
        assert tray.view.light is Light.GREEN
        assert tray._provider_actions[0].text().startswith("Exo Local · ")
        assert tray._shown_rows[0].light is Light.GREEN
        exo.stop()
        for _ in range(3):
            await router.chat(ASK)
        assert tray.view.light is Light.YELLOW
        assert tray.view.tooltip.startswith("Exo offline — using OpenRouter")
        assert [n.kind for n in tray.shown_notes] == ["failover"]  # three failovers, one note
        exo.start()
        await router.probe(config.provider("exo"))
        assert tray.view.light is Light.GREEN


def test_no_tray_shows_the_status_window(tray_for, make_config):
    from PySide6.QtWidgets import QSystemTrayIcon

    config, _ = make_config()
    router = Router(config)
    tray = tray_for(router)
    tray.show()
    assert not QSystemTrayIcon.isSystemTrayAvailable()  # offscreen has none
    assert tray.status_window is not None and tray.status_window.isVisible()
    assert "Exo Local" in tray.status_window.rows[0][1].text()
    tray.status_window.close()


def test_pause_toggle_makes_the_router_local_only(tray_for, make_config):
    config, _ = make_config()
    router = Router(config)
    tray = tray_for(router)
    tray.pause.setChecked(True)
    assert router.local_only and tray.view.light is Light.GREY


def test_second_instance_forwards_to_the_first(qapp, qtbot):
    from desktop.single_instance import SingleInstance

    first = SingleInstance(f"exo-bridge-test-{os.getpid()}")
    assert first.listen()
    second = SingleInstance(first.name)
    with qtbot.waitSignal(first.activated, timeout=3000):
        assert second.forward_to_running()


def _app(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    exe = str(Path(sys.executable).with_name("exo-bridge"))
    return subprocess.Popen([exe, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def test_quit_after_ready_and_single_instance(make_config, tmp_path):
    _, path = make_config()
    env = subprocess_env(QT_QPA_PLATFORM="offscreen", EXO_BRIDGE_TOKEN="t" * 32,
                         OPENROUTER_API_KEY=OR_KEY, XDG_RUNTIME_DIR=str(tmp_path),
                         TMPDIR=str(tmp_path))
    done = _app("--quit-after-ready", "--config", str(path), env=env)
    out, err = done.communicate(timeout=60)
    assert done.returncode == 0, err
    assert out.startswith("ready in ") and out.strip().endswith(" ms")
    port_free = {"EXO_BRIDGE_CONFIG": str(path)}
    first = _app("--config", str(path), env={**env, **port_free})
    try:
        assert first.stdout is not None
        assert first.stdout.readline().startswith("ready in")
        second = _app("--config", str(path), env=env)
        out, _ = second.communicate(timeout=30)
        assert second.returncode == 0 and "already running" in out
    finally:
        first.terminate()
        first.wait(10)


@pytest.fixture
async def session_bus(monkeypatch):
    import shutil

    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon is not installed (Debian package dbus)")
    from tests.fakes.notifications import serve_fake, start_session_bus

    proc, address = start_session_bus()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
    bus, service = await serve_fake(address)
    yield service
    bus.disconnect()
    await bus.wait_for_disconnect()
    proc.terminate()
    proc.wait(5)


async def test_notifications_reach_the_desktop_service(session_bus, tray_for, make_config, exo,
                                                       keys_in_env):
    import asyncio

    from desktop.notify import NativeNotifications

    native = NativeNotifications()
    assert await native.available()
    config, _ = make_config()
    async with Router(config) as router:
        tray = tray_for(router)
        tray.use_native_notifications(native)
        exo.stop()
        await router.chat(ASK)
        for _ in range(50):
            if session_bus.received:
                break
            await asyncio.sleep(0.05)
    assert session_bus.received == [("Exo Bridge", "Exo Local offline — failing over to OpenRouter",
                                     "Requests now go to OpenRouter (paid cloud usage is recorded).")]
    # our icon, not desktop-notifier's default (Python's logo)
    from desktop.icons import app_icon_path

    assert session_bus.icons == [app_icon_path().as_uri()]
    assert app_icon_path().read_text().startswith("<svg") and "python" not in session_bus.icons[0]


async def test_no_notification_service_means_the_tray_balloon(monkeypatch):
    from desktop.notify import NativeNotifications

    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    assert not await NativeNotifications().available()


async def test_real_app_turns_yellow_notifies_once_and_fails_back(qapp, session_bus, make_config, exo,
                                                                   keys_in_env, monkeypatch, tmp_path):
    """The whole app object graph (router, endpoint, tray, bridge, native notifications) against
    the fake providers and a fake notification service."""
    import asyncio

    import httpx

    from desktop.app import DesktopApp
    from desktop.single_instance import SingleInstance

    monkeypatch.setenv("EXO_BRIDGE_TOKEN", "e2e-token-" + "x" * 20)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    config, _ = make_config(extra="\n[server]\nport = 0\n")
    app = DesktopApp(config, SingleInstance(f"exo-bridge-e2e-{os.getpid()}"))
    running = asyncio.ensure_future(app.run())
    await asyncio.wait_for(app.ready.wait(), 20)
    try:
        for _ in range(100):  # the first checks of every provider
            if not app.tray.starting:
                break
            await asyncio.sleep(0.05)
        assert app.tray.view.light is Light.GREEN
        exo.stop()
        async with httpx.AsyncClient() as http:
            for _ in range(3):
                response = await http.post(f"{app.server.url}/chat/completions",
                                           headers={"Authorization": "Bearer e2e-token-" + "x" * 20},
                                           json=ASK)
                assert response.headers["x-exo-bridge-provider"] == "openrouter"
        assert app.tray.view.light is Light.YELLOW
        for _ in range(50):
            if session_bus.received:
                break
            await asyncio.sleep(0.05)
        [(_, offline, _)] = session_bus.received  # three failovers, one note
        assert offline in ("Exo Local went offline", "Exo Local offline — failing over to OpenRouter")
        exo.start()
        await app.router.probe(config.provider("exo"))  # the next 5-second probe, at once
        assert app.tray.view.light is Light.GREEN
        for _ in range(50):  # fail-back is said at once (issue 27: it came 46 s late)
            if len(session_bus.received) > 1:
                break
            await asyncio.sleep(0.05)
        assert [summary for _, summary, _ in session_bus.received[1:]] == [
            "Exo Local is back — requests are free again"]
    finally:
        app.quit.set()
        await asyncio.wait_for(running, 20)
        if app.tray is not None:  # its timer would tick on (notification summaries) after the test
            app.tray.timer.stop()


def test_missing_x11_libraries_are_named_instead_of_a_qt_abort(monkeypatch):
    import ctypes.util

    from desktop import app

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None if name == "xcb-cursor" else "x")
    assert app.missing_x11_libraries({"DISPLAY": ":0"}) == ["libxcb-cursor0"]
    assert app.missing_x11_libraries({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}) == []
    assert app.missing_x11_libraries({"WAYLAND_DISPLAY": "wayland-0"}) == []
    monkeypatch.setattr(app, "missing_x11_libraries", lambda: ["libxcb-cursor0"])
    assert app.run_app([]) == 2


def test_no_graphical_session_is_a_clear_message(monkeypatch, capsys):
    from desktop import app

    monkeypatch.setattr(sys, "platform", "linux")
    assert app.no_display({}) is True
    assert app.no_display({"DISPLAY": ":0"}) is False
    assert app.no_display({"QT_QPA_PLATFORM": "offscreen"}) is False
    monkeypatch.setattr(app, "no_display", lambda: True)
    assert app.run_app([]) == 2
    assert "exo-bridge serve" in capsys.readouterr().err


async def test_a_ledger_writer_that_keeps_failing_shows_in_the_tray(tray_for, make_config, exo,
                                                                    tmp_path, monkeypatch):
    """Issue 25: the writer's failure reaches the tray through the one bridge (a note, a menu
    line, yellow); the line goes when it records again."""
    import asyncio

    from router.ledger import ledger as ledger_module
    from router.ledger import store as ledger_store
    from router.ledger.ledger import Ledger

    monkeypatch.setattr(ledger_module, "_FAULT_BACKOFF_S", (0.01, 0.05))
    real_insert = ledger_store.insert
    broken = [True]

    def insert(*args, **kw):
        if broken[0]:
            raise RuntimeError("injected fault")
        return real_insert(*args, **kw)

    monkeypatch.setattr(ledger_store, "insert", insert)
    config, _ = make_config()
    ledger = Ledger.in_dir(tmp_path / "data")
    try:
        async with Router(config, ledger=ledger) as router:
            tray = tray_for(router)
            tray.show()
            await router.chat(ASK)
            for _ in range(300):
                if [n.kind for n in tray.shown_notes] == ["ledger"]:
                    break
                await asyncio.sleep(0.02)
            tray.refresh()
            assert [n.kind for n in tray.shown_notes] == ["ledger"]
            assert "writer keeps failing" in tray.shown_notes[0].body
            assert any(line.startswith("Usage ledger: cannot record — the usage ledger's writer")
                       for line in tray.view.lines)
            assert tray.view.light is Light.YELLOW
            broken[0] = False
            for _ in range(300):
                if ledger.can_record:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0)  # the event comes through the loop
            tray.refresh()
            assert not any(line.startswith("Usage ledger") for line in tray.view.lines)
    finally:
        ledger.close()


async def test_a_second_launch_shows_a_window_for_real(qapp, qtbot, make_config, tmp_path,
                                                      monkeypatch):
    """The app running with a tray, minimised chat and all; a second launch asks it to come
    forward: the chat window (what the icon opens) is on screen, not minimised, active. With no
    tray: the status window."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QSystemTrayIcon

    from desktop.app import DesktopApp
    from desktop.bridge import Bridge
    from desktop.single_instance import SingleInstance
    from router.ledger.ledger import Ledger

    config, _ = make_config()
    instance = SingleInstance(f"exo-bridge-test-forward-{os.getpid()}")
    assert instance.listen()
    ledger = Ledger.in_dir(tmp_path)
    async with Router(config, ledger=ledger) as router:
        desktop = DesktopApp(config, instance)
        bridge = Bridge(router)
        tray = desktop._make_tray(bridge, ledger)
        desktop.tray = tray
        try:
            monkeypatch.setattr(QSystemTrayIcon, "isSystemTrayAvailable", staticmethod(lambda: True))
            second = SingleInstance(instance.name)
            assert second.forward_to_running()
            qtbot.waitUntil(lambda: desktop.chat is not None and desktop.chat.isVisible())
            chat = desktop.chat
            chat.showMinimized()
            assert second.forward_to_running()
            qtbot.waitUntil(lambda: not chat.windowState() & Qt.WindowState.WindowMinimized)
            assert chat.isVisible() and tray.status_window is None
            monkeypatch.setattr(QSystemTrayIcon, "isSystemTrayAvailable", staticmethod(lambda: False))
            assert second.forward_to_running()
            qtbot.waitUntil(lambda: tray.status_window is not None and tray.status_window.isVisible())
        finally:
            tray.close()
            desktop.dispose()
            bridge.close()
    ledger.close()
