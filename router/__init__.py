"""Exo Bridge's Qt-free core: Exo-first failover over OpenAI-compatible providers."""

from router.config import Config, ModelAlias, ProviderConfig, load_config
from router.core import ProviderStatus, Router, Timing
from router.errors import (
    Attempt,
    ConfigError,
    ExoBridgeError,
    KeychainUnavailable,
    NoProviderAvailable,
    Outcome,
    RequestRejected,
    RoutingError,
    StreamBroken,
)
from router.events import BudgetAlert, CostAnomaly, Failover, HealthChanged, RequestFinished
from router.journey import ChatStream
from router.result import Result

__all__ = [
    "Attempt",
    "BudgetAlert",
    "ChatStream",
    "Config",
    "ConfigError",
    "CostAnomaly",
    "ExoBridgeError",
    "Failover",
    "HealthChanged",
    "KeychainUnavailable",
    "ModelAlias",
    "NoProviderAvailable",
    "Outcome",
    "ProviderConfig",
    "ProviderStatus",
    "RequestFinished",
    "RequestRejected",
    "Result",
    "Router",
    "RoutingError",
    "StreamBroken",
    "Timing",
    "load_config",
]
