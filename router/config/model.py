"""The whole configuration as frozen dataclasses (router/config/load.py reads it from TOML)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import platformdirs

from router.provider_settings import MAX_DECOMPRESSED_BYTES, MAX_LINE_BYTES, MAX_RESPONSE_BYTES
from router.providers import Kind, kind_named

APP_NAME = "exo-bridge"

DEFAULT_CONFIG_TOML = """\
[[providers]]
id = "exo"
kind = "exo"
name = "Exo Local"
base_urls = ["http://localhost:52415", "http://localhost:8000"]
priority = 0
enabled = true
paid = false

[[providers]]
id = "openrouter"
kind = "openrouter"
name = "OpenRouter"
base_url = "https://openrouter.ai/api/v1"
priority = 1
paid = true
daily_request_limit = 1000
daily_token_limit = 100000
api_key_env = "OPENROUTER_API_KEY"

[[providers]]
id = "huggingface"
kind = "huggingface"
name = "Hugging Face"
base_url = "https://router.huggingface.co/v1"
priority = 2
daily_request_limit = 100
daily_token_limit = 50000
api_key_env = "HF_TOKEN"

[models."llama-3.2-3b"]
exo = ["mlx-community/Llama-3.2-3B-Instruct-4bit", "llama-3.2-3b"]
openrouter = "meta-llama/llama-3.2-3b-instruct"
huggingface = "meta-llama/Llama-3.2-3B-Instruct"
"""

MiB = 1024 * 1024

NOTIFICATION_KINDS = ("failover", "failback", "invalid-key", "budget", "cost-anomaly", "crash",
                      "ledger", "warm", "cluster", "credit")


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    id: str
    kind: str
    name: str
    base_urls: tuple[str, ...]
    priority: int = 0
    enabled: bool = True
    paid: bool = False
    daily_request_limit: int | None = None
    daily_token_limit: int | None = None
    daily_cost_limit_usd: float | None = None
    connect_timeout_s: float = 5.0
    first_token_timeout_s: float = 30.0  # from the request (its wait for a connection too)
    idle_timeout_s: float = 60.0  # between data chunks once content flows (comments don't count)
    total_timeout_s: float = 600.0  # the whole answer
    prefill_timeout_s: float = 300.0  # the first token may wait this long while the prompt is read
    api_key_env: str | None = None
    prompt_price_per_mtok: float | None = None
    completion_price_per_mtok: float | None = None
    credit_floor_usd: float | None = None  # warn as the key's credit nears this (80%, 95%)
    max_connections: int = 1024  # requests at once; more wait (within the first-token deadline)
    max_queued: int = 1024  # requests waiting for a connection; more are skipped as busy
    max_response_bytes: int = MAX_RESPONSE_BYTES  # one answer's body as received
    max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES  # one answer's body once decompressed
    max_line_bytes: int = MAX_LINE_BYTES  # one SSE line

    @property
    def base_url(self) -> str:
        return self.base_urls[0]

    @property
    def traits(self) -> Kind:
        """Its kind's description (router/providers/): local or cloud, key, cost, ..."""
        return kind_named(self.kind)

    @property
    def needs_key(self) -> bool:
        return self.traits.needs_key

    @property
    def costs_money(self) -> bool:
        """Whether its answers are billed (marked paid, a kind that bills, or priced in the
        config): it is used only while the ledger can record what it spends."""
        return self.paid or self.traits.bills or bool(
            self.prompt_price_per_mtok or self.completion_price_per_mtok)


class WarmConsent(StrEnum):
    """``warm_on_exo``: whether a model the local cluster could run but has not loaded is
    loaded there (while the cloud answers): after asking, always, or never."""

    ASK = "ask"
    ALWAYS = "always"
    NEVER = "never"


@dataclass(frozen=True, slots=True)
class ModelAlias:
    name: str
    ids: Mapping[str, tuple[str, ...]]  # provider id -> candidate model ids, first match wins
    allow_paid_failover: bool | None = None
    warm_on_exo: WarmConsent = WarmConsent.ASK
    free_only: bool = False  # never sent where it would cost money


@dataclass(frozen=True, slots=True)
class ServerConfig:
    enabled: bool = True  # the tray app runs the endpoint (`exo-bridge serve` always does)
    host: str = "127.0.0.1"
    port: int = 8741
    allowed_origins: tuple[str, ...] = ()
    max_body_bytes: int = 8 * MiB
    max_connections: int = 1024  # also held below what the process may open (see server.py)
    header_timeout_s: float = 10.0  # from a request's first byte to the end of its headers
    body_timeout_s: float = 30.0  # from the end of the headers to the end of the body
    keepalive_timeout_s: float = 15.0  # an idle connection (none sent yet, or between requests)


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """How often ``serve`` and the tray app check the providers in the background (seconds)."""

    exo_probe_interval_s: float = 5.0  # free liveness/readiness: fail-back within one interval
    cloud_probe_interval_s: float = 900.0  # a cheap authenticated call, never a completion


_HEALTH_KEYS = {"exo_probe_interval_s", "cloud_probe_interval_s"}


@dataclass(frozen=True, slots=True)
class Config:
    providers: tuple[ProviderConfig, ...]
    models: Mapping[str, ModelAlias]
    allow_paid_failover: bool = True
    server: ServerConfig = field(default_factory=ServerConfig)
    notifications: Mapping[str, bool] = field(
        default_factory=lambda: dict.fromkeys(NOTIFICATION_KINDS, True))
    health: HealthConfig = field(default_factory=HealthConfig)
    source: str = "<defaults>"

    def provider(self, provider_id: str) -> ProviderConfig:
        for p in self.providers:
            if p.id == provider_id:
                return p
        raise KeyError(provider_id)

    @property
    def default_model(self) -> str | None:
        return next(iter(self.models), None)


def default_config_path() -> Path:
    env = os.environ.get("EXO_BRIDGE_CONFIG")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def data_dir() -> Path:
    env = os.environ.get("EXO_BRIDGE_DATA_DIR")
    return Path(env).expanduser() if env else Path(platformdirs.user_data_dir(APP_NAME))


def state_dir() -> Path:
    """Logs and crash reports: ``$EXO_BRIDGE_STATE_DIR``, else the user state dir."""
    env = os.environ.get("EXO_BRIDGE_STATE_DIR")
    return Path(env).expanduser() if env else Path(platformdirs.user_state_dir(APP_NAME))
