"""Usage summaries from the ledger's rollup: per provider per day, week or month."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date
from itertools import groupby
from operator import itemgetter
from typing import Any, TextIO

from router.ledger.ledger import Ledger, bucket_ms

_PERIOD = {
    "day": "day",
    "week": "date(day, '-' || ((CAST(strftime('%w', day) AS INTEGER) + 6) % 7) || ' days')",
    "month": "substr(day, 1, 7)",
}
COLUMNS = ("period", "provider", "requests", "prompt_tokens", "completion_tokens", "cost_usd",
           "failovers", "saved_usd")


@dataclass(frozen=True, slots=True)
class UsageRow:
    period: str  # YYYY-MM-DD (day; week: its Monday) or YYYY-MM (month)
    provider: str
    requests: int  # requests this provider answered
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float  # everything billed, failed attempts included
    failovers: int  # failed attempts of the requests it answered
    saved_usd: float  # what exo's answers would have cost on the first paid provider
    calls: int = 0
    anomalies: int = 0
    p50_latency_ms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {key: data[key] for key in COLUMNS}


def summary(ledger: Ledger, since: date, until: date, by: str = "day") -> list[UsageRow]:
    period = _PERIOD[by]
    rows = ledger.query(
        f"SELECT {period} AS period, provider, sum(requests), sum(prompt_tokens), "
        "sum(completion_tokens), sum(cost_usd), sum(failovers), sum(saved_usd), sum(calls), "
        "sum(anomalies) FROM daily WHERE day BETWEEN ? AND ? GROUP BY 1, 2 ORDER BY 1, 2",
        (since.isoformat(), until.isoformat()))
    p50 = _p50s(ledger, since, until, period)
    return [UsageRow(r[0], r[1], r[2], r[3], r[4], round(r[5], 10), r[6], round(r[7], 10), r[8],
                     r[9], p50.get((r[0], r[1]))) for r in rows]


def _p50s(ledger: Ledger, since: date, until: date, period: str) -> dict[tuple[str, str], float]:
    """p50 latency per period and provider from the latency histogram (10% buckets)."""
    if period == "day":  # rows are already one per (day, provider, bucket), in key order
        sql = ("SELECT day, provider, bucket, n FROM latency_hist WHERE day BETWEEN ? AND ? "
               "ORDER BY day, provider, bucket")
    else:
        sql = (f"SELECT {period}, provider, bucket, sum(n) FROM latency_hist "
               "WHERE day BETWEEN ? AND ? GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
    found = ledger.query(sql, (since.isoformat(), until.isoformat()))
    result: dict[tuple[str, str], float] = {}
    for key, group in groupby(found, key=itemgetter(0, 1)):
        buckets = list(group)
        half, seen = sum(b[3] for b in buckets) / 2, 0
        for _, _, bucket, n in buckets:
            seen += n
            if seen >= half:
                result[key] = round(bucket_ms(bucket), 2)
                break
    return result


def recorded_cost(ledger: Ledger, provider: str, day: str) -> float:
    """What the ledger recorded as spent with ``provider`` on a UTC day (failed attempts too)."""
    rows = ledger.query("SELECT cost_usd FROM daily WHERE day = ? AND provider = ?", (day, provider))
    return float(rows[0][0]) if rows else 0.0


def write_csv(rows: Iterable[UsageRow], handle: TextIO) -> None:
    """The rows as CSV with a header (`exo-bridge usage --csv`, the cost window's export)."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(row.as_dict().values())


def totals(rows: list[UsageRow]) -> dict[str, Any]:
    return {"requests": sum(r.requests for r in rows),
            "prompt_tokens": sum(r.prompt_tokens for r in rows),
            "completion_tokens": sum(r.completion_tokens for r in rows),
            "cost_usd": round(sum(r.cost_usd for r in rows), 10),
            "failovers": sum(r.failovers for r in rows),
            "saved_usd": round(sum(r.saved_usd for r in rows), 10)}
