"""Exo Bridge's Qt-free core: Exo-first failover over OpenAI-compatible providers.

This module is the core's public API: the desktop imports only what is listed here (the tests
hold it), except its operations layer (desktop/operations.py), which does the stores' I/O, and
the endpoint and CLI, imported where they start. Nothing here imports an HTTP library or Qt.
"""

from router.accounts.reconcile import Reconciliation
from router.accounts.status import AccountStatus
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
    describe_attempts,
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
    progress_text,
)
from router.exo.cluster import Cluster, Problem, Stage, Warming
from router.exo.discover import Found, configured
from router.exo.events import ClusterProblem, ModelWarming, NodeChanged
from router.exo.view import cluster_lines, problem_line, warming_line
from router.journey import ChatStream
from router.keys import Secret
from router.ledger.ledger import Ledger
from router.ledger.usage import UsageRow
from router.money.figures import requests_text
from router.money.terms import CostSource
from router.money.usd import usd
from router.policy import PAID_WAITS, Candidate, charges
from router.probing import ProviderStatus
from router.providers import HealthState, Kind, Role, Snapshot
from router.result import Result, footer_text
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

__all__ = [
    "DEFAULT_CONFIG_TOML",
    "NOTIFICATION_KINDS",
    "PAID_WAITS",
    "AccountLimited",
    "AccountStatus",
    "Advice",
    "Attempt",
    "BillDrift",
    "BudgetAlert",
    "BudgetLevel",
    "Candidate",
    "ChatStream",
    "Cluster",
    "ClusterActionFailed",
    "ClusterProblem",
    "Config",
    "ConfigError",
    "CostAnomaly",
    "CostSource",
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
    "charges",
    "cluster_lines",
    "config_exists",
    "configured",
    "default_config_path",
    "describe_attempts",
    "exo_start_advice",
    "footer_text",
    "guidance",
    "guidance_text",
    "load_config",
    "needs_setup",
    "parse_config",
    "problem_line",
    "progress_text",
    "requests_text",
    "router_guidance",
    "usd",
    "warming_line",
]
