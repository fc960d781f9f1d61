"""Exo Bridge's Qt-free core: Exo-first failover over OpenAI-compatible providers.

This module is the core's public API: the desktop imports only what is listed here (the tests
hold it), except its operations layer (desktop/operations.py), which does the stores' I/O, and
the endpoint and CLI, imported where they start. Nothing here imports an HTTP library or Qt.
"""

from router.account_status import AccountStatus
from router.cli_stream import progress_text
from router.cluster import Cluster, Problem, Stage, Warming
from router.cluster_events import ClusterProblem, ModelWarming, NodeChanged
from router.cluster_view import cluster_lines, problem_line, warming_line
from router.config import (
    DEFAULT_CONFIG_TOML,
    NOTIFICATION_KINDS,
    Config,
    ModelAlias,
    ProviderConfig,
    default_config_path,
    load_config,
    parse_config,
)
from router.core import Router, Timing
from router.crashes import Crash, CrashWatch
from router.discover import Found, configured
from router.errors import (
    Attempt,
    ClusterActionFailed,
    ConfigError,
    EndpointError,
    ExoBridgeError,
    KeychainUnavailable,
    LedgerCorrupt,
    LedgerUnavailable,
    LimitCause,
    NoProviderAvailable,
    Outcome,
    RequestRejected,
    RoutingError,
    StreamBroken,
    UnknownModel,
)
from router.events import (
    AccountLimited,
    BillDrift,
    BudgetAlert,
    BudgetLevel,
    CostAnomaly,
    CreditAlert,
    CreditLevel,
    CreditWall,
    Failover,
    HealthChanged,
    LedgerProblem,
    PromptProgress,
    RequestFinished,
    UsageInvalid,
)
from router.journey import ChatStream
from router.keys import Secret
from router.ledger import Ledger
from router.money import usd
from router.probing import ProviderStatus
from router.providers import HealthState, Kind, Role, Snapshot
from router.reconcile import Reconciliation
from router.result import Result
from router.setup_guide import (
    Advice,
    Situation,
    config_exists,
    exo_start_advice,
    guidance,
    guidance_text,
    needs_setup,
    router_guidance,
)
from router.usage import UsageRow

__all__ = [
    "DEFAULT_CONFIG_TOML",
    "NOTIFICATION_KINDS",
    "AccountLimited",
    "AccountStatus",
    "Advice",
    "Attempt",
    "BillDrift",
    "BudgetAlert",
    "BudgetLevel",
    "ChatStream",
    "Cluster",
    "ClusterActionFailed",
    "ClusterProblem",
    "Config",
    "ConfigError",
    "CostAnomaly",
    "Crash",
    "CrashWatch",
    "CreditAlert",
    "CreditLevel",
    "CreditWall",
    "EndpointError",
    "ExoBridgeError",
    "Failover",
    "Found",
    "HealthChanged",
    "HealthState",
    "KeychainUnavailable",
    "Kind",
    "Ledger",
    "LedgerCorrupt",
    "LedgerProblem",
    "LedgerUnavailable",
    "LimitCause",
    "ModelAlias",
    "ModelWarming",
    "NoProviderAvailable",
    "NodeChanged",
    "Outcome",
    "Problem",
    "PromptProgress",
    "ProviderConfig",
    "ProviderStatus",
    "Reconciliation",
    "RequestFinished",
    "RequestRejected",
    "Result",
    "Role",
    "Router",
    "RoutingError",
    "Secret",
    "Situation",
    "Snapshot",
    "Stage",
    "StreamBroken",
    "Timing",
    "UnknownModel",
    "UsageInvalid",
    "UsageRow",
    "Warming",
    "cluster_lines",
    "config_exists",
    "configured",
    "default_config_path",
    "exo_start_advice",
    "guidance",
    "guidance_text",
    "load_config",
    "needs_setup",
    "parse_config",
    "problem_line",
    "progress_text",
    "router_guidance",
    "usd",
    "warming_line",
]
