"""The configuration: what it holds (`model.py`, frozen dataclasses), how TOML becomes it with
errors naming the file, the line and the fix (`load.py`, `build.py`, `toml_lines.py`).

Imports: errors and the providers' registry (to know the kinds); nothing under it imports the
config back (the HTTP stack, the keychain and the adapters read a provider's settings through
router/provider_settings.py).
"""

from router.config.load import load_config, parse_config
from router.config.model import (
    APP_NAME,
    DEFAULT_CONFIG_TOML,
    NOTIFICATION_KINDS,
    Config,
    HealthConfig,
    ModelAlias,
    ProviderConfig,
    ServerConfig,
    WarmConsent,
    data_dir,
    default_config_path,
    state_dir,
)
from router.errors import ConfigError

__all__ = ["APP_NAME", "DEFAULT_CONFIG_TOML", "NOTIFICATION_KINDS", "Config", "ConfigError", "HealthConfig",
           "ModelAlias", "ProviderConfig", "ServerConfig", "WarmConsent", "data_dir",
           "default_config_path", "load_config", "parse_config", "state_dir"]
