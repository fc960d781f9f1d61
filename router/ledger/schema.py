"""The ledger's schema, as versioned migrations (``PRAGMA user_version``). Never edit a shipped
step: add a new one."""

from __future__ import annotations

_V1 = (
    """CREATE TABLE attempts (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,                -- unix seconds, UTC
        day TEXT NOT NULL,               -- YYYY-MM-DD, UTC
        request_id TEXT NOT NULL,
        logical_model TEXT NOT NULL,
        model TEXT NOT NULL,
        provider TEXT NOT NULL,
        outcome TEXT NOT NULL,
        called INTEGER NOT NULL,
        streamed INTEGER NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        total_tokens INTEGER NOT NULL,
        cost_usd REAL NOT NULL,
        cost_source TEXT NOT NULL,       -- reported | price-table | free | estimated
        latency_ms REAL NOT NULL,
        failed_over INTEGER NOT NULL
    )""",
    "CREATE INDEX attempts_day_provider ON attempts (day, provider)",
    "CREATE INDEX attempts_request ON attempts (request_id)",
)

_ROLLUP_COLUMNS = ("calls", "requests", "prompt_tokens", "completion_tokens", "cost_usd",
                   "failovers", "saved_usd", "anomalies")

_V2 = (
    "ALTER TABLE attempts ADD COLUMN ttft_ms REAL",
    "ALTER TABLE attempts ADD COLUMN failovers INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE attempts ADD COLUMN flags TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE attempts ADD COLUMN saved_usd REAL NOT NULL DEFAULT 0",
    "ALTER TABLE attempts ADD COLUMN latency_bucket INTEGER",
    "ALTER TABLE attempts ADD COLUMN uid TEXT",
    "CREATE UNIQUE INDEX attempts_uid ON attempts (uid)",
    """UPDATE attempts SET failovers = (
        SELECT count(*) FROM attempts b WHERE b.request_id = attempts.request_id
        AND b.outcome NOT IN ('ok', 'disabled', 'not-allowed', 'no-key'))
       WHERE outcome = 'ok' AND failed_over = 1""",
    """CREATE TABLE daily (
        day TEXT NOT NULL, provider TEXT NOT NULL,
        calls INTEGER NOT NULL DEFAULT 0,      -- attempts that reached the provider
        requests INTEGER NOT NULL DEFAULT 0,   -- requests it answered
        prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL NOT NULL DEFAULT 0, failovers INTEGER NOT NULL DEFAULT 0,
        saved_usd REAL NOT NULL DEFAULT 0, anomalies INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (day, provider)) WITHOUT ROWID""",
    """CREATE TABLE latency_hist (
        day TEXT NOT NULL, provider TEXT NOT NULL, bucket INTEGER NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (day, provider, bucket)) WITHOUT ROWID""",
    f"""INSERT INTO daily (day, provider, {", ".join(_ROLLUP_COLUMNS)})
        SELECT day, provider, sum(called), sum(outcome = 'ok'), sum(prompt_tokens),
               sum(completion_tokens), sum(cost_usd), sum(failovers), 0, 0
        FROM attempts GROUP BY day, provider""",

)

# Budgets across processes: what each request in flight may still spend, by the process that
# holds it. A reservation is deleted in the transaction that writes its attempt's row.
_V3 = (
    """CREATE TABLE reservations (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,            -- <pid>-<process start>: who holds it
        provider TEXT NOT NULL,
        day TEXT NOT NULL,              -- the UTC day it counts on
        requests INTEGER NOT NULL,
        tokens INTEGER NOT NULL,
        cost_usd REAL NOT NULL,
        created REAL NOT NULL) WITHOUT ROWID""",
    "CREATE INDEX reservations_day_provider ON reservations (day, provider)",
)

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = ((1, _V1), (2, _V2), (3, _V3))
SCHEMA_VERSION = MIGRATIONS[-1][0]
