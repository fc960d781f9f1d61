"""What a key's test says, in the Settings window's Keys tab and the first-run assistant: that it
works, that the provider rejected it, or why the provider could not be asked (with what to check
when the connection itself failed: a test that says only "connection refused" leaves the user
guessing whether the key is wrong)."""

from __future__ import annotations

from urllib.parse import urlsplit

from router import HealthState, ProviderConfig, Snapshot

_CONNECTION = ("refused", "dns", "timeout", "timed out", "tls", "connect", "closed the connection",
               "unreachable", "network")


def connection_failed(snapshot: Snapshot) -> bool:
    """The provider was never asked: the connection to it failed (not the key)."""
    detail = snapshot.detail.lower()
    return not snapshot.invalid_key and snapshot.state is not HealthState.HEALTHY \
        and any(word in detail for word in _CONNECTION)


def connection_hint(provider: ProviderConfig) -> str:
    host = urlsplit(provider.base_url or "").netloc or provider.base_url or "its address"
    return (f"Exo Bridge could not reach {provider.name} at {host}, so the key was not checked: "
            "check this computer's internet connection, a proxy (HTTPS_PROXY) or a firewall, "
            "then test the key again.")


def result_text(snapshot: Snapshot, provider: ProviderConfig) -> str:
    """One or two sentences for a key's test result."""
    if snapshot.state is HealthState.HEALTHY:
        return f"✓ Works ({snapshot.detail})."
    if snapshot.invalid_key:
        return f"✗ {provider.name} rejected the key ({snapshot.detail}). Paste it again."
    if connection_failed(snapshot):
        return f"✗ {snapshot.detail[:1].upper()}{snapshot.detail[1:]}. {connection_hint(provider)}"
    return f"✗ The test failed: {snapshot.detail}."
