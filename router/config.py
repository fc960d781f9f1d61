"""The whole configuration as frozen dataclasses, loaded from TOML with friendly errors.

Path: ``--config FILE``, else ``$EXO_BRIDGE_CONFIG``, else ``config.toml`` in the user config
dir. A missing file means the built-in defaults (``DEFAULT_CONFIG_TOML``).
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from router.errors import ConfigError

APP_NAME = "exo-bridge"
KINDS = ("exo", "openrouter", "huggingface", "openai")
# Where a provider of each kind is, when its table gives no base_url (exo: this machine's node).
DEFAULT_BASE_URLS = {"exo": "http://localhost:52415", "openrouter": "https://openrouter.ai/api/v1",
                     "huggingface": "https://router.huggingface.co/v1"}

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

# (connect, first token, idle) deadlines in seconds, per kind: a local cluster answers a
# connect at once or not at all; the cloud gets longer.
_DEFAULT_DEADLINES = {"exo": (1.0, 30.0, 30.0)}
_CLOUD_DEADLINES = (5.0, 30.0, 60.0)
_KEYED_KINDS = {"openrouter", "huggingface"}

_PROVIDER_KEYS = {
    "id", "kind", "name", "base_url", "base_urls", "priority", "enabled", "paid",
    "daily_request_limit", "daily_token_limit", "daily_cost_limit_usd",
    "connect_timeout_s", "first_token_timeout_s", "idle_timeout_s", "api_key_env",
    "prompt_price_per_mtok", "completion_price_per_mtok",
}
_TOP_KEYS = {"providers", "models", "allow_paid_failover", "server", "notifications", "health"}
NOTIFICATION_KINDS = ("failover", "failback", "invalid-key", "budget", "cost-anomaly", "crash",
                      "ledger")
_SERVER_KEYS = {"enabled", "host", "port", "allowed_origins", "max_body_bytes"}
_ID_RE = re.compile(r"^[a-z0-9-]+$")


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
    first_token_timeout_s: float = 30.0
    idle_timeout_s: float = 60.0
    api_key_env: str | None = None
    prompt_price_per_mtok: float | None = None
    completion_price_per_mtok: float | None = None

    @property
    def base_url(self) -> str:
        return self.base_urls[0]

    @property
    def needs_key(self) -> bool:
        return self.kind in _KEYED_KINDS

    @property
    def costs_money(self) -> bool:
        """Whether its answers are billed (marked paid, a cloud kind, or priced in the config):
        it is used only while the ledger can record what it spends."""
        return self.paid or self.kind in _KEYED_KINDS or bool(
            self.prompt_price_per_mtok or self.completion_price_per_mtok)


@dataclass(frozen=True, slots=True)
class ModelAlias:
    name: str
    ids: Mapping[str, tuple[str, ...]]  # provider id -> candidate model ids, first match wins
    allow_paid_failover: bool | None = None


@dataclass(frozen=True, slots=True)
class ServerConfig:
    enabled: bool = True  # the tray app runs the endpoint (`exo-bridge serve` always does)
    host: str = "127.0.0.1"
    port: int = 8741
    allowed_origins: tuple[str, ...] = ()
    max_body_bytes: int = 8 * 1024 * 1024


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


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load the config from ``path`` (or the default location); defaults when it is missing."""
    explicit = path is not None
    target = Path(path) if path is not None else default_config_path()
    if not target.exists():
        if explicit:
            raise ConfigError(str(target), "file not found",
                              fix="check the path, or leave --config out to use the defaults")
        return parse_config(DEFAULT_CONFIG_TOML, "<defaults>")
    try:
        text = target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(target), f"cannot read the file ({exc.__class__.__name__})",
                          fix="make it a readable UTF-8 text file") from None
    return parse_config(text, str(target))


def parse_config(text: str, source: str) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _toml_error_line(str(exc))
        raise ConfigError(source, f"not valid TOML: {exc}", line=line,
                          fix="correct the TOML syntax on that line") from None
    return _Builder(text, source).build(raw)


def _toml_error_line(message: str) -> int | None:
    found = re.search(r"line (\d+)", message)
    return int(found.group(1)) if found else None


class _Builder:
    """Turns parsed TOML into a Config, naming the line of anything wrong."""

    def __init__(self, text: str, source: str):
        self.lines = text.splitlines()
        self.source = source

    def fail(self, message: str, fix: str, *, line: int | None = None) -> ConfigError:
        return ConfigError(self.source, message, line=line, fix=fix)

    def line_of(self, pattern: str, start: int = 0) -> int | None:
        rx = re.compile(pattern)
        for number, text in enumerate(self.lines[start:], start=start + 1):
            if rx.search(text):
                return number
        return None

    def provider_line(self, index: int, key: str | None = None) -> int | None:
        headers = [n for n, t in enumerate(self.lines) if re.match(r"\s*\[\[\s*providers\s*\]\]", t)]
        if index >= len(headers):
            return self.line_of(r"\bproviders\b")
        start = headers[index]
        if key is None:
            return start + 1
        end = headers[index + 1] if index + 1 < len(headers) else len(self.lines)
        found = self.line_of(rf"^\s*{re.escape(key)}\s*=", start)
        return found if found is not None and found <= end else start + 1

    def build(self, raw: dict[str, Any]) -> Config:
        for key in raw:
            if key not in _TOP_KEYS:
                raise self.fail(f"unknown key {key!r}", f"remove it; known keys: "
                                f"{', '.join(sorted(_TOP_KEYS))}", line=self.line_of(rf"\b{key}\b"))
        providers = self.providers(raw.get("providers"))
        known = {p.id for p in providers}
        models = self.models(raw.get("models", {}), known)
        paid = raw.get("allow_paid_failover", True)
        if not isinstance(paid, bool):
            raise self.fail("allow_paid_failover must be true or false", "write true or false",
                            line=self.line_of(r"^\s*allow_paid_failover"))
        return Config(providers=tuple(sorted(providers, key=lambda p: p.priority)),
                      models=models, allow_paid_failover=paid,
                      server=self.server(raw.get("server", {})),
                      notifications=self.notifications(raw.get("notifications", {})),
                      health=self.health(raw.get("health", {})), source=self.source)

    def providers(self, raw: Any) -> list[ProviderConfig]:
        if raw is None:
            raise self.fail("no [[providers]] defined", "add at least one [[providers]] table")
        if not isinstance(raw, list):
            raise self.fail("providers must be an array of tables", "write [[providers]]",
                            line=self.line_of(r"providers"))
        result: list[ProviderConfig] = []
        for index, table in enumerate(raw):
            provider = self.provider(index, table)
            if provider.id in {p.id for p in result}:
                raise self.fail(f"duplicate provider id {provider.id!r}",
                                "give every provider a unique id",
                                line=self.provider_line(index, "id"))
            result.append(provider)
        return result

    def provider(self, index: int, table: dict[str, Any]) -> ProviderConfig:
        for key in table:
            if key not in _PROVIDER_KEYS:
                raise self.fail(f"unknown provider key {key!r}",
                                f"remove it; known keys: {', '.join(sorted(_PROVIDER_KEYS))}",
                                line=self.provider_line(index, key))
        pid = self.text(index, table, "id", required=True)
        if not _ID_RE.match(pid):
            raise self.fail(f"provider id {pid!r} is not of [a-z0-9-]+",
                            "use lower-case letters, digits and dashes",
                            line=self.provider_line(index, "id"))
        kind = self.text(index, table, "kind", required=True)
        if kind not in KINDS:
            raise self.fail(f"unknown provider kind {kind!r}", f"use one of {', '.join(KINDS)}",
                            line=self.provider_line(index, "kind"))
        connect, first, idle = _DEFAULT_DEADLINES.get(kind, _CLOUD_DEADLINES)
        return ProviderConfig(
            id=pid, kind=kind, name=self.text(index, table, "name") or pid,
            base_urls=self.urls(index, table, kind),
            priority=int(self.number(index, table, "priority", 0, integer=True) or 0),
            enabled=self.flag(index, table, "enabled", True),
            paid=self.flag(index, table, "paid", False),
            daily_request_limit=self.limit(index, table, "daily_request_limit", integer=True),
            daily_token_limit=self.limit(index, table, "daily_token_limit", integer=True),
            daily_cost_limit_usd=self.limit(index, table, "daily_cost_limit_usd"),
            connect_timeout_s=self.positive(index, table, "connect_timeout_s", connect),
            first_token_timeout_s=self.positive(index, table, "first_token_timeout_s", first),
            idle_timeout_s=self.positive(index, table, "idle_timeout_s", idle),
            api_key_env=self.text(index, table, "api_key_env"),
            prompt_price_per_mtok=self.limit(index, table, "prompt_price_per_mtok"),
            completion_price_per_mtok=self.limit(index, table, "completion_price_per_mtok"),
        )

    def text(self, index: int, table: dict[str, Any], key: str, *,
             required: bool = False) -> Any:
        value = table.get(key)
        if value is None:
            if required:
                raise self.fail(f"provider #{index + 1} has no {key!r}", f"add {key} = \"...\"",
                                line=self.provider_line(index))
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(f"{key} must be a non-empty string", f"write {key} = \"...\"",
                            line=self.provider_line(index, key))
        return value

    def flag(self, index: int, table: dict[str, Any], key: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{key} must be true or false", f"write {key} = true or false",
                            line=self.provider_line(index, key))
        return value

    def number(self, index: int, table: dict[str, Any], key: str, default: float | None, *,
               integer: bool = False) -> float | None:
        value = table.get(key, default)
        if value is None:
            return None
        ok = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok or (isinstance(value, float) and not math.isfinite(value)):
            kind = "a whole number" if integer else "a number"
            raise self.fail(f"{key} must be {kind}, not {value!r}", f"write {key} = <{kind}>",
                            line=self.provider_line(index, key))
        return float(value) if not integer else int(value)

    def limit(self, index: int, table: dict[str, Any], key: str, *,
              integer: bool = False) -> Any:
        value = self.number(index, table, key, None, integer=integer)
        if value is not None and value < 0:
            raise self.fail(f"{key} must not be negative ({value})",
                            f"use 0 or more, or remove {key} for no limit",
                            line=self.provider_line(index, key))
        return value

    def positive(self, index: int, table: dict[str, Any], key: str, default: float) -> float:
        value = self.number(index, table, key, default)
        if value is None or value <= 0:
            raise self.fail(f"{key} must be more than 0", f"write {key} = <seconds>",
                            line=self.provider_line(index, key))
        return float(value)

    def urls(self, index: int, table: dict[str, Any], kind: str) -> tuple[str, ...]:
        if "base_url" in table and "base_urls" in table:
            raise self.fail("both base_url and base_urls given", "keep only one",
                            line=self.provider_line(index, "base_urls"))
        if "base_url" not in table and "base_urls" not in table:
            if kind in DEFAULT_BASE_URLS:
                return (DEFAULT_BASE_URLS[kind],)
            raise self.fail("base_url is missing (an OpenAI-compatible server has no default)",
                            'write base_url = "https://host/v1"', line=self.provider_line(index, "kind"))
        value = table.get("base_urls", table.get("base_url"))
        key = "base_urls" if "base_urls" in table else "base_url"
        urls = [value] if isinstance(value, str) else value
        if not isinstance(urls, list) or not urls or not all(
                isinstance(u, str) and re.match(r"^https?://[^/\s]+", u) for u in urls):
            raise self.fail(f"{key} must be http(s) URL(s)",
                            'write base_url = "https://host/v1" (exo: base_urls = ["http://host:52415"])',
                            line=self.provider_line(index, key))
        if kind != "exo" and len(urls) > 1:
            raise self.fail("only an exo provider takes several base_urls",
                            "keep one base_url", line=self.provider_line(index, key))
        return tuple(u.rstrip("/") for u in urls)

    def models(self, raw: Any, known: set[str]) -> dict[str, ModelAlias]:
        if not isinstance(raw, dict):
            raise self.fail("models must be a table of aliases", 'write [models."name"]',
                            line=self.line_of(r"^\s*models\s*="))
        return {name: self.alias(name, table, known) for name, table in raw.items()}

    def alias(self, name: str, table: Any, known: set[str]) -> ModelAlias:
        line = self.line_of(rf"^\s*\[\s*models\.\"?{re.escape(name)}\"?\s*\]")
        if not isinstance(table, dict):
            raise self.fail(f"model alias {name!r} must be a table",
                            f'write [models."{name}"] with provider = "model id" lines', line=line)
        ids: dict[str, tuple[str, ...]] = {}
        paid: bool | None = None
        for key, value in table.items():
            key_line = self.line_of(rf"^\s*\"?{re.escape(key)}\"?\s*=", (line or 1) - 1)
            if key == "allow_paid_failover":
                if not isinstance(value, bool):
                    raise self.fail("allow_paid_failover must be true or false",
                                    "write true or false", line=key_line)
                paid = value
                continue
            if key not in known:
                raise self.fail(f"model alias {name!r} names unknown provider {key!r}",
                                f"use one of the provider ids: {', '.join(sorted(known))}",
                                line=key_line)
            values = [value] if isinstance(value, str) else value
            if not isinstance(values, list) or not values or not all(
                    isinstance(v, str) and v for v in values):
                raise self.fail(f"model id for {key!r} in alias {name!r} must be a string or a "
                                "list of strings", f'write {key} = "model-id"', line=key_line)
            ids[key] = tuple(values)
        return ModelAlias(name=name, ids=ids, allow_paid_failover=paid)

    def notifications(self, raw: Any) -> dict[str, bool]:
        """[notifications]: one true/false per kind (all on by default)."""
        line = self.line_of(r"^\s*\[\s*notifications\s*\]")
        if not isinstance(raw, dict):
            raise self.fail("notifications must be a table", "write [notifications]", line=line)
        for key, value in raw.items():
            if key not in NOTIFICATION_KINDS or not isinstance(value, bool):
                raise self.fail(f"bad notification setting {key!r}",
                                f"use true/false for any of: {', '.join(NOTIFICATION_KINDS)}",
                                line=self.line_of(rf"^\s*\"?{re.escape(key)}\"?\s*=", (line or 1) - 1))
        return {kind: raw.get(kind, True) for kind in NOTIFICATION_KINDS}

    def health(self, raw: Any) -> HealthConfig:
        """[health]: the background probe intervals, in seconds."""
        line = self.line_of(r"^\s*\[\s*health\s*\]")
        if not isinstance(raw, dict):
            raise self.fail("health must be a table", "write [health]", line=line)
        values: dict[str, float] = {}
        for key, value in raw.items():
            key_line = self.line_of(rf"^\s*\"?{re.escape(key)}\"?\s*=", (line or 1) - 1)
            if key not in _HEALTH_KEYS:
                raise self.fail(f"unknown health key {key!r}",
                                f"remove it; known keys: {', '.join(sorted(_HEALTH_KEYS))}",
                                line=key_line)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value) or value <= 0:
                raise self.fail(f"{key} must be a number of seconds above 0, not {value!r}",
                                f"write {key} = 5", line=key_line)
            values[key] = float(value)
        return HealthConfig(**values)

    def server(self, raw: Any) -> ServerConfig:
        line = self.line_of(r"^\s*\[\s*server\s*\]")
        if not isinstance(raw, dict):
            raise self.fail("server must be a table", "write [server]", line=line)
        for key in raw:
            if key not in _SERVER_KEYS:
                raise self.fail(f"unknown server key {key!r}",
                                f"remove it; known keys: {', '.join(sorted(_SERVER_KEYS))}",
                                line=self.line_of(rf"^\s*{re.escape(key)}\s*=", (line or 1) - 1))
        origins = raw.get("allowed_origins", [])
        if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
            raise self.fail("allowed_origins must be a list of strings",
                            'write allowed_origins = ["http://localhost:3000"]', line=line)
        port = raw.get("port", 8741)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise self.fail("server port must be a whole number 0-65535", "write port = 8741",
                            line=line)
        host = raw.get("host", "127.0.0.1")
        enabled = raw.get("enabled", True)
        if not isinstance(enabled, bool):
            raise self.fail("server enabled must be true or false", "write enabled = true",
                            line=line)
        body = raw.get("max_body_bytes", 8 * 1024 * 1024)
        if not isinstance(host, str) or isinstance(body, bool) or not isinstance(body, int) \
                or body <= 0:
            raise self.fail("server host must be a string and max_body_bytes a positive number",
                            'write host = "127.0.0.1"', line=line)
        return ServerConfig(enabled=enabled, host=host, port=port,
                            allowed_origins=tuple(origins), max_body_bytes=body)
