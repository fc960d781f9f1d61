"""What to do when nobody could answer: one short paragraph per provider, with the command.

Read from the router's own vocabulary — each provider's :class:`~router.errors.Attempt`
outcome, its :class:`~router.probing.ProviderStatus`, the config and whether a key is stored —
never from the wording of a message. ``exo-bridge ask``, the chat window and the first-run
assistant all show these paragraphs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from router.config import Config, ProviderConfig, default_config_path
from router.errors import Attempt, LimitCause, Outcome
from router.policy import free_only, paid_failover_allowed
from router.probing import ProviderStatus
from router.providers import HealthState, Role

if TYPE_CHECKING:
    from router.core import Router

EXO_PORT, LEGACY_EXO_PORT = 52415, 8000

_UNREACHABLE = {Outcome.REFUSED, Outcome.TIMEOUT, Outcome.CIRCUIT_OPEN}
_WHY_UNREACHABLE = {Outcome.REFUSED: "connection refused", Outcome.TIMEOUT: "no answer in time",
                    Outcome.CIRCUIT_OPEN: "it failed moments ago"}
_FAILING = {Outcome.SERVER_ERROR, Outcome.BAD_RESPONSE, Outcome.STREAM_CUT}


@dataclass(frozen=True, slots=True)
class Advice:
    """One provider's problem and what fixes it (``commands``: to type, or a config line)."""

    provider: str  # the provider's id
    name: str
    outcome: Outcome  # why it did not answer (the attempt's outcome)
    problem: str  # what is wrong, in a sentence
    fix: str  # what to do, in a sentence (the commands are named in it too)
    commands: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return f"{self.name}: {self.problem} {self.fix}"


@dataclass(frozen=True, slots=True)
class Situation:
    """What the guidance is read from, beside the attempts."""

    config: Config
    model: str = ""  # the model asked for (an alias or a provider's id)
    statuses: Mapping[str, ProviderStatus] | None = None  # by provider id
    has_key: Callable[[ProviderConfig], bool] = lambda _p: False
    local_only: bool = False  # cloud failover paused
    ledger_problem: str | None = None  # the usage ledger cannot record (paid providers off)
    resets_at: datetime | None = None  # when the daily budgets reset (UTC)

    @property
    def config_path(self) -> str:
        """The file to edit: the config's own, or where the defaults would be written."""
        source = self.config.source
        return str(default_config_path()) if source.startswith("<") else source


def guidance(situation: Situation, attempts: Sequence[Attempt]) -> list[Advice]:
    """One piece of advice per provider that did not answer, in the config's order (providers
    not tried for this model, and the one that answered, get none)."""
    last = {a.provider: a for a in attempts}
    found = []
    for provider in situation.config.providers:
        tried = last.get(provider.id)
        if tried is None or tried.outcome is Outcome.OK:
            continue
        advice = _advise(situation, provider, tried)
        if advice is not None:
            found.append(advice)
    return found


def guidance_text(advice: Sequence[Advice]) -> str:
    """The paragraphs, separated by blank lines."""
    return "\n\n".join(a.text for a in advice)


def router_guidance(router: Router, attempts: Sequence[Attempt], model: str = "") -> list[Advice]:
    """``guidance`` with what a running router knows (statuses, keys, pause, ledger, budgets)."""
    ledger = router.ledger
    situation = Situation(
        router.config, model or router.config.default_model or "",
        statuses={s.id: s for s in router.statuses()}, has_key=router.has_key,
        local_only=router.local_only,
        ledger_problem=ledger.problem if ledger is not None and not ledger.can_record else None,
        resets_at=router.budget.resets_at())
    return guidance(situation, attempts)


# -- one provider --------------------------------------------------------------------------
def _advise(s: Situation, provider: ProviderConfig, attempt: Attempt) -> Advice | None:
    outcome = attempt.outcome
    if outcome is Outcome.DISABLED:
        return _advice(provider, outcome, "it is turned off in the config.",
                       f"Set `enabled = true` in its [[providers]] table in {s.config_path} (or tick "
                       "Enabled in Settings…).", f"enabled = true  # in {s.config_path}")
    if provider.traits.local:
        return _local(s, provider, attempt)
    return _cloud(s, provider, attempt)


def _advice(provider: ProviderConfig, outcome: Outcome, problem: str, fix: str,
            *commands: str) -> Advice:
    return Advice(provider.id, provider.name, outcome, problem, fix, tuple(commands))


def exo_start_advice(provider: ProviderConfig, config_path: str, why: str = "") -> Advice:
    """exo is not reachable at any of its addresses: how to start it, where we look."""
    where = " or ".join(provider.base_urls)
    because = f" ({why})" if why else ""
    return _advice(
        provider, Outcome.REFUSED, f"exo is not reachable at {where}{because}.",
        f"Start exo on this machine: run `exo` (exo-bridge looks at http://localhost:{EXO_PORT}, "
        f"and at :{LEGACY_EXO_PORT} where old exo builds listened). If exo runs on another "
        f"machine or port, set base_urls in the exo [[providers]] table of {config_path}.",
        "exo")


def _local(s: Situation, provider: ProviderConfig, attempt: Attempt) -> Advice | None:
    outcome = attempt.outcome
    if outcome in _UNREACHABLE:
        return exo_start_advice(provider, s.config_path, _WHY_UNREACHABLE[outcome])
    model = s.model or attempt.model or ""
    if outcome is Outcome.MODEL_UNAVAILABLE:
        warm = f"exo-bridge exo warm {model}"
        return _advice(provider, outcome, f"exo is running but {model or 'the model'} is not "
                       "loaded there.", f"Load it: `{warm}` (it downloads the model if needed and "
                       "waits until it is ready).", warm)
    if outcome is Outcome.BUSY:
        return _advice(provider, outcome, f"exo is still getting the model ready ({attempt.detail}).",
                       "Wait for it; `exo-bridge status` shows the progress.", "exo-bridge status")
    if outcome in _FAILING:
        return _advice(provider, outcome, f"exo answered with an error ({attempt.detail}).",
                       "Check exo's own output, or restart it (`exo`); `exo-bridge status` shows "
                       "what exo-bridge sees.", "exo-bridge status")
    if outcome is Outcome.OVER_BUDGET:
        return _budget(s, provider, attempt)
    return _advice(provider, outcome, f"it did not answer ({outcome}: {attempt.detail}).",
                   "`exo-bridge status` shows what exo-bridge sees.", "exo-bridge status")


def _cloud(s: Situation, provider: ProviderConfig, attempt: Attempt) -> Advice:
    outcome = attempt.outcome
    pid = provider.id
    set_key = f"exo-bridge keys set {pid}"
    if outcome is Outcome.NO_KEY:
        env = f", or set ${provider.api_key_env}" if provider.api_key_env else ""
        return _advice(provider, outcome, "no API key is stored.",
                       f"Store one: `{set_key}` (it asks for the key and keeps it in the OS "
                       f"keychain{env}).", set_key)
    if outcome is Outcome.INVALID_KEY:
        test = f"exo-bridge keys test {pid}"
        return _advice(provider, outcome, "it rejected the API key.",
                       f"Check it with `{test}`; if it is wrong or revoked, store a new one with "
                       f"`{set_key}`.", test, set_key)
    if outcome is Outcome.NOT_ALLOWED:
        return _not_allowed(s, provider, attempt)
    if outcome is Outcome.OVER_BUDGET:
        return _budget(s, provider, attempt)
    if outcome is Outcome.OUT_OF_CREDITS:
        return _credits(s, provider, attempt)
    if outcome is Outcome.RATE_LIMITED:
        return _advice(provider, outcome, "it is rate-limiting this key for now.",
                       "Try again in a minute; `exo-bridge status` shows when it rests until.",
                       "exo-bridge status")
    if outcome is Outcome.MODEL_UNAVAILABLE:
        return _advice(provider, outcome, f"it does not serve {s.model or 'this model'} now.",
                       f"Ask for another model, or map the alias to one it serves under "
                       f"[models] in {s.config_path}.")
    if outcome in _UNREACHABLE | _FAILING:
        return _advice(provider, outcome, f"it could not be reached or failed ({attempt.detail}).",
                       "Check this machine's network; `exo-bridge status` checks it again.",
                       "exo-bridge status")
    return _advice(provider, outcome, f"it did not answer ({outcome}: {attempt.detail}).",
                   "`exo-bridge status` shows what exo-bridge sees.", "exo-bridge status")


def _not_allowed(s: Situation, provider: ProviderConfig, attempt: Attempt) -> Advice:
    outcome = attempt.outcome
    if s.local_only:
        return _advice(provider, outcome, "cloud failover is paused (local only).",
                       "Untick “Pause cloud failover (local only)” in the tray menu.")
    if s.ledger_problem and provider.costs_money:
        return _advice(provider, outcome, "paid providers are off while the usage ledger cannot "
                       f"record ({s.ledger_problem}).", "Fix the ledger's problem, then restart "
                       "exo-bridge; `exo-bridge status` shows it.", "exo-bridge status")
    if free_only(s.config, s.model) and provider.costs_money:
        return _advice(provider, outcome, f"{s.model} is free-only and {provider.name} would "
                       "charge for it.", f"Remove `free_only` from [models.\"{s.model}\"] in "
                       f"{s.config_path}, or ask for a free model.")
    if provider.paid and not paid_failover_allowed(s.config, s.model):
        line = "allow_paid_failover = true"
        alias = s.config.models.get(s.model)
        where = (f"under [models.\"{s.model}\"]" if alias is not None
                 and alias.allow_paid_failover is False else "at the top")
        fix = (f"To allow it, write `{line}` {where} of {s.config_path} (or choose “allowed” "
               "in Set up…).")
        commands = [f"{line}  # in {s.config_path}"]
        if provider.needs_key and not s.has_key(provider):
            set_key = f"exo-bridge keys set {provider.id}"
            fix += f" It has no API key either: `{set_key}`."
            commands.append(set_key)
        return _advice(provider, outcome, "it costs money and paid failover is turned off.", fix,
                       *commands)
    return _advice(provider, outcome, f"it is not allowed for this request ({attempt.detail}).",
                   f"See {s.config_path}.")


def _status(s: Situation, provider: ProviderConfig) -> ProviderStatus | None:
    return (s.statuses or {}).get(provider.id)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _budget(s: Situation, provider: ProviderConfig, attempt: Attempt) -> Advice:
    status = _status(s, provider)
    ends = status.limit_ends if status is not None and status.limit is LimitCause.FREE_QUOTA else None
    reset = _when(ends or s.resets_at)
    when = f"it resets at {reset}" if reset else "it resets at 00:00 UTC"
    return _advice(provider, attempt.outcome, f"today's limit is used up ({when}).",
                   f"Wait until then, or raise daily_request_limit / daily_token_limit / "
                   f"daily_cost_limit_usd in its [[providers]] table of {s.config_path}.")


def _credits(s: Situation, provider: ProviderConfig, attempt: Attempt) -> Advice:
    status = _status(s, provider)
    cause = status.limit if status is not None else None
    ends = _when(status.limit_ends if status is not None else None)
    problem = f"the account refused: {cause.meaning if cause else 'out of credits'}"
    problem += f" (until {ends})." if ends else "."
    return _advice(provider, attempt.outcome, problem,
                   "Add credit (or raise the key's limit) on the provider's site, then choose "
                   "“Check accounts now” in the tray menu or run `exo-bridge status`.",
                   "exo-bridge status")


def needs_setup(config_existed: bool, statuses: Sequence[ProviderStatus]) -> bool:
    """Whether the tray app opens the first-run assistant by itself: a first run (there was
    no config file at this launch), or nothing can answer and no cloud key is stored."""
    if not config_existed:
        return True
    if not statuses or any(s.can_serve for s in statuses):
        return False
    return all(s.state in (HealthState.NO_KEY, HealthState.DISABLED)
               for s in statuses if s.role is Role.CLOUD)


def config_exists(config: Config) -> bool:
    """Whether the config came from a file that exists (False: the built-in defaults)."""
    return not config.source.startswith("<") and Path(config.source).exists()
