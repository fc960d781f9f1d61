"""The cloud accounts behind the keys: the key call watched (`watch.py`), what its figures mean
(`status.py`) and the ledger against the bill (`reconcile.py`).

Imports: the core's vocabulary, the ledger and the providers; never the endpoint or the CLI.
"""
