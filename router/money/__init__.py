"""Money: what an answer cost and what may still be spent.

`accounting.py` counts an attempt (its usage checked by `usage_guard.py`, costed by
`pricing.py` from `prices.py`), `budget.py` enforces the day's limits (held in the ledger across
processes), `usd.py` writes dollars the same everywhere.

Imports: the core's vocabulary and the ledger; never the endpoint, the CLI or the HTTP stack.
"""
