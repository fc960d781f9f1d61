"""Parsed TOML to a Config: every mistake is a ConfigError naming the file, the line, the key and
the fix (router/config/load.py calls this; toml_lines.py finds the lines)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from router.config.model import (
    NOTIFICATION_KINDS,
    Config,
    HealthConfig,
    ModelAlias,
    ProviderConfig,
    ServerConfig,
    WarmConsent,
)
from router.config.toml_lines import Lines
from router.errors import ConfigError
from router.providers import kind_named, kind_names

_PROVIDER_KEYS = {
    "id", "kind", "name", "base_url", "base_urls", "priority", "enabled", "paid",
    "daily_request_limit", "daily_token_limit", "daily_cost_limit_usd",
    "connect_timeout_s", "first_token_timeout_s", "idle_timeout_s", "total_timeout_s", "api_key_env",
    "prefill_timeout_s",
    "prompt_price_per_mtok", "completion_price_per_mtok", "max_connections", "max_queued",
    "max_response_bytes", "max_decompressed_bytes", "max_line_bytes", "credit_floor_usd",
}
_TOP_KEYS = {"providers", "models", "allow_paid_failover", "server", "notifications", "health"}
_HEALTH_KEYS = {"exo_probe_interval_s", "cloud_probe_interval_s"}
_SERVER_KEYS = {"enabled", "host", "port", "allowed_origins", "max_body_bytes", "max_connections",
                "header_timeout_s", "body_timeout_s", "keepalive_timeout_s"}
_ID_RE = re.compile(r"^[a-z0-9-]+$")
MAX_SECONDS = 86400.0
Where = Callable[[str], int]  # key -> the line to name


def _is_number(value: Any, integer: bool) -> bool:
    if isinstance(value, bool):
        return False
    if integer:
        return isinstance(value, int)
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


class Builder:
    def __init__(self, text: str, source: str):
        self.at = Lines(text)
        self.source = source

    def fail(self, message: str, fix: str, line: int) -> ConfigError:
        return ConfigError(self.source, message, line=line, fix=fix)

    def build(self, raw: dict[str, Any]) -> Config:
        for key in raw:
            if key not in _TOP_KEYS:
                raise self.fail(f"unknown key {key!r}", f"remove it; known keys: "
                                f"{', '.join(sorted(_TOP_KEYS))}", self.at.find(key))
        providers = self.providers(raw.get("providers"))
        known = {p.id: p for p in providers}
        models = self.models(raw.get("models", {}), known)
        paid = raw.get("allow_paid_failover", True)
        if not isinstance(paid, bool):
            raise self.fail("allow_paid_failover must be true or false", "write true or false",
                            self.at.find("allow_paid_failover"))
        return Config(providers=tuple(sorted(providers, key=lambda p: p.priority)),
                      models=models, allow_paid_failover=paid,
                      server=self.server(raw.get("server", {})),
                      notifications=self.notifications(raw.get("notifications", {})),
                      health=self.health(raw.get("health", {})), source=self.source)

    # -- where -----------------------------------------------------------------------------
    def table_line(self, name: str, key: str | None = None) -> int:
        """A key of the ``[name]`` table (or its header), or the line that names the table
        when it is written inline or with dotted keys."""
        header = self.at.table(name)
        if header is None:  # written inline or with dotted keys: the line that sets it
            return self.at.find(name)
        if key is None:
            return header
        following = self.at.first(r"^\s*\[", header)
        return self.at.key(key, header, following - 1 if following else None) or header

    def provider_line(self, index: int, key: str | None = None) -> int:
        headers = self.at.array_tables("providers")
        if index >= len(headers):
            return self.at.find("providers")
        start = headers[index]
        if key is None:
            return start + 1
        following = self.at.first(r"^\s*\[", start + 1)
        return self.at.key(key, start + 1, following - 1 if following else None) or start + 1

    # -- values ----------------------------------------------------------------------------
    def number(self, table: dict[str, Any], key: str, default: float | None, where: Where, *,
               integer: bool = False) -> Any:
        value = table.get(key, default)
        if value is not None and not _is_number(value, integer):
            kind = "a whole number" if integer else "a number"
            raise self.fail(f"{key} must be {kind}, not {value!r}", f"write {key} = <{kind}>",
                            where(key))
        return value

    def limit(self, table: dict[str, Any], key: str, where: Where, *, integer: bool = False) -> Any:
        value = self.number(table, key, None, where, integer=integer)
        if value is not None and value < 0:
            raise self.fail(f"{key} must not be negative ({value})",
                            f"use 0 or more, or remove {key} for no limit", where(key))
        return value

    def seconds(self, table: dict[str, Any], key: str, default: float, where: Where) -> float:
        value = self.number(table, key, default, where)
        if not 0 < value <= MAX_SECONDS:
            raise self.fail(f"{key} must be more than 0 and at most {MAX_SECONDS:g} seconds "
                            f"(a day), not {value}", f"write {key} = <seconds>", where(key))
        return float(value)

    def count(self, table: dict[str, Any], key: str, default: int, where: Where, *,
              least: int = 1) -> int:
        value = self.number(table, key, default, where, integer=True)
        if value < least:
            raise self.fail(f"{key} must be {least} or more, not {value}",
                            f"write {key} = <a whole number, {least} or more>", where(key))
        return int(value)

    def flag(self, table: dict[str, Any], key: str, default: bool, where: Where) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{key} must be true or false", f"write {key} = true or false",
                            where(key))
        return value

    # -- providers -------------------------------------------------------------------------
    def providers(self, raw: Any) -> list[ProviderConfig]:
        if raw is None or raw == []:
            raise self.fail("no [[providers]] defined", "add at least one [[providers]] table "
                            "with an id and a kind (see the README's Configuration section)",
                            self.at.key("providers") or self.at.last)
        if not isinstance(raw, list):
            raise self.fail("providers must be an array of tables", "write [[providers]]",
                            self.at.find("providers"))
        result: list[ProviderConfig] = []
        for index, table in enumerate(raw):
            if not isinstance(table, dict):
                raise self.fail(f"provider #{index + 1} is not a table ({table!r})",
                                "write each provider as a [[providers]] table",
                                self.provider_line(index))
            provider = self.provider(index, table)
            if provider.id in {p.id for p in result}:
                raise self.fail(f"duplicate provider id {provider.id!r}",
                                "give every provider a unique id", self.provider_line(index, "id"))
            result.append(provider)
        return result

    def provider(self, index: int, table: dict[str, Any]) -> ProviderConfig:
        def where(key: str) -> int:
            return self.provider_line(index, key)

        for key in table:
            if key not in _PROVIDER_KEYS:
                raise self.fail(f"unknown provider key {key!r}",
                                f"remove it; known keys: {', '.join(sorted(_PROVIDER_KEYS))}",
                                where(key))
        pid = self.text(index, table, "id", required=True)
        if not _ID_RE.match(pid):
            raise self.fail(f"provider id {pid!r} is not of [a-z0-9-]+",
                            "use lower-case letters, digits and dashes", where("id"))
        kind = self.text(index, table, "kind", required=True)
        if kind not in kind_names():
            raise self.fail(f"unknown provider kind {kind!r}", f"use one of {', '.join(kind_names())}",
                            where("kind"))
        return ProviderConfig(
            id=pid, kind=kind, name=self.text(index, table, "name") or pid,
            base_urls=self.urls(index, table, kind),
            priority=int(self.number(table, "priority", 0, where, integer=True)),
            enabled=self.flag(table, "enabled", True, where),
            paid=self.flag(table, "paid", False, where),
            daily_request_limit=self.limit(table, "daily_request_limit", where, integer=True),
            daily_token_limit=self.limit(table, "daily_token_limit", where, integer=True),
            daily_cost_limit_usd=self.limit(table, "daily_cost_limit_usd", where),
            api_key_env=self.text(index, table, "api_key_env"),
            prompt_price_per_mtok=self.limit(table, "prompt_price_per_mtok", where),
            completion_price_per_mtok=self.limit(table, "completion_price_per_mtok", where),
            credit_floor_usd=self.credit_floor(table, kind, where),
            **self.deadlines(table, kind, where), **self.capacity(table, where))

    def credit_floor(self, table: dict[str, Any], kind: str, where: Where) -> float | None:
        value = self.limit(table, "credit_floor_usd", where)
        if value is not None and not kind_named(kind).reports_account:
            telling = [k for k in kind_names() if kind_named(k).reports_account]
            raise self.fail(f"credit_floor_usd needs a provider whose key call reports its "
                            f"credit; kind {kind!r} does not",
                            f"remove credit_floor_usd here (kinds that report credit: "
                            f"{', '.join(telling)})", where("credit_floor_usd"))
        return None if value is None else float(value)

    def deadlines(self, table: dict[str, Any], kind: str, where: Where) -> dict[str, Any]:
        connect, first, idle = kind_named(kind).deadlines
        defaults = ProviderConfig(id="", kind=kind, name="", base_urls=())
        return {"connect_timeout_s": self.seconds(table, "connect_timeout_s", connect, where),
                "first_token_timeout_s": self.seconds(table, "first_token_timeout_s", first, where),
                "idle_timeout_s": self.seconds(table, "idle_timeout_s", idle, where),
                "total_timeout_s": self.seconds(table, "total_timeout_s", defaults.total_timeout_s,
                                                where),
                "prefill_timeout_s": self.seconds(table, "prefill_timeout_s",
                                                  defaults.prefill_timeout_s, where)}

    def capacity(self, table: dict[str, Any], where: Where) -> dict[str, Any]:
        d = ProviderConfig(id="", kind="", name="", base_urls=())
        return {"max_connections": self.count(table, "max_connections", d.max_connections, where),
                "max_queued": self.count(table, "max_queued", d.max_queued, where, least=0),
                "max_response_bytes": self.count(table, "max_response_bytes", d.max_response_bytes,
                                                 where),
                "max_decompressed_bytes": self.count(table, "max_decompressed_bytes",
                                                     d.max_decompressed_bytes, where),
                "max_line_bytes": self.count(table, "max_line_bytes", d.max_line_bytes, where)}

    def text(self, index: int, table: dict[str, Any], key: str, *, required: bool = False) -> Any:
        value = table.get(key)
        if value is None:
            if required:
                raise self.fail(f"provider #{index + 1} has no {key!r}", f"add {key} = \"...\"",
                                self.provider_line(index))
            return None
        if not isinstance(value, str) or not value:
            raise self.fail(f"{key} must be a non-empty string", f"write {key} = \"...\"",
                            self.provider_line(index, key))
        return value

    def urls(self, index: int, table: dict[str, Any], kind: str) -> tuple[str, ...]:
        if "base_url" in table and "base_urls" in table:
            raise self.fail("both base_url and base_urls given", "keep only one",
                            self.provider_line(index, "base_urls"))
        if "base_url" not in table and "base_urls" not in table:
            default = kind_named(kind).default_base_url
            if default is not None:
                return (default,)
            raise self.fail("base_url is missing (an OpenAI-compatible server has no default)",
                            'write base_url = "https://host/v1"', self.provider_line(index, "kind"))
        key = "base_urls" if "base_urls" in table else "base_url"
        value = table[key]
        urls = [value] if isinstance(value, str) else value
        if not isinstance(urls, list) or not urls or not all(
                isinstance(u, str) and re.match(r"^https?://[^/\s]+", u) for u in urls):
            raise self.fail(f"{key} must be http(s) URL(s)",
                            'write base_url = "https://host/v1" (exo: base_urls = ["http://host:52415"])',
                            self.provider_line(index, key))
        if not kind_named(kind).several_nodes and len(urls) > 1:
            raise self.fail("only an exo provider takes several base_urls",
                            "keep one base_url", self.provider_line(index, key))
        return tuple(u.rstrip("/") for u in urls)

    # -- models ----------------------------------------------------------------------------
    def models(self, raw: Any, known: dict[str, ProviderConfig]) -> dict[str, ModelAlias]:
        if not isinstance(raw, dict):
            raise self.fail("models must be a table of aliases", 'write [models."name"]',
                            self.at.find("models"))
        return {name: self.alias(name, table, known) for name, table in raw.items()}

    def alias(self, name: str, table: Any, known: dict[str, ProviderConfig]) -> ModelAlias:
        n = re.escape(name)
        line = self.at.first(rf"""^\s*\[\s*models\s*\.\s*(?:{n}|"{n}"|'{n}')\s*\]""") \
            or self.at.find(name)
        if not isinstance(table, dict):
            raise self.fail(f"model alias {name!r} must be a table",
                            f'write [models."{name}"] with provider = "model id" lines', line)
        ids: dict[str, tuple[str, ...]] = {}
        flags: dict[str, bool] = {}
        warm = WarmConsent.ASK
        for key, value in table.items():
            key_line = self.at.key(key, line - 1) or line
            if key == "warm_on_exo":
                warm = self.warm_consent(name, value, key_line)
                continue
            if key in ("allow_paid_failover", "free_only"):
                if not isinstance(value, bool):
                    raise self.fail(f"{key} must be true or false", "write true or false",
                                    key_line)
                flags[key] = value
                continue
            if key not in known:
                raise self.fail(f"model alias {name!r} names unknown provider {key!r}",
                                f"use one of the provider ids: {', '.join(sorted(known))}", key_line)
            values = [value] if isinstance(value, str) else value
            if not isinstance(values, list) or not values or not all(
                    isinstance(v, str) and v for v in values):
                raise self.fail(f"model id for {key!r} in alias {name!r} must be a string or a "
                                "list of strings", f'write {key} = "model-id"', key_line)
            ids[key] = tuple(values)
        if flags.get("free_only"):
            self.free_alias(name, ids, known, line)
        return ModelAlias(name=name, ids=ids, allow_paid_failover=flags.get("allow_paid_failover"),
                          free_only=flags.get("free_only", False), warm_on_exo=warm)

    def warm_consent(self, alias: str, value: Any, line: int) -> WarmConsent:
        """``warm_on_exo``: load the model on the local cluster when it could run it."""
        choices = ", ".join(f'"{c}"' for c in WarmConsent)
        if not isinstance(value, str) or value not in set(WarmConsent):
            raise self.fail(f"warm_on_exo in alias {alias!r} must be one of {choices}, not {value!r}",
                            'write warm_on_exo = "ask" (or "always", or "never")', line)
        return WarmConsent(value)

    def free_alias(self, name: str, ids: dict[str, tuple[str, ...]],
                   known: dict[str, ProviderConfig], line: int) -> None:
        """A free_only alias lists only what costs nothing: a provider that never charges, or
        a free variant of one that does."""
        for pid, model_ids in ids.items():
            traits = known[pid].traits
            charged = [m for m in model_ids if not traits.is_free_variant(m)]
            if not known[pid].costs_money or not charged:
                continue
            fix = (f"use its free variant ({charged[0]}{traits.free_suffix}) or remove {pid} "
                   "from this alias" if traits.free_suffix else
                   f"remove {pid} from this alias: it charges for every request")
            raise self.fail(f"model alias {name!r} is free_only, but {pid} would charge for "
                            f"{charged[0]!r}", fix, self.at.key(pid, line - 1) or line)

    # -- [notifications] and [server] ------------------------------------------------------
    def notifications(self, raw: Any) -> dict[str, bool]:
        """[notifications]: one true/false per kind (all on by default)."""
        if not isinstance(raw, dict):
            raise self.fail("notifications must be a table", "write [notifications]",
                            self.table_line("notifications"))
        for key, value in raw.items():
            if key not in NOTIFICATION_KINDS or not isinstance(value, bool):
                raise self.fail(f"bad notification setting {key!r}",
                                f"use true/false for any of: {', '.join(NOTIFICATION_KINDS)}",
                                self.table_line("notifications", key))
        return {kind: raw.get(kind, True) for kind in NOTIFICATION_KINDS}

    def health(self, raw: Any) -> HealthConfig:
        """[health]: the background probe intervals, in seconds."""
        if not isinstance(raw, dict):
            raise self.fail("health must be a table", "write [health]", self.table_line("health"))
        values: dict[str, float] = {}
        for key, value in raw.items():
            where = self.table_line("health", key)
            if key not in _HEALTH_KEYS:
                raise self.fail(f"unknown health key {key!r}",
                                f"remove it; known keys: {', '.join(sorted(_HEALTH_KEYS))}", where)
            if not _is_number(value, False) or not 0 < value <= MAX_SECONDS:
                raise self.fail(f"{key} must be a number of seconds above 0, not {value!r}",
                                f"write {key} = 5", where)
            values[key] = float(value)
        return HealthConfig(**values)

    def server(self, raw: Any) -> ServerConfig:
        def where(key: str) -> int:
            return self.table_line("server", key)

        if not isinstance(raw, dict):
            raise self.fail("server must be a table", "write [server]", self.table_line("server"))
        for key in raw:
            if key not in _SERVER_KEYS:
                raise self.fail(f"unknown server key {key!r}",
                                f"remove it; known keys: {', '.join(sorted(_SERVER_KEYS))}", where(key))
        origins = raw.get("allowed_origins", [])
        if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
            raise self.fail("allowed_origins must be a list of strings",
                            'write allowed_origins = ["http://localhost:3000"]', where("allowed_origins"))
        port = self.number(raw, "port", 8741, where, integer=True)
        if not 0 <= port <= 65535:
            raise self.fail("server port must be a whole number 0-65535", "write port = 8741",
                            where("port"))
        host = raw.get("host", "127.0.0.1")
        if not isinstance(host, str) or not host:
            raise self.fail("server host must be a non-empty string", 'write host = "127.0.0.1"',
                            where("host"))
        d = ServerConfig()
        return ServerConfig(
            enabled=self.flag(raw, "enabled", True, where), host=host, port=port,
            allowed_origins=tuple(origins),
            max_body_bytes=self.count(raw, "max_body_bytes", d.max_body_bytes, where),
            max_connections=self.count(raw, "max_connections", d.max_connections, where),
            header_timeout_s=self.seconds(raw, "header_timeout_s", d.header_timeout_s, where),
            body_timeout_s=self.seconds(raw, "body_timeout_s", d.body_timeout_s, where),
            keepalive_timeout_s=self.seconds(raw, "keepalive_timeout_s", d.keepalive_timeout_s,
                                             where))
