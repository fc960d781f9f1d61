"""One ledger, many processes (issue 12): the tray or `serve` and any number of `ask` share a
data dir; nothing delivered is lost under kill -9 and daily limits hold across all of them.
And a ledger that cannot record (read-only, full disk) closes paid providers, not exo."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from router.cli.main import EXIT_UNANSWERED
from router.ledger.ledger import Ledger
from tests.conftest import OR_KEY, config_text, subprocess_env, unused_port

ROOT = Path(__file__).resolve().parent.parent
EXE = str(Path(sys.executable).with_name("exo-bridge"))
TOKEN = "t" * 32
ASK = {"model": "llama-3.2-3b", "messages": [{"role": "user", "content": "hi"}]}


def load_process(config: Path, data: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.fakes.ledger_load", str(config), str(data)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env=subprocess_env(OPENROUTER_API_KEY=OR_KEY))


def delivered_ids(ledger_dir: Path) -> list[str]:
    ledger = Ledger.in_dir(ledger_dir)  # replays what killed processes journaled
    try:
        ledger.flush()
        return [r[0] for r in ledger.query("SELECT request_id FROM attempts WHERE outcome = 'ok'")]
    finally:
        ledger.close()


@pytest.mark.parametrize("processes", [2, 3])
def test_kill_9_of_processes_sharing_a_data_dir_loses_no_row(make_config, tmp_path, exo, processes):
    _, config = make_config()
    data = tmp_path / "shared"
    delivered: list[str] = []
    for _round in range(3):
        procs = [load_process(config, data) for _ in range(processes)]
        for proc in procs:
            assert proc.stdout is not None
            for _ in range(150):
                line = proc.stdout.readline()
                assert line, "a load process died"
                delivered.append(line.strip())
        for proc in procs:
            os.kill(proc.pid, signal.SIGKILL)
        for proc in procs:
            assert proc.stdout is not None
            delivered += [line.strip() for line in proc.stdout.read().splitlines() if line.strip()]
            proc.wait(10)
    stored = delivered_ids(data)
    assert set(delivered) <= set(stored)  # 45 of 9,280 and 174 of 13,819 were missing before
    assert len(stored) == len(set(stored))  # nothing counted twice


class Serve:
    def __init__(self, config: Path, data: Path, **env: str):
        self.port = unused_port()
        self.proc = subprocess.Popen(
            [EXE, "serve", "--config", str(config), "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env=subprocess_env(EXO_BRIDGE_DATA_DIR=str(data), EXO_BRIDGE_TOKEN=TOKEN,
                               OPENROUTER_API_KEY=OR_KEY, **env))
        assert self.proc.stderr is not None
        self.said: list[str] = []  # what it said at start
        while "serving" not in (line := self.proc.stderr.readline()):
            assert line, "serve did not start"
            self.said.append(line)
        self.url = f"http://127.0.0.1:{self.port}"

    def chat(self, request: dict | None = None) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/chat/completions", json=request or ASK, timeout=30,
                          headers={"Authorization": f"Bearer {TOKEN}"})

    def health(self) -> dict:
        return httpx.get(f"{self.url}/health", timeout=10).json()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(20)


@pytest.fixture
def limited_config(exo, openrouter, hf, tmp_path):
    text = config_text([exo.origin], openrouter.base_url, hf.base_url).replace(
        "daily_request_limit = 1000", "daily_request_limit = 10")
    path = tmp_path / "limited.toml"
    path.write_text(text)
    return path


def limit_of(exo, openrouter, hf, tmp_path: Path, limit: int, **kw: str) -> Path:
    text = config_text([exo.origin], openrouter.base_url, hf.base_url, **kw).replace(
        "daily_request_limit = 1000", f"daily_request_limit = {limit}")
    path = tmp_path / f"limit-{limit}.toml"
    path.write_text(text)
    return path


def ask_killed_mid_answer(config: Path, data: Path, openrouter, signum: int) -> int:
    """One `ask`, sent ``signum`` as soon as the provider has its request; its exit status."""
    before = len(openrouter.chat_requests)
    ask = subprocess.Popen([EXE, "ask", "hi", "--config", str(config)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=subprocess_env(
                               EXO_BRIDGE_DATA_DIR=str(data), OPENROUTER_API_KEY=OR_KEY))
    deadline = time.monotonic() + 30
    while len(openrouter.chat_requests) == before and ask.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.005)
    if ask.poll() is None:
        ask.send_signal(signum)
    return ask.wait(30)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL],
                         ids=["SIGTERM", "SIGHUP", "SIGKILL"])
def test_asks_killed_mid_answer_still_count_against_the_limit(exo, openrouter, hf, tmp_path,
                                                              signum):
    exo.stop()
    hf.stop()
    openrouter.chunk_delay_s = 0.5  # each answer is still streaming when its ask is killed
    config, data = limit_of(exo, openrouter, hf, tmp_path, 5), tmp_path / "shared"
    codes = [ask_killed_mid_answer(config, data, openrouter, signum) for _ in range(8)]
    assert len(openrouter.chat_requests) == 5  # 8 before: the next ask released a dead one's hold
    assert codes[5:] == [EXIT_UNANSWERED] * 3  # refused: over the day's limit
    ledger = Ledger.in_dir(data)
    try:
        ledger.flush()
        rows = ledger.query("SELECT outcome FROM attempts WHERE provider = 'openrouter' "
                             "AND called = 1")
        held = ledger.query("SELECT count(*) FROM reservations")[0][0]
    finally:
        ledger.close()
    status = subprocess.run([EXE, "status", "--json", "--config", str(config)], text=True,
                            capture_output=True, env=subprocess_env(
                                EXO_BRIDGE_DATA_DIR=str(data), OPENROUTER_API_KEY=OR_KEY))
    shown = {p["id"]: p for p in json.loads(status.stdout)["providers"]}["openrouter"]
    assert shown["detail"].startswith("over budget: requests 5/5")  # as the limit sees it
    if signum == signal.SIGKILL:  # nothing could be recorded: the holds count all day
        assert (rows, held) == ([], 5)
    else:  # stopped as Ctrl-C stops it: the cut answer is recorded, the hold replaced
        assert codes[:5] == [128 + signum] * 5
        assert ([r[0] for r in rows], held) == (["cancelled"] * 5, 0)


def test_two_serves_never_overshoot_a_daily_limit(limited_config, tmp_path, exo, openrouter, hf):
    exo.stop()
    hf.stop()
    openrouter.chunk_delay_s = 0.02  # keep them in flight together
    data = tmp_path / "shared"
    serves = [Serve(limited_config, data), Serve(limited_config, data)]
    try:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda i: serves[i % 2].chat().status_code, range(30)))
    finally:
        for serve in serves:
            serve.stop()
    assert len(openrouter.chat_requests) == 10  # 20 before
    assert answers.count(200) == 10


def test_serve_and_concurrent_asks_share_the_limit(limited_config, tmp_path, exo, openrouter, hf):
    exo.stop()
    hf.stop()
    openrouter.chunk_delay_s = 0.4  # the serve's answers are still streaming when the asks start
    data = tmp_path / "shared"
    serve = Serve(limited_config, data)
    env = subprocess_env(EXO_BRIDGE_DATA_DIR=str(data), OPENROUTER_API_KEY=OR_KEY)
    try:
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            answers = [pool.submit(serve.chat) for _ in range(12)]
            time.sleep(0.3)
            asks = [subprocess.Popen([EXE, "ask", "hi", "--config", str(limited_config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
                    for _ in range(5)]
            for ask in asks:
                ask.wait(60)
            [a.result() for a in answers]
    finally:
        serve.stop()
    assert len(openrouter.chat_requests) == 10  # 15 before


# -- a ledger that cannot record -------------------------------------------------------------
@contextlib.contextmanager
def mounted_tmpfs(path: Path, options: str):
    """A small filesystem of our own (root only): full or read-only on demand."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a test filesystem needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a test filesystem here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_read_only_data_dir_closes_paid_providers_not_exo(limited_config, tmp_path, exo, openrouter):
    with mounted_tmpfs(tmp_path / "ro", "ro,size=1m") as data:
        serve = Serve(limited_config, data)
        try:
            assert serve.chat().headers["x-exo-bridge-provider"] == "exo"
            health = serve.health()
            assert health["status"] == "degraded" and not health["ledger"]["can_record"]
            assert str(data) in health["ledger"]["problem"]
            assert "writable" in health["ledger"]["problem"]  # the fix
            exo.stop()
            refused = serve.chat()
            assert refused.status_code in (429, 503)
            assert "openrouter:not-allowed" in refused.headers["x-exo-bridge-attempts"]
            assert openrouter.chat_requests == []  # 3 got through before, limit already used
        finally:
            serve.stop()
        status = subprocess.run([EXE, "status", "--config", str(limited_config)], text=True,
                                capture_output=True, env=subprocess_env(
                                    EXO_BRIDGE_DATA_DIR=str(data), OPENROUTER_API_KEY=OR_KEY))
        assert "usage ledger: cannot record" in status.stdout


def test_a_data_dir_remounted_read_only_keeps_todays_limit(exo, openrouter, hf, tmp_path):
    config = limit_of(exo, openrouter, hf, tmp_path, 1000, exo_extra="daily_request_limit = 3")
    with mounted_tmpfs(tmp_path / "data", "size=4m") as data:
        serve = Serve(config, data)
        try:
            assert [serve.chat().status_code for _ in range(3)] == [200] * 3
        finally:
            serve.stop()
        remounted = subprocess.run(["mount", "-o", "remount,ro", str(data)], capture_output=True,
                                   text=True)
        if remounted.returncode != 0:
            pytest.skip(f"cannot remount the test filesystem: {remounted.stderr.strip()}")
        serve = Serve(config, data)  # restart on the read-only data dir
        try:
            refused = serve.chat()
            problem = serve.health()["ledger"]["problem"]
        finally:
            serve.stop()
    assert refused.status_code == 429  # 3 more were answered before
    assert "exo:over-budget" in refused.headers["x-exo-bridge-attempts"]
    assert "openrouter:not-allowed" in refused.headers["x-exo-bridge-attempts"]  # no money
    assert len(exo.chat_requests) == 3 and openrouter.chat_requests == []
    assert "nothing new can be recorded" in problem and "still counts" in problem
    assert "writable" in problem


def test_serve_moves_a_damaged_ledger_aside_at_start(limited_config, tmp_path, exo):
    from tests.test_budget_money import damaged_ledger

    data = tmp_path / "data"
    damaged_ledger(data)
    serve = Serve(limited_config, data)
    try:
        assert serve.chat().status_code == 200
    finally:
        serve.stop()
    said = "".join(serve.said)
    assert "damaged" in said and "moved to" in said  # before it serves: 0 of 1 before
    assert len(delivered_ids(data)) == 1


def test_a_full_disk_closes_paid_providers_and_writes_the_rows_once_freed(
        limited_config, tmp_path, exo, openrouter):
    with mounted_tmpfs(tmp_path / "small", "size=4m") as data:
        serve = Serve(limited_config, data)
        filler = data / "filler"
        try:
            assert serve.chat().status_code == 200
            with open(filler, "wb") as handle, contextlib.suppress(OSError):  # the disk fills up
                while True:
                    handle.write(b"\0" * 65536)
                    handle.flush()
            answered = [serve.chat().headers.get("x-exo-bridge-provider") for _ in range(40)]
            assert answered == ["exo"] * 40  # exo keeps answering
            deadline = time.monotonic() + 10
            while serve.health()["ledger"]["can_record"] and time.monotonic() < deadline:
                time.sleep(0.1)
            problem = serve.health()["ledger"]["problem"]
            assert problem and "free some disk space" in problem
            exo.stop()
            assert "openrouter:not-allowed" in serve.chat().headers["x-exo-bridge-attempts"]
            assert openrouter.chat_requests == []
            filler.unlink()  # space again: the rows waiting in memory are written
            deadline = time.monotonic() + 15
            while not serve.health()["ledger"]["can_record"] and time.monotonic() < deadline:
                time.sleep(0.1)
            assert serve.health()["ledger"]["can_record"]
        finally:
            serve.stop()
        err = serve.proc.stderr.read() if serve.proc.stderr else ""
        assert "cannot rollback" not in err
        assert len(delivered_ids(data)) == 41  # every exo answer, none lost
