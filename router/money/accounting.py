"""What each attempt used and cost, as the ledger, the budgets and the caller see it.

The provider's numbers are checked (router.money.usage_guard) and costed (router.money.pricing); a cut
answer counts at least what was seen; the budget's hold is settled; an impossible usage or an
odd reported cost is announced; the request's rows (with what an answer on the user's own
hardware saved) go to the ledger.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from router.errors import Attempt, Outcome
from router.events import CostAnomaly, EventHub, UsageInvalid
from router.journey import Run, Trace
from router.ledger.rows import Row, rows_for
from router.money.terms import Flag
from router.money.usage_guard import MAX_COST_USD, checked_usage, cost_usd
from router.policy import candidates
from router.result import Result

if TYPE_CHECKING:
    from router.config import Config
    from router.ledger.ledger import Ledger
    from router.money.budget import Budget
    from router.money.pricing import Pricer

log = logging.getLogger(__name__)


@dataclass
class Accountant:
    config: Config
    pricer: Pricer
    budget: Budget
    events: EventHub
    _announced: set[str] = field(default_factory=set)  # providers whose usage was impossible

    def attempt(self, trace: Trace, run: Run, outcome: Outcome, detail: str) -> Attempt:
        """The attempt as recorded: its usage and cost, checked; its budget hold settled."""
        usage, flags = checked_usage(run.assembler.usage, trace.prompt_chars,
                                     run.assembler.completion_chars)
        if run.capped:  # cut before the provider's own count came: at least what was seen
            flags = (*flags, Flag.CAPPED)
            usage["completion_tokens"] = max(usage["completion_tokens"], run.content_chunks)
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        cost, source, cost_flags = self.pricer.cost(run.provider, run.model_id, usage,
                                                    Flag.USAGE_ESTIMATED in flags, run.wire.response_headers)
        flags = (*flags, *(f for f in cost_flags if f not in flags))
        if cost_usd(cost) is None:  # a price list's absurd figure times many tokens
            invalid = () if Flag.USAGE_INVALID in flags else (Flag.USAGE_INVALID,)
            cost, flags = MAX_COST_USD, (*flags, *invalid)
        record = Attempt(run.provider.id, outcome, detail, run.ms(), run.model_id,
                         ttft_ms=run.ttft_ms(), usage=usage, cost_usd=cost, cost_source=source,
                         flags=flags, day=run.reservation.day.isoformat(),
                         reservation=run.reservation.id)
        self.budget.settle(run.reservation, record, run.provider)
        if Flag.USAGE_INVALID in flags:
            self._announce_invalid_usage(run)
        if Flag.COST_ANOMALY in flags:
            expected = self.pricer.table_price(run.provider, run.model_id, run.wire.response_headers)
            self.events.emit(CostAnomaly(run.provider.id, trace.request_id, cost,
                                         expected.cost(usage) if expected else 0.0))
        return record

    def _announce_invalid_usage(self, run: Run) -> None:
        """Once per provider: it reported numbers that cannot be true (replaced by our own)."""
        if run.provider.id in self._announced:
            return
        self._announced.add(run.provider.id)
        log.warning("%s reported usage that cannot be true; our own estimate was recorded "
                    "instead (flag usage-invalid)", run.provider.name)
        self.events.emit(UsageInvalid(run.provider.id, run.model_id))

    def result(self, trace: Trace, run: Run, record: Attempt) -> Result:
        usage = {**(record.usage or {}), "cost": record.cost_usd}
        return Result(
            request_id=trace.request_id, response=run.assembler.completion(usage),
            provider_used=run.provider.id, model=run.model_id, logical_model=trace.logical_model,
            cost_usd=record.cost_usd, cost_source=record.cost_source, usage=usage,
            attempts=tuple(trace.attempts), streamed=trace.streamed,
            latency_ms=(time.perf_counter() - trace.started) * 1000, ttft_ms=record.ttft_ms,
            usage_estimated=Flag.USAGE_ESTIMATED in record.flags, flags=record.flags)

    def record(self, ledger: Ledger | None, trace: Trace, result: Result | None) -> None:
        """The request's rows, journaled at once (before an answer is delivered)."""
        if ledger is not None:
            ledger.record(self.rows(trace, result))

    def rows(self, trace: Trace, result: Result | None) -> list[Row]:
        saved = self.savings(trace.logical_model, result) if result is not None else 0.0
        return rows_for(trace.request_id, trace.logical_model, trace.streamed, trace.attempts, saved)

    def savings(self, logical_model: str, result: Result) -> float:
        """What a free (local) answer would have cost on the first paid provider that serves
        the model."""
        if self.config.provider(result.provider_used).costs_money:
            return 0.0
        for candidate in candidates(self.config, logical_model):
            if candidate.provider.paid:
                price = self.pricer.table_price(candidate.provider, candidate.model_ids[0], {})
                return price.cost(result.usage) if price else 0.0
        return 0.0

