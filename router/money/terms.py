"""Money's vocabulary, typed: how an answer's cost is known (``CostSource``) and what a ledger
row is flagged with (``Flag``). Both are strings where they are stored (SQLite, journals, JSON)
and read back; nothing compares them to text written by hand."""

from __future__ import annotations

from enum import StrEnum


class CostSource(StrEnum):
    """How an answer's cost is known."""

    FREE = "free"  # the user's own hardware
    REPORTED = "reported"  # the provider bills it in the answer (usage.cost)
    PRICE_TABLE = "price-table"  # tokens x the provider's price list (or the config's prices)
    ESTIMATED = "estimated"  # tokens estimated by us, or no price known (recorded as $0)


class Flag(StrEnum):
    """What a ledger row says of its numbers (its ``flags`` column, comma-separated)."""

    USAGE_INVALID = "usage-invalid"  # the provider's usage was out of range: our estimate instead
    USAGE_ESTIMATED = "usage-estimated"  # the provider gave no usage: estimated from the text
    CAPPED = "capped"  # cut before the provider's own count came: at least what was seen
    COST_ANOMALY = "cost-anomaly"  # a reported cost far from what the price list says
    NO_PRICE = "no-price"  # no price known: recorded as an estimated $0
