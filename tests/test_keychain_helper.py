"""The tray's keychain reads in a helper process (keyring's client stays out of the tray)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from router.errors import KeychainUnavailable
from router.keychain_helper import read_in_helper
from router.keys import KeyStore, endpoint_token
from tests.conftest import OR_KEY

KEY = OR_KEY
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def helper_env(tmp_path: Path) -> dict[str, str]:
    store = tmp_path / "keyring.json"
    store.write_text(json.dumps({"exo-bridge/openrouter": KEY, "exo-bridge/local-token": "tok" * 8}))
    return {**os.environ, "PYTHON_KEYRING_BACKEND": "tests.fakes.file_keyring.FileKeyring",
            "EXO_BRIDGE_TEST_KEYRING": str(store), "PYTHONPATH": str(ROOT)}


def test_helper_reads_the_entries_it_is_asked_for(helper_env):
    found = read_in_helper(["openrouter", "huggingface"], helper_env)
    assert found["openrouter"] is not None and found["openrouter"].reveal() == KEY
    assert found["huggingface"] is None


def test_no_keychain_is_reported_without_any_secret(helper_env):
    env = {**helper_env, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    with pytest.raises(KeychainUnavailable) as caught:
        read_in_helper(["openrouter"], env)
    assert "no usable OS keychain" in str(caught.value) and KEY not in str(caught.value)


def test_keystore_and_token_through_the_helper(helper_env, make_config, monkeypatch):
    config, _ = make_config()
    store = KeyStore(environ={}, reader=lambda names: read_in_helper(names, helper_env))
    keys = store.get_all([config.provider("openrouter"), config.provider("huggingface")])
    assert keys["openrouter"].reveal() == KEY and keys["huggingface"] is None
    assert store.keychain_error is None
    token = endpoint_token({}, lambda names: read_in_helper(names, helper_env))
    assert token.reveal() == "tok" * 8


def test_the_tray_process_does_not_load_keyrings_client(helper_env):
    """What the helper is for: after reading keys through it, this process has not imported
    keyring (nor secretstorage/cryptography behind it)."""
    import subprocess
    import sys

    code = ("import sys; from router.keychain_helper import read_in_helper; "
            "found = read_in_helper(['openrouter']); "
            "print(found['openrouter'] is not None, 'keyring' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=helper_env, check=True).stdout.split()
    assert out == ["True", "False"]


def test_first_run_token_is_made_and_stored_by_the_helper(helper_env, tmp_path):
    store = Path(helper_env["EXO_BRIDGE_TEST_KEYRING"])
    store.write_text("{}")
    env = {**helper_env, "EXO_BRIDGE_TOKEN": ""}
    first = endpoint_token({}, lambda names: read_in_helper(names, env, create_token=True))
    again = endpoint_token({}, lambda names: read_in_helper(names, env, create_token=True))
    assert len(first.reveal()) >= 32 and again == first  # made once, then read back
    assert json.loads(store.read_text())["exo-bridge/local-token"] == first.reveal()
