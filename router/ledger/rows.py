"""The ledger's rows: one per attempt, their journal form and its check, and the rollups.

A row travels as a tuple (``Row.values()``): appended to a journal as one JSON line, inserted
into SQLite, folded into the per-day rollup. A journal line is checked against ROW_SHAPE before
it is replayed, so a line of the wrong shape is quarantined instead of stopping anything.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from router.errors import Attempt, Outcome
from router.money.terms import CostSource, Flag
from router.money.usage_guard import MAX_COST_USD, MAX_TOKENS
from router.numbers import number

Values = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Row:
    ts: float
    request_id: str
    logical_model: str
    model: str
    provider: str
    outcome: str
    called: bool
    streamed: bool
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    cost_source: CostSource
    latency_ms: float
    ttft_ms: float | None
    failed_over: bool  # the request this attempt belongs to went past a provider
    failovers: int  # on the answering row: how many attempts failed before it
    flags: str
    saved_usd: float
    uid: str = ""  # request id / attempt index: unique, so a replayed journal adds nothing twice
    day: str | None = None  # the UTC day it counts on: its reservation's (default: ts's day)
    reservation: str | None = None  # deleted with the row's insert: the budget hold it replaces

    def values(self) -> Values:
        day = self.day or datetime.fromtimestamp(self.ts, UTC).date().isoformat()
        bucket = latency_bucket(self.latency_ms) if self.called else None
        return (self.ts, day, self.request_id, self.logical_model, self.model, self.provider,
                self.outcome, int(self.called), int(self.streamed), self.prompt_tokens,
                self.completion_tokens, self.prompt_tokens + self.completion_tokens, self.cost_usd,
                self.cost_source, self.latency_ms, self.ttft_ms, int(self.failed_over),
                self.failovers, self.flags, self.saved_usd, bucket,
                self.uid or f"{self.request_id}/{self.provider}/{self.ts}", self.reservation)


COLUMNS = ("ts", "day", "request_id", "logical_model", "model", "provider", "outcome", "called",
           "streamed", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd",
           "cost_source", "latency_ms", "ttft_ms", "failed_over", "failovers", "flags", "saved_usd",
           "latency_bucket", "uid")
INSERT = (f"INSERT OR IGNORE INTO attempts ({', '.join(COLUMNS)}) "
          f"VALUES ({', '.join('?' * len(COLUMNS))})")
UID, RESERVATION = 21, 22  # positions in Row.values()
# A column's position in Row.values(), by its name (never by a number written by hand).
(DAY, PROVIDER, OUTCOME, CALLED, PROMPT_TOKENS, COMPLETION_TOKENS, TOTAL_TOKENS, COST_USD,
 FAILOVERS, FLAGS, SAVED_USD, LATENCY_BUCKET) = (COLUMNS.index(name) for name in (
    "day", "provider", "outcome", "called", "prompt_tokens", "completion_tokens", "total_tokens",
    "cost_usd", "failovers", "flags", "saved_usd", "latency_bucket"))

UPSERT_DAILY = (
    "INSERT INTO daily (day, provider, calls, requests, prompt_tokens, completion_tokens, cost_usd, "
    "failovers, saved_usd, anomalies) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (day, provider) DO UPDATE SET calls = calls + excluded.calls, "
    "requests = requests + excluded.requests, prompt_tokens = prompt_tokens + excluded.prompt_tokens, "
    "completion_tokens = completion_tokens + excluded.completion_tokens, "
    "cost_usd = cost_usd + excluded.cost_usd, failovers = failovers + excluded.failovers, "
    "saved_usd = saved_usd + excluded.saved_usd, anomalies = anomalies + excluded.anomalies")
UPSERT_HIST = ("INSERT INTO latency_hist (day, provider, bucket, n) VALUES (?, ?, ?, ?) "
               "ON CONFLICT (day, provider, bucket) DO UPDATE SET n = n + excluded.n")

# -- the shape of a journal line -------------------------------------------------------------
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _text(v: Any) -> bool:
    return isinstance(v, str)


def _flag(v: Any) -> bool:
    return v in (0, 1) and not isinstance(v, float)


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 2 * MAX_TOKENS


def _money(v: Any) -> bool:
    return number(v, 0, MAX_COST_USD) is not None


def _ms(v: Any) -> bool:  # a 400-digit integer in a damaged journal is refused, not an OverflowError
    return number(v, 0, math.inf) is not None


def _optional(check: Any) -> Any:
    return lambda v: v is None or check(v)


ROW_SHAPE = (_ms, lambda v: isinstance(v, str) and bool(_DAY.match(v)), _text, _text, _text, _text,
             _text, _flag, _flag, _count, _count, _count, _money, _text, _ms, _optional(_ms),
             _flag, _count, _text, _money, _optional(_count), _text, _optional(_text))


def checked_values(raw: Any) -> Values | str:
    """A journal line's values if they have the shape of a row (this version's or the one before,
    without a reservation), else why not."""
    if not isinstance(raw, list) or len(raw) not in (len(ROW_SHAPE) - 1, len(ROW_SHAPE)):
        return f"not a row: {type(raw).__name__}" + (f" of {len(raw)}" if isinstance(raw, list)
                                                    else "")
    values = (*raw, None) if len(raw) == len(ROW_SHAPE) - 1 else tuple(raw)
    for index, (value, check) in enumerate(zip(values, ROW_SHAPE, strict=True)):
        if not check(value):
            return f"{COLUMNS[index] if index < len(COLUMNS) else 'reservation'} is {value!r:.80}"
    if values[TOTAL_TOKENS] != values[PROMPT_TOKENS] + values[COMPLETION_TOKENS]:
        return "total_tokens is not prompt + completion"
    return values


# -- rollups --------------------------------------------------------------------------------
def rollup(rows: Iterable[Values]) -> tuple[list[Values], list[Values]]:
    """A batch of rows (Row.values() order) folded per day and provider: one upsert a group
    instead of one a row."""
    daily: dict[tuple[str, str], list[Any]] = {}
    hist: dict[tuple[str, str, int], int] = {}
    for r in rows:
        day, provider, bucket = r[DAY], r[PROVIDER], r[LATENCY_BUCKET]
        ok = r[OUTCOME] == "ok"
        sums = daily.setdefault((day, provider), [0, 0, 0, 0, 0.0, 0, 0.0, 0])
        for index, value in enumerate((r[CALLED], ok, r[PROMPT_TOKENS], r[COMPLETION_TOKENS],
                                       r[COST_USD], r[FAILOVERS], r[SAVED_USD],
                                       Flag.COST_ANOMALY in r[FLAGS])):
            sums[index] += value
        if ok and bucket is not None:
            hist[(day, provider, bucket)] = hist.get((day, provider, bucket), 0) + 1
    return ([(*key, *sums) for key, sums in daily.items()],
            [(*key, n) for key, n in hist.items()])


def latency_bucket(ms: float) -> int:
    """Log buckets 10% wide: p50 from the histogram is within 5% of the true value."""
    return max(0, round(math.log(max(ms, 0.1) * 10) / math.log(1.1)))


def bucket_ms(bucket: int) -> float:
    return float(1.1 ** bucket / 10)


def rows_for(request_id: str, logical_model: str, streamed: bool, attempts: Sequence[Attempt],
             saved_usd: float = 0.0, ts: float | None = None) -> list[Row]:
    """Ledger rows for one request's attempts, in order."""
    now = time.time() if ts is None else ts
    failed = [a for a in attempts if a.outcome is not Outcome.OK and not a.outcome.by_policy]
    answered = bool(attempts) and attempts[-1].outcome == "ok"
    failed_over = answered and bool(failed)
    rows = []
    for index, a in enumerate(attempts):
        usage = a.usage or {}
        ok = a.outcome == "ok"
        rows.append(Row(now, request_id, logical_model, a.model or "", a.provider, str(a.outcome),
                        a.called, streamed, int(usage.get("prompt_tokens") or 0),
                        int(usage.get("completion_tokens") or 0), a.cost_usd,
                        a.cost_source if a.called else CostSource.FREE, a.latency_ms, a.ttft_ms,
                        failed_over, len(failed) if ok else 0, ",".join(a.flags),
                        saved_usd if ok else 0.0, f"{request_id}/{index}", a.day, a.reservation))
    return rows
