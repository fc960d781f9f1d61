"""The usage ledger: one SQLite row per attempt, shared by every process on the data dir
(`ledger.py` the facade, `journal.py` each process's journal, `store.py` SQLite and the
budget's holds, `rows.py` rows and rollups, `schema.py` migrations, `usage.py` summaries).

Imports: the core's vocabulary (errors, config, processes, money); never the endpoint, the CLI,
the exo package or the HTTP stack.
"""
