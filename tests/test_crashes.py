"""When the app dies anyway: the crash log, the report at the next start, `status`, no secrets."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from router import crashes
from router.processes import process_start
from router.redact import MASK
from tests.conftest import OR_KEY, subprocess_env, unused_port

EXE = str(Path(sys.executable).with_name("exo-bridge"))


def _wait_for(predicate, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def _serve(config: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen([EXE, "serve", "--config", str(config), "--port", str(unused_port())],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    assert "serving" in proc.stderr.readline()
    return proc


def _status(config: Path, env: dict[str, str]) -> dict:
    done = subprocess.run([EXE, "status", "--json", "--config", str(config)], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def serve_env(make_config, tmp_path):
    _, path = make_config()
    env = subprocess_env(EXO_BRIDGE_TOKEN="t" * 32, OPENROUTER_API_KEY=OR_KEY)
    return path, env, tmp_path / "state"


def test_a_clean_stop_is_no_crash(serve_env):
    config, env, state = serve_env
    proc = _serve(config, env)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert _status(config, env)["last_crash"] is None
    assert not list((state / "sessions").glob("*.json"))


def test_a_fatal_error_is_written_by_faulthandler_and_shown_by_status(serve_env):
    config, env, state = serve_env
    proc = _serve(config, env)
    proc.send_signal(signal.SIGSEGV)  # what a C extension's refcount bug ends in
    proc.wait(20)
    crash = _status(config, env)["last_crash"]
    assert crash["kind"] == "serve"
    assert crash["summary"].startswith("Fatal Python error: Segmentation fault")
    assert crash["details"] == str(state / "crash-serve.log")
    text = (state / "crash-serve.log").read_text()
    assert f"pid {proc.pid} started" in text and "most recent call first" in text


def test_a_killed_process_is_reported_with_when_it_was_last_seen(serve_env):
    config, env, state = serve_env
    proc = _serve(config, env)
    before = time.time()
    proc.kill()
    proc.wait(10)
    crash = _status(config, env)["last_crash"]
    assert "without a word" in crash["summary"]
    seen = datetime.fromisoformat(crash["at"]).timestamp()
    assert before - 120 < seen <= before + 1  # the last heartbeat: at start, a minute at most
    plain = subprocess.run([EXE, "status", "--config", str(config)], capture_output=True, text=True,
                           env=env, timeout=60)
    assert "last crash: the serve app" in plain.stdout


def test_the_tray_reports_the_previous_crash_once(make_config, tmp_path):
    """A tray killed with -9; the next start notifies once (marked in last-crash.json)."""
    _, config = make_config(extra="\n[server]\nport = 0\n")
    env = subprocess_env(QT_QPA_PLATFORM="offscreen", EXO_BRIDGE_TOKEN="t" * 32,
                         OPENROUTER_API_KEY=OR_KEY, XDG_RUNTIME_DIR=str(tmp_path),
                         TMPDIR=str(tmp_path))
    state = tmp_path / "state"
    first = subprocess.Popen([EXE, "--config", str(config)], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, env=env)
    assert first.stdout is not None and first.stdout.readline().startswith("ready in")
    first.kill()
    first.wait(10)
    second = subprocess.Popen([EXE, "--config", str(config)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert second.stdout is not None and second.stdout.readline().startswith("ready in")
        last = state / crashes.LAST_CRASH
        _wait_for(lambda: last.exists() and json.loads(last.read_text())["notified"])
        assert json.loads(last.read_text())["pid"] == first.pid
    finally:
        second.send_signal(signal.SIGTERM)  # a logout: a clean exit, not a crash
        assert second.wait(20) == 0
    assert not list((state / "sessions").glob("*.json"))
    assert crashes.detect(state).pid == first.pid  # still the last crash, not a new one


def test_the_notification_says_when_and_where(tmp_path):
    from desktop.app import DesktopApp

    crash = crashes.Crash("tray", 4242, time.mktime((2026, 11, 30, 14, 2, 0, 0, 0, -1)),
                          "Fatal Python error: none_dealloc", str(tmp_path / "crash-tray.log"))
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / crashes.LAST_CRASH).write_text(json.dumps(crash.as_dict()))

    class Tray:
        def __init__(self):
            self.notes = []

        def notify(self, note):
            self.notes.append(note)

    app = DesktopApp.__new__(DesktopApp)
    app.previous_crash = crash
    tray = Tray()
    app._report_previous_crash(tray)
    [note] = tray.notes
    assert note.kind == "crash"
    assert note.title == "Exo Bridge quit unexpectedly at 14:02"
    assert note.body == f"Details in {tmp_path / 'crash-tray.log'}"
    assert crashes.last_crash().notified
    app.previous_crash = crashes.last_crash()
    app._report_previous_crash(tray)
    assert len(tray.notes) == 1  # once


def test_unhandled_exceptions_are_logged_without_secrets(tmp_path):
    watch = crashes.CrashWatch("serve", tmp_path)
    watch.start()
    try:
        def leak() -> None:
            raise RuntimeError(f"upstream said: Authorization: Bearer {OR_KEY}")

        thread = threading.Thread(target=leak, name="worker")
        thread.start()
        thread.join()
        logging.getLogger("x").error("key %s in a message", OR_KEY)
    finally:
        watch.stop()
    text = (tmp_path / crashes.LOG_FILE).read_text()
    assert "unhandled exception in thread worker" in text and "RuntimeError" in text
    assert OR_KEY not in text and "0123456789abcdef" not in text
    assert text.count(MASK) >= 2  # the message, and the traceback's source line and text


def test_a_reused_pid_is_not_taken_for_the_crashed_process(tmp_path):
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    (sessions / "1.json").write_text(json.dumps({"kind": "tray", "pid": os.getpid(),
                                                 "started": 0, "process_start": -1}))
    assert crashes.detect(tmp_path).pid == os.getpid()  # alive, but another process
    (sessions / "2.json").write_text(json.dumps({"kind": "tray", "pid": os.getpid(), "started": 0,
                                                 "process_start": process_start(os.getpid())}))
    crashes.detect(tmp_path)
    assert (sessions / "2.json").exists()  # this very process: alive, no crash
    (sessions / "3.json").write_text("{not json")
    crashes.detect(tmp_path)
    assert not (sessions / "3.json").exists()


def test_an_unwritable_state_dir_never_stops_the_app(tmp_path):
    blocked = tmp_path / "state"
    blocked.write_text("a file where the directory should be")
    watch = crashes.CrashWatch("serve", blocked)
    watch.start()  # warns, reports nothing, raises nothing
    watch.heartbeat()
    watch.stop()
    assert crashes.detect(blocked) is None
