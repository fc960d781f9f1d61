"""Keychain reads in a short-lived helper process, for the tray app's start-up.

Reading the Secret Service in-process loads keyring's client, and with it `cryptography`
(~8 MiB that would stay resident in the tray for good). The tray instead asks a helper process
for the entries it needs at start; writes (from the settings window) stay in-process.

Protocol: the helper gets the usernames as arguments and prints one JSON line last on stdout,
``{"found": {username: secret-or-null}}`` or ``{"error": message}``; secrets travel only
through that pipe, never through arguments, files or logs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

from router.errors import KeychainUnavailable
from router.keys import Secret, endpoint_token, keychain_get

HELPER_FLAG = "--keychain-helper"  # `exo-bridge --keychain-helper NAME...` in the frozen app
CREATE_TOKEN_FLAG = "--create-token"
TIMEOUT_S = 60.0  # an unlock prompt may be waiting for the user


def helper_command() -> list[str]:
    if getattr(sys, "frozen", False):
        return [sys.executable, HELPER_FLAG]
    return [sys.executable, "-m", "router.keychain_helper"]


def read_in_helper(usernames: Sequence[str], environ: Mapping[str, str] | None = None,
                   *, create_token: bool = False) -> dict[str, Secret | None]:
    """Each username's keychain entry (None if absent); with ``create_token`` the endpoint's
    token is made and stored first if there is none. Blocking: call off the event loop.
    Raises KeychainUnavailable when there is no keychain or the helper fails."""
    if not usernames:
        return {}
    flags = [CREATE_TOKEN_FLAG] if create_token else []
    try:
        done = subprocess.run([*helper_command(), *flags, *usernames], capture_output=True, text=True,
                              timeout=TIMEOUT_S, env=dict(environ if environ is not None else os.environ))
        answer = json.loads(done.stdout.strip().rpartition("\n")[2])  # its last line is ours
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        raise KeychainUnavailable(f"the keychain helper failed ({exc.__class__.__name__})") from None
    if not isinstance(answer, dict) or "error" in answer or not isinstance(answer.get("found"), dict):
        raise KeychainUnavailable(str(answer.get("error") if isinstance(answer, dict) else "")
                                  or "the keychain helper gave no answer")
    found = answer["found"]
    return {name: Secret(found[name]) if isinstance(found.get(name), str) else None
            for name in usernames}


def endpoint_token_in_helper(environ: Mapping[str, str] | None = None) -> Secret:
    """The endpoint's token as ``keys.endpoint_token`` gives it, the keychain part (reading it,
    or making and storing it on first run) done in the helper."""
    return endpoint_token(environ, lambda names: read_in_helper(names, create_token=True))


def main(args: Sequence[str]) -> int:
    create_token = CREATE_TOKEN_FLAG in args
    usernames = [a for a in args if a != CREATE_TOKEN_FLAG]
    try:
        if create_token:
            endpoint_token({})  # reads the stored token, or makes and stores one
        found = {}
        for name in usernames:
            secret = keychain_get(name)
            found[name] = secret.reveal() if secret is not None else None
        print(json.dumps({"found": found}))
    except KeychainUnavailable as exc:
        print(json.dumps({"error": str(exc)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
