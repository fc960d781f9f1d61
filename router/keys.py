"""API keys: the provider's ``api_key_env`` variable first, else the OS keychain.

Keychain entries: service ``exo-bridge``, username = provider id. Every keyring call may
block (D-Bus, an unlock prompt): async code calls these through ``asyncio.to_thread``.
A key is wrapped in :class:`Secret` so that no repr, log line or exception shows it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from router import redact
from router.errors import KeychainUnavailable

if TYPE_CHECKING:
    from router.provider_settings import ProviderSettings

SERVICE = "exo-bridge"


class Secret:
    """A string that never shows itself: ``repr``/``str`` print a mask, and any provider text
    that quotes it is masked too (router.redact)."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value
        redact.remember(value)

    def reveal(self) -> str:
        return self._value

    def masked(self) -> str:
        tail = self._value[-4:] if len(self._value) >= 12 else ""
        return f"••••{tail}"

    def __repr__(self) -> str:
        return "Secret('••••')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    provider: str
    source: str  # "env:NAME", "keychain" or "none"
    masked: str


def _no_keychain(exc: Exception) -> KeychainUnavailable:
    return KeychainUnavailable(
        "no usable OS keychain (" + exc.__class__.__name__ + "). Install/unlock a Secret Service "
        "(e.g. gnome-keyring or KWallet), or give the key in the provider's api_key_env "
        "environment variable instead.")


def keychain_get(username: str) -> Secret | None:
    """Read one keychain entry; raises KeychainUnavailable when there is no keychain."""
    import keyring.errors  # imported on first use: it costs start-up time and runs off the loop

    try:
        value = keyring.get_password(SERVICE, username)
    except keyring.errors.KeyringError as exc:
        raise _no_keychain(exc) from None
    return Secret(value) if value else None


def keychain_set(username: str, value: str) -> None:
    import keyring.errors

    try:
        keyring.set_password(SERVICE, username, value)
    except keyring.errors.KeyringError as exc:
        raise _no_keychain(exc) from None


def keychain_delete(username: str) -> bool:
    """Delete an entry; False if there was none."""
    import keyring.errors

    try:
        keyring.delete_password(SERVICE, username)
    except keyring.errors.PasswordDeleteError:
        return False
    except keyring.errors.KeyringError as exc:
        raise _no_keychain(exc) from None
    return True


KeychainReader = Callable[[Sequence[str]], dict[str, Secret | None]]


def keychain_read(usernames: Sequence[str]) -> dict[str, Secret | None]:
    """Several entries, in this process."""
    return {name: keychain_get(name) for name in usernames}


class KeyStore:
    """Looks keys up (env first, then keychain) and remembers a keychain failure. ``reader``
    reads keychain entries in bulk (the tray reads them in a helper process)."""

    def __init__(self, environ: Mapping[str, str] | None = None,
                 reader: KeychainReader = keychain_read):
        self._environ = environ if environ is not None else os.environ
        self._reader = reader
        self.keychain_error: str | None = None

    def env_key(self, provider: ProviderSettings) -> Secret | None:
        if provider.api_key_env:
            value = self._environ.get(provider.api_key_env, "").strip()
            if value:
                return Secret(value)
        return None

    def get_all(self, providers: Sequence[ProviderSettings]) -> dict[str, Secret | None]:
        """Every provider's key (one keychain read for those without one in the env).
        Blocking: call off the event loop."""
        found = {p.id: self.env_key(p) for p in providers}
        missing = [pid for pid, key in found.items() if key is None]
        try:
            found |= self._reader(missing) if missing else {}
        except KeychainUnavailable as exc:
            self.keychain_error = str(exc)
        return found

    def info(self, provider: ProviderSettings) -> KeyInfo:
        found = self.env_key(provider)
        if found is not None:
            return KeyInfo(provider.id, f"env:{provider.api_key_env}", found.masked())
        stored = keychain_get(provider.id)
        if stored is not None:
            return KeyInfo(provider.id, "keychain", stored.masked())
        return KeyInfo(provider.id, "none", "")


TOKEN_USERNAME = "local-token"
TOKEN_ENV = "EXO_BRIDGE_TOKEN"


def endpoint_token(environ: Mapping[str, str] | None = None,
                   reader: KeychainReader = keychain_read) -> Secret:
    """The local endpoint's access token: ``$EXO_BRIDGE_TOKEN``, else the keychain's, made on
    first use. Blocking (keychain): call off the event loop."""
    import secrets

    env = (environ if environ is not None else os.environ).get(TOKEN_ENV, "").strip()
    if env:
        return Secret(env)
    try:
        stored = reader([TOKEN_USERNAME]).get(TOKEN_USERNAME)
        if stored is not None:
            return stored
        token = secrets.token_urlsafe(32)
        keychain_set(TOKEN_USERNAME, token)
        return Secret(token)
    except KeychainUnavailable as exc:
        raise KeychainUnavailable(f"{exc} For the local endpoint, set {TOKEN_ENV} to a token of "
                                  "your choice instead.") from None


def regenerate_endpoint_token() -> Secret:
    import secrets

    token = secrets.token_urlsafe(32)
    keychain_set(TOKEN_USERNAME, token)
    return Secret(token)
