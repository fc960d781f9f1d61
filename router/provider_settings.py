"""What the layers under the config read of one provider's settings: who it is, where it is, its
key's variable, its connect deadline and the sizes it may send.

``router.config.ProviderConfig`` is one. The HTTP stack, the keychain and the adapters take this
instead, so none of them imports the config, which imports the adapters to know the kinds.
"""

from __future__ import annotations

from typing import Protocol

MiB = 1024 * 1024
MAX_RESPONSE_BYTES = 32 * MiB  # one answer's body as received
MAX_DECOMPRESSED_BYTES = 32 * MiB  # one answer's body once decompressed
MAX_LINE_BYTES = 8 * MiB  # one SSE line


class ProviderSettings(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def base_url(self) -> str: ...
    @property
    def base_urls(self) -> tuple[str, ...]: ...
    @property
    def api_key_env(self) -> str | None: ...
    @property
    def connect_timeout_s(self) -> float: ...
    @property
    def max_response_bytes(self) -> int: ...
    @property
    def max_decompressed_bytes(self) -> int: ...
    @property
    def max_line_bytes(self) -> int: ...
