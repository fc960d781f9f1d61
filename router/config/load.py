"""The configuration loaded from TOML with friendly errors.

Path: ``--config FILE``, else ``$EXO_BRIDGE_CONFIG``, else ``config.toml`` in the user config
dir. A missing file means the built-in defaults (``DEFAULT_CONFIG_TOML``).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

from router.config.build import Builder
from router.config.model import DEFAULT_CONFIG_TOML, Config, default_config_path
from router.errors import ConfigError


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
        data = target.read_bytes()
    except OSError as exc:
        raise ConfigError(str(target), f"cannot read the file ({exc.strerror or exc.__class__.__name__})",
                          fix="make it a readable file (check its permissions)") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        raise ConfigError(str(target), f"not UTF-8 text (byte {data[exc.start]:#04x} at column "
                          f"{exc.start - line_start + 1})", line=data.count(b"\n", 0, exc.start) + 1,
                          fix="save the file as UTF-8, or retype that line's non-ASCII characters") \
            from None
    return parse_config(text, str(target))


def parse_config(text: str, source: str) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, f"not valid TOML: {exc}", line=_toml_error_line(str(exc), text),
                          fix="correct the TOML syntax on that line") from None
    return Builder(text, source).build(raw)


def _toml_error_line(message: str, text: str) -> int:
    found = re.search(r"line (\d+)", message)
    if found:
        return int(found.group(1))
    return max(1, len(text.splitlines()))  # "at end of document": the last line
