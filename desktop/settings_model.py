"""Editing the config file from the settings window (no Qt here).

Edits go through tomlkit, so the user's comments and layout survive; the new text is checked
with the router's own loader before it is written (atomically: a temporary file, then a
rename). A file the user broke by hand is never overwritten: ``load`` raises the ConfigError,
which the window shows with a button to open the file.

The file may change while the window is open (the first-run assistant, another window, the
user's editor). Every write first catches up with the file on disk, and the window's save
writes only the fields the user changed since it loaded, so nobody's change is lost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT, Table

from router import DEFAULT_CONFIG_TOML, Config, ConfigError, default_config_path, parse_config


@dataclass
class ProviderEdit:
    """What the settings window may change about one provider."""

    id: str
    name: str
    kind: str
    enabled: bool
    paid: bool
    base_urls: list[str]
    daily_request_limit: int | None
    daily_token_limit: int | None
    daily_cost_limit_usd: float | None
    several_nodes: bool = False  # its kind takes several base_urls (a cluster's nodes)


@dataclass
class ServerEdit:
    enabled: bool
    port: int


NotificationEdit = dict[str, bool]  # kind -> on


@dataclass(frozen=True)
class _Loaded:
    """What the window was shown: a save writes only where its edits differ from this."""

    providers: dict[str, ProviderEdit]
    order: list[str]
    server: ServerEdit
    notifications: NotificationEdit


class SettingsDocument:
    def __init__(self, path: Path | None = None):
        self.path = path or default_config_path()
        self.text = ""
        self.doc: tomlkit.TOMLDocument = tomlkit.document()
        self.config: Config | None = None
        self._loaded: _Loaded | None = None

    def load(self) -> Config:
        """Read the file (or the defaults when there is none). Raises ConfigError if broken."""
        config = self._read(self.path.read_text(encoding="utf-8") if self.path.exists()
                            else DEFAULT_CONFIG_TOML)
        self._loaded = self._shown()
        return config

    def _read(self, text: str) -> Config:
        self.config = parse_config(text, str(self.path))
        self.text, self.doc = text, tomlkit.parse(text)
        return self.config

    def _catch_up(self) -> None:
        """Take in what was written to the file since it was read (by the first-run assistant,
        another window or an editor), on a fresh copy of its text: an edit that failed before
        (it would not load, the disk was full) leaves nothing behind in the next one. Raises
        ConfigError if the file is broken now."""
        if self.path.exists():
            on_disk = self.path.read_text(encoding="utf-8")
            if on_disk != self.text:
                self._read(on_disk)
                return
        self.doc = tomlkit.parse(self.text) if self.text else tomlkit.document()

    def _shown(self) -> _Loaded:
        providers = self.providers()
        return _Loaded({p.id: p for p in providers}, [p.id for p in providers], self.server(),
                       self.notifications())

    def providers(self) -> list[ProviderEdit]:
        assert self.config is not None
        return [ProviderEdit(p.id, p.name, p.kind, p.enabled, p.paid, list(p.base_urls),
                             p.daily_request_limit, p.daily_token_limit, p.daily_cost_limit_usd,
                             p.traits.several_nodes)
                for p in self.config.providers]

    def server(self) -> ServerEdit:
        assert self.config is not None
        return ServerEdit(self.config.server.enabled, self.config.server.port)

    def notifications(self) -> NotificationEdit:
        assert self.config is not None
        return dict(self.config.notifications)

    def save(self, providers: list[ProviderEdit], server: ServerEdit,
             notifications: NotificationEdit | None = None) -> Config:
        """Write the edits that differ from what was loaded (priority = the order given, if the
        user changed the order) onto the file as it is now, atomically. Raises ConfigError,
        writing nothing, if the file is broken now or the result would not load."""
        shown = self._loaded or self._shown()
        self._catch_up()
        tables = self._provider_tables()
        reordered = [p.id for p in providers] != shown.order
        for priority, edit in enumerate(providers):
            if (table := tables.get(edit.id)) is not None:  # not removed from the file meanwhile
                _apply(table, edit, shown.providers.get(edit.id))
                if reordered:
                    table["priority"] = priority
        moved = {key: getattr(server, key) for key in ("enabled", "port")
                 if getattr(server, key) != getattr(shown.server, key)}
        if moved:  # no [server] table for a save that changed nothing there
            self._table("server").update(moved)
        if notifications is not None:
            changed = {kind: on for kind, on in notifications.items()
                       if shown.notifications.get(kind) != on}
            if changed:
                self._table("notifications").update(changed)
        config = self._write()
        self._loaded = self._shown()
        return config

    def _table(self, name: str) -> Table:
        section = self.doc.get(name)
        if section is None:
            section = tomlkit.table()
            self.doc[name] = section
        return section

    # -- the first-run assistant's edits (each written at once, comments kept) -------------
    def paid_failover_chosen(self) -> bool | None:
        """``allow_paid_failover`` as the file says it, or None when the file does not (the
        user has not chosen: the built-in default is not a choice)."""
        value = self.doc.get("allow_paid_failover")
        return bool(value) if value is not None else None

    def set_paid_failover(self, allowed: bool,
                          daily_usd: dict[str, float | None] | None = None) -> Config:
        """``allow_paid_failover`` at the top of the file, and with it each paid provider's
        ``daily_cost_limit_usd`` (None: no limit), in one write."""
        self._catch_up()
        self.doc["allow_paid_failover"] = allowed
        tables = self._provider_tables()
        for provider_id, limit in (daily_usd or {}).items():
            if provider_id in tables:
                _set(tables[provider_id], "daily_cost_limit_usd", limit)
        return self._write()

    def use_address(self, provider_id: str, url: str) -> Config:
        """Put ``url`` first in the provider's ``base_urls`` (requests go to the first that
        answers)."""
        self._catch_up()
        table = self._provider_tables()[provider_id]
        old = table.get("base_urls")
        urls = [str(u) for u in old] if old is not None else (
            [str(table["base_url"])] if "base_url" in table else [])
        if "base_url" in table:
            del table["base_url"]
        table["base_urls"] = [url] + [u for u in urls if u != url]
        return self._write()

    def ensure_written(self) -> bool:
        """Write the file as it stands when there is none yet (the defaults, on a first run),
        so that the next start is no first run. True if it was written now."""
        if self.path.exists():
            return False
        if not self.text:
            self.load()
        self._write()
        return True

    def _write(self) -> Config:
        text = tomlkit.dumps(self.doc)
        config = parse_config(text, str(self.path))  # never write what would not load
        if text == self.text and self.path.exists():  # nothing changed: the file is left alone
            self.config = config
            return config
        try:
            _write_atomically(self.path, text)
        except OSError as exc:  # a full or read-only disk: said, like a broken file
            raise ConfigError(str(self.path), f"cannot be written ({exc.strerror or exc})",
                              fix="free some disk space or make its folder writable, then "
                                  "save again") from None
        self.text, self.config = text, config
        return config

    def _provider_tables(self) -> dict[str, Table]:
        found = self.doc.get("providers")
        items = list(found) if isinstance(found, AoT | list) else []
        return {str(table["id"]): table for table in items}


def _set(table: Table, key: str, value: Any) -> None:
    if value is None:
        if key in table:
            del table[key]
    else:
        table[key] = value


def _apply(table: Table, edit: ProviderEdit, shown: ProviderEdit | None) -> None:
    """The provider's fields the user changed (all of them for one the window did not show)."""
    def changed(name: str) -> bool:
        return shown is None or getattr(edit, name) != getattr(shown, name)

    for name in ("enabled", "paid"):
        if changed(name):
            table[name] = getattr(edit, name)
    if changed("base_urls"):
        if edit.several_nodes or "base_urls" in table:
            if "base_url" in table:
                del table["base_url"]
            table["base_urls"] = list(edit.base_urls)
        else:
            table["base_url"] = edit.base_urls[0]
    for name in ("daily_request_limit", "daily_token_limit", "daily_cost_limit_usd"):
        if changed(name):
            _set(table, name, getattr(edit, name))


def _write_atomically(path: Path, text: str) -> None:
    """The file whole or as it was, never half written; no partial file is left behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except OSError:
        partial.unlink(missing_ok=True)
        raise
