"""What the settings window's typed fields mean, checked as they are typed (no Qt here).

Each reader takes the field's text as the user left it and gives the value the config file
takes, or raises FieldProblem with what is wrong in words fit to show beside the field.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

MAX_COUNT = 2**31 - 1  # the largest daily request or token limit the field takes
MAX_USD = 1_000_000.0  # a daily spending limit above this is a typo
SUGGESTED_USD_A_DAY = 1.0  # offered for a paid provider with no limit: a day of heavy chat
_ADDRESS = re.compile(r"^https?://[^/\s]+(/\S*)?$")


class FieldProblem(ValueError):
    """What is wrong with a field's text (shown beside the field)."""


def read_count(text: str) -> int | None:
    """A daily request or token limit: a whole number of 0 or more, or empty for no limit."""
    text = text.strip().replace("_", "").replace(",", "")
    if not text:
        return None
    if not text.isascii() or not text.isdigit():
        raise FieldProblem("a whole number, like 1000 (empty: no limit)")
    value = int(text)
    if value > MAX_COUNT:
        raise FieldProblem(f"at most {MAX_COUNT:,}")
    return value


def read_usd(text: str) -> float | None:
    """A daily spending limit in US dollars (a leading $ is fine), or empty for no limit."""
    text = text.strip().removeprefix("$").strip()
    if not text:
        return None
    if not re.fullmatch(r"[0-9]+(\.[0-9]*)?|\.[0-9]+", text):
        raise FieldProblem("an amount in USD, like 2.50 (empty: no limit)")
    try:
        value = float(Decimal(text))
    except (InvalidOperation, ValueError):  # pragma: no cover - the pattern admits only numbers
        raise FieldProblem("an amount in USD, like 2.50 (empty: no limit)") from None
    if not math.isfinite(value) or value > MAX_USD:
        raise FieldProblem(f"at most {MAX_USD:,.0f} USD a day")
    return value


def read_address(text: str) -> str:
    """A node's address: http(s)://host[:port], without a trailing slash."""
    url = text.strip().rstrip("/")
    if not url:
        raise FieldProblem("type an address, like http://studio.local:52415")
    if not _ADDRESS.match(url):
        raise FieldProblem(f"{url!r} is not an address: write it like http://studio.local:52415")
    return url
