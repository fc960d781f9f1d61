"""Every number a provider reports is checked before it is used.

Tokens must be whole, finite, non-negative and below MAX_TOKENS; a cost finite, non-negative
and below MAX_COST_USD. Anything else (``1e30``, ``-1000000``, ``NaN``, ``Infinity``, a string)
is replaced by our own estimate (tokens from the text, cost from the price table) and the
attempt is flagged ``usage-invalid``: nothing invalid reaches SQLite, a budget or a JSON output.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from router.money.terms import Flag
from router.numbers import number, whole

MAX_TOKENS = 10_000_000  # one answer; no context window comes near
MAX_COST_USD = 10_000.0  # one answer (10M tokens at $600 per million is $6,000)
MAX_PRICE_PER_TOKEN = 0.01  # $10,000 per million tokens: above any price list


def token_count(value: object) -> int | None:
    """A valid token count, or None."""
    return whole(value, 0, MAX_TOKENS)


def cost_usd(value: object) -> float | None:
    """A valid cost in USD, or None."""
    return number(value, 0, MAX_COST_USD)


def price_per_token(value: object) -> float | None:
    """A price-list entry (USD per token, a number or a short decimal string) we can use, or
    None."""
    return number(value, 0, MAX_PRICE_PER_TOKEN, text=True)


def estimate_tokens(chars: int) -> int:
    """About four characters a token for English text; never zero for non-empty text."""
    return min(MAX_TOKENS, max(1, round(chars / 4))) if chars else 0


def checked_usage(upstream: Mapping[str, Any] | None, prompt_chars: int,
                  completion_chars: int) -> tuple[dict[str, Any], tuple[Flag, ...]]:
    """The attempt's usage (valid counts, ``total_tokens`` their sum) and its flags:
    ``usage-estimated`` when the provider sent none, ``usage-invalid`` when what it sent could
    not be used (each bad count replaced by the estimate)."""
    if not upstream:
        prompt, completion = estimate_tokens(prompt_chars), estimate_tokens(completion_chars)
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion}, (Flag.USAGE_ESTIMATED,)
    usage: dict[str, Any] = finite_only(dict(upstream))
    reported_prompt = token_count(upstream.get("prompt_tokens"))
    reported_completion = token_count(upstream.get("completion_tokens"))
    flags = () if reported_prompt is not None and reported_completion is not None else (Flag.USAGE_INVALID,)
    prompt = estimate_tokens(prompt_chars) if reported_prompt is None else reported_prompt
    completion = (estimate_tokens(completion_chars) if reported_completion is None
                  else reported_completion)
    usage.update(prompt_tokens=prompt, completion_tokens=completion,
                 total_tokens=prompt + completion)
    return usage, flags


def finite_only(value: Any) -> Any:
    """``value`` with every NaN or infinity (anywhere inside) replaced by None: what is passed
    on to a client or written as JSON stays JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_only(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite_only(item) for item in value]
    return value
