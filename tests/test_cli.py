"""The headless CLI, in-process and through the installed `exo-bridge` entry point."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest

from router.cli.main import main
from tests.conftest import HF_KEY, OR_KEY, subprocess_env

EXE = str(Path(sys.executable).with_name("exo-bridge"))


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cfg(make_config, keys_in_env) -> str:
    return str(make_config()[1])


def test_ask_json_exo_first(capsys, cfg, exo):
    code, out, _ = run(capsys, "ask", "hi", "--json", "--config", cfg)
    data = json.loads(out)
    assert code == 0
    assert data["provider_used"] == "exo" and data["cost_usd"] == 0.0
    assert data["response"].strip() == "Hello from the fake provider ."
    assert data["attempts"] == [{"provider": "exo", "outcome": "ok", "detail": "",
                                 "latency_ms": data["attempts"][0]["latency_ms"]}]
    assert set(data) == {"response", "provider_used", "model", "cost_usd", "usage", "attempts"}


@pytest.mark.parametrize(("fault", "status", "outcome"), [
    ("refuse", None, "refused"), ("status", 503, "server-error"), ("hang_before_headers", None, "timeout"),
    ("malformed_json", None, "bad-response"), ("model_not_found", None, "model-unavailable")])
def test_ask_json_fails_over(capsys, make_config, keys_in_env, exo, fault, status, outcome):
    _, path = make_config(first_token_s=0.3)
    if fault == "refuse":
        exo.stop()
    else:
        exo.fault, exo.fault_status = fault, status or 500
    code, out, _ = run(capsys, "ask", "hi", "--json", "--config", str(path))
    data = json.loads(out)
    assert code == 0
    assert [(a["provider"], a["outcome"]) for a in data["attempts"]] == [
        ("exo", outcome), ("openrouter", "ok")]
    assert data["provider_used"] == "openrouter" and data["cost_usd"] > 0


def test_ask_plain_prints_answer_and_summary(capsys, cfg, exo):
    exo.stop()
    code, out, err = run(capsys, "ask", "hi", "--config", cfg)
    assert code == 0
    assert out.strip() == "Hello from the fake provider ."
    assert "answered by openrouter" in err and "exo: refused (connection refused)" in err
    assert "tokens" in err and "$" in err


def test_ask_stream_prints_as_it_arrives(capsys, cfg):
    code, out, err = run(capsys, "ask", "hi", "--stream", "--config", cfg)
    assert code == 0 and out.strip() == "Hello from the fake provider ."
    assert "answered by exo" in err and "free" in err


def test_ask_stream_json_is_one_object(capsys, cfg):
    code, out, _ = run(capsys, "ask", "hi", "--stream", "--json", "--config", cfg)
    assert code == 0 and json.loads(out)["provider_used"] == "exo"


def test_all_fail_exit_3_with_attempts(capsys, cfg, exo, openrouter, hf):
    exo.stop(); openrouter.stop(); hf.stop()
    code, out, _ = run(capsys, "ask", "hi", "--json", "--config", cfg)
    data = json.loads(out)
    assert code == 3 and data["provider_used"] is None
    assert [a["outcome"] for a in data["attempts"]] == ["refused", "refused", "refused"]
    code, _, err = run(capsys, "ask", "hi", "--config", cfg)
    assert code == 3 and "exo: circuit-open" not in err and "refused" in err


def test_stream_broken_exit_3(capsys, make_config, keys_in_env, exo):
    _, path = make_config(idle_s=0.3)
    exo.fault = "close_without_done"
    code, out, err = run(capsys, "ask", "hi", "--stream", "--config", str(path))
    assert code == 3
    assert out.startswith("Hello from")
    assert "exo: stream-cut" in err


def test_bad_config_exit_2_without_traceback(capsys, tmp_path):
    bad = tmp_path / "config.toml"
    bad.write_text('[[providers]]\nid = "exo"\nkind = "exo"\nbase_urls = ["http://x"]\nlimit = -1\n')
    code, out, err = run(capsys, "ask", "hi", "--config", str(bad))
    assert code == 2
    assert str(bad) in err and "line 5" in err and "fix:" in err
    assert "Traceback" not in err


def test_bad_usage_exit_2(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["ask"])
    assert caught.value.code == 2


def test_status_json_shows_busy_exo_with_download(capsys, cfg, exo, openrouter):
    openrouter.account.key_limit_usd = 12.5
    exo.ready = set()
    exo.downloading = {"mlx-community/Llama-3.2-3B-Instruct-4bit": 43.0}
    code, out, _ = run(capsys, "status", "--json", "--config", cfg)
    assert code == 0
    providers = {p["id"]: p for p in json.loads(out)["providers"]}
    assert providers["exo"]["state"] == "busy"
    assert providers["exo"]["detail"] == "downloading Llama-3.2-3B 43%"
    assert providers["exo"]["download_progress"] == 43.0
    assert providers["openrouter"]["state"] == "healthy"
    assert "$12.50 credit left" in providers["openrouter"]["detail"]
    assert providers["huggingface"]["state"] == "healthy"
    assert set(providers["exo"]) == {"id", "name", "state", "detail", "latency_ms", "download_progress",
                                     "requests_today", "calls_today", "tokens_today",
                                     "cost_today_usd", "limits",
                                     "limit", "account"}


def test_status_never_sends_a_completion(capsys, cfg, exo, openrouter, hf):
    run(capsys, "status", "--config", cfg)
    assert exo.chat_requests == openrouter.chat_requests == hf.chat_requests == []


def test_status_text_down_and_no_key(capsys, make_config, exo, monkeypatch):
    _, path = make_config()
    exo.stop()
    code, out, _ = run(capsys, "status", "--config", str(path))
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert code == 0
    assert "down" in lines["exo"] and "connection refused" in lines["exo"]
    assert "no-key" in lines["openrouter"]


def test_keys_set_list_test_delete(capsys, monkeypatch, make_config, keyring_store, openrouter):
    _, path = make_config()
    monkeypatch.setattr(sys, "stdin", io.StringIO(OR_KEY + "\n"))
    code, out, _ = run(capsys, "keys", "set", "openrouter", "--config", str(path))
    assert code == 0 and OR_KEY not in out
    assert keyring_store.entries[("exo-bridge", "openrouter")] == OR_KEY
    code, out, _ = run(capsys, "keys", "list", "--config", str(path))
    assert "openrouter" in out and "keychain" in out and OR_KEY not in out and OR_KEY[-4:] in out
    assert "no key" in out.splitlines()[1]
    code, out, _ = run(capsys, "keys", "test", "openrouter", "--config", str(path))
    assert code == 0 and "key OK" in out
    keyring_store.entries[("exo-bridge", "openrouter")] = "sk-or-wrong-key-000000"
    code, out, _ = run(capsys, "keys", "test", "openrouter", "--config", str(path))
    assert code == 3 and "invalid key" in out
    code, out, _ = run(capsys, "keys", "delete", "openrouter", "--config", str(path))
    assert code == 0 and ("exo-bridge", "openrouter") not in keyring_store.entries


def test_keychain_key_is_used_for_requests(capsys, make_config, keyring_store, exo, openrouter):
    _, path = make_config()
    keyring_store.entries[("exo-bridge", "openrouter")] = OR_KEY
    exo.stop()
    code, out, _ = run(capsys, "ask", "hi", "--json", "--config", str(path))
    assert code == 0 and json.loads(out)["provider_used"] == "openrouter"


def test_hf_key_test_uses_whoami(capsys, make_config, keyring_store, hf):
    _, path = make_config()
    keyring_store.entries[("exo-bridge", "huggingface")] = HF_KEY
    code, out, _ = run(capsys, "keys", "test", "huggingface", "--config", str(path))
    assert code == 0 and "fake-user" in out
    assert [r.path for r in hf.requests] == ["/api/whoami-v2"]


def test_keys_unknown_provider(capsys, cfg):
    code, _, err = run(capsys, "keys", "test", "groq", "--config", cfg)
    assert code == 2 and "openrouter" in err


def test_no_keychain_is_a_clear_message_and_env_keys_still_work(capsys, cfg, exo, monkeypatch):
    keyring.set_keyring(keyring.backends.fail.Keyring())
    monkeypatch.setattr(sys, "stdin", io.StringIO("sk-or-something-long\n"))
    code, _, err = run(capsys, "keys", "set", "openrouter", "--config", cfg)
    assert code == 2 and "no usable OS keychain" in err and "api_key_env" in err
    assert "Traceback" not in err
    exo.stop()
    code, out, _ = run(capsys, "ask", "hi", "--json", "--config", cfg)  # env keys from keys_in_env
    assert code == 0 and json.loads(out)["provider_used"] == "openrouter"


def test_entry_point_exit_codes(make_config, exo, openrouter, hf):
    _, path = make_config()
    env = subprocess_env(OPENROUTER_API_KEY=OR_KEY, HF_TOKEN=HF_KEY)
    done = subprocess.run([EXE, "ask", "hi", "--json", "--config", str(path)], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["provider_used"] == "exo"
    exo.stop(); openrouter.stop(); hf.stop()
    done = subprocess.run([EXE, "ask", "hi", "--json", "--config", str(path)], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 3
    assert OR_KEY not in done.stdout + done.stderr and HF_KEY not in done.stdout + done.stderr
