"""The usage ledger: one SQLite row per attempt, written off the event loop, never lost.

``$EXO_BRIDGE_DATA_DIR/usage.sqlite3`` in WAL mode. ``record(rows)`` appends the rows to a
journal file beside it (one small write, no fsync: it survives a ``kill -9``) before the answer
is delivered, and a writer thread inserts them into SQLite in batches, off the event loop. The
journal is emptied once SQLite has everything, and replayed at the next start after a crash
(each row has a unique id, so nothing is counted twice). Each batch also updates a per-day,
per-provider rollup (and a latency histogram) in the same transaction, so summaries over a
year of rows read a few hundred rows, not a million.

A corrupt file is moved aside (never deleted) and a new one started; the user is told where.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from router.errors import Attempt, ExoBridgeError
from router.ledger_schema import MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger(__name__)

LEDGER_FILE = "usage.sqlite3"
_SKIPPED_FOR_POLICY = {"disabled", "not-allowed", "no-key"}
_BATCH = 5000
_BATCH_WAIT_S = 0.25


class LedgerUnavailable(ExoBridgeError):
    """The ledger cannot be opened or written (the message names the path)."""


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
    cost_source: str
    latency_ms: float
    ttft_ms: float | None
    failed_over: bool  # the request this attempt belongs to went past a provider
    failovers: int  # on the answering row: how many attempts failed before it
    flags: str
    saved_usd: float
    uid: str = ""  # request id / attempt index: unique, so a replayed journal adds nothing twice

    def values(self) -> tuple[Any, ...]:
        day = datetime.fromtimestamp(self.ts, UTC).date().isoformat()
        bucket = latency_bucket(self.latency_ms) if self.called else None
        return (self.ts, day, self.request_id, self.logical_model, self.model, self.provider,
                self.outcome, int(self.called), int(self.streamed), self.prompt_tokens,
                self.completion_tokens, self.prompt_tokens + self.completion_tokens, self.cost_usd,
                self.cost_source, self.latency_ms, self.ttft_ms, int(self.failed_over),
                self.failovers, self.flags, self.saved_usd, bucket,
                self.uid or f"{self.request_id}/{self.provider}/{self.ts}")


INSERT = ("INSERT OR IGNORE INTO attempts (ts, day, request_id, logical_model, model, provider, "
          "outcome, called, streamed, prompt_tokens, completion_tokens, total_tokens, cost_usd, "
          "cost_source, latency_ms, ttft_ms, failed_over, failovers, flags, saved_usd, latency_bucket, "
          "uid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


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


def rollup(rows: Iterable[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """A batch of attempt rows (Row.values() order) folded per day and provider: one upsert a
    group instead of one a row."""
    daily: dict[tuple[str, str], list[Any]] = {}
    hist: dict[tuple[str, str, int], int] = {}
    for r in rows:
        day, provider, outcome = r[1], r[5], r[6]
        ok = outcome == "ok"
        sums = daily.setdefault((day, provider), [0, 0, 0, 0, 0.0, 0, 0.0, 0])
        for index, value in enumerate((r[7], ok, r[9], r[10], r[12], r[17], r[19],
                                       "cost-anomaly" in r[18])):
            sums[index] += value
        if ok and r[20] is not None:
            hist[(day, provider, r[20])] = hist.get((day, provider, r[20]), 0) + 1
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
    failed = [a for a in attempts if a.outcome != "ok" and str(a.outcome) not in _SKIPPED_FOR_POLICY]
    answered = bool(attempts) and attempts[-1].outcome == "ok"
    failed_over = answered and bool(failed)
    rows = []
    for index, a in enumerate(attempts):
        usage = a.usage or {}
        ok = a.outcome == "ok"
        rows.append(Row(now, request_id, logical_model, a.model or "", a.provider, str(a.outcome),
                        a.called, streamed, int(usage.get("prompt_tokens") or 0),
                        int(usage.get("completion_tokens") or 0), a.cost_usd,
                        a.cost_source if a.called else "free", a.latency_ms, a.ttft_ms,
                        failed_over, len(failed) if ok else 0, ",".join(a.flags),
                        saved_usd if ok else 0.0, f"{request_id}/{index}"))
    return rows


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema to SCHEMA_VERSION, one versioned step at a time."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise LedgerUnavailable(f"the ledger's schema (v{version}) is newer than this program "
                                f"(v{SCHEMA_VERSION}); update exo-bridge")
    for target, script in MIGRATIONS:
        if target > version:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in script:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={target}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise


def open_database(path: Path) -> tuple[sqlite3.Connection, str | None]:
    """Open (creating, migrating, or moving a corrupt file aside); (connection, notice)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LedgerUnavailable(f"cannot create the data directory {path.parent} "
                                f"({exc.strerror}); set EXO_BRIDGE_DATA_DIR to a writable place") \
            from None
    notice = None
    try:
        conn = _open_checked(path)
    except sqlite3.DatabaseError as exc:
        if not _is_corruption(exc):
            raise _unavailable(path, exc) from None
        aside = path.with_name(f"{path.name}.corrupt-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
        path.rename(aside)
        for suffix in ("-wal", "-shm"):
            extra = path.with_name(path.name + suffix)
            if extra.exists():
                extra.rename(aside.with_name(aside.name + suffix))
        notice = f"the usage ledger was damaged; it was moved to {aside} and a new one started"
        log.warning(notice)
        try:
            conn = _open_checked(path)
        except sqlite3.DatabaseError as again:
            raise _unavailable(path, again) from None
    return conn, notice


def _open_checked(path: Path) -> sqlite3.Connection:
    conn = connect(path)  # a file that is no database fails here, at once (no O(n) check)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text


def _unavailable(path: Path, exc: Exception) -> LedgerUnavailable:
    return LedgerUnavailable(f"cannot use the usage ledger {path}: {exc}; check that the data "
                             "directory is writable (or set EXO_BRIDGE_DATA_DIR)")


class Ledger:
    """Rows are appended to the journal at once (durable) and reach SQLite in a writer thread."""

    def __init__(self, path: Path):
        self.path = path
        self._conn, self.notice = open_database(path)
        self.error: str | None = None  # the last write failure, for status displays
        self._journal_path = path.with_name(path.name + ".journal")
        self._replay_journal()
        self._journal = open(self._journal_path, "ab", buffering=0)  # noqa: SIM115 (kept open)
        self._lock = threading.Lock()  # journal append + queue put, vs. journal truncation
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending: list[tuple[Any, ...]] = []
        self._writer = threading.Thread(target=self._write_loop, name="exo-bridge-ledger",
                                        daemon=True)
        self._writer.start()
        self._reader = connect(path)
        self._read_lock = threading.Lock()

    @classmethod
    def in_dir(cls, directory: Path) -> Ledger:
        return cls(directory / LEDGER_FILE)

    # -- writing ---------------------------------------------------------------------------
    def record(self, rows: Sequence[Row]) -> None:
        """Make rows durable now (one append to the journal, no fsync: a killed process loses
        nothing; the OS keeps it) and hand them to the writer thread for SQLite."""
        values = [row.values() for row in rows]
        line = b"".join(json.dumps(v, separators=(",", ":")).encode() + b"\n" for v in values)
        with self._lock:
            try:
                self._journal.write(line)
            except OSError as exc:
                self.error = f"could not write the usage journal {self._journal_path}: {exc.strerror}"
                log.warning(self.error)
            self._queue.put(values)

    def flush(self, timeout: float = 10.0) -> None:
        """Block until everything recorded so far is in SQLite (tests, shutdown)."""
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def close(self) -> None:
        self._queue.put(None)
        self._writer.join(15)
        self._journal.close()
        self._reader.close()

    def _replay_journal(self) -> None:
        """Rows a killed process journaled but never wrote to SQLite (duplicates are ignored)."""
        try:
            lines = self._journal_path.read_bytes().splitlines()
        except FileNotFoundError:
            return
        rows = []
        for line in lines:
            try:
                rows.append(tuple(json.loads(line)))
            except ValueError:
                continue  # a line cut short by the kill
        if rows:
            self._insert(rows, replay=True)
        self._journal_path.write_bytes(b"")

    def _insert(self, rows: list[tuple[Any, ...]], *, replay: bool = False) -> None:
        """Insert rows and fold them into the rollups, in one transaction."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            if replay:  # a journal may repeat rows SQLite already has
                rows = [r for r in rows if self._conn.execute(
                    "SELECT 1 FROM attempts WHERE uid = ?", (r[-1],)).fetchone() is None]
            self._conn.executemany(INSERT, rows)
            daily, hist = rollup(rows)
            self._conn.executemany(UPSERT_DAILY, daily)
            self._conn.executemany(UPSERT_HIST, hist)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def _write_loop(self) -> None:
        while True:
            batch = self._next_batch()
            for entry in batch:
                if isinstance(entry, list):
                    self._pending.extend(entry)
            self._write_pending()
            for entry in batch:
                if isinstance(entry, threading.Event):
                    entry.set()
            if any(entry is None for entry in batch):
                self._conn.close()
                return

    def _next_batch(self) -> list[Any]:
        """What is queued: rows, flush events, None (close). Empty after a retry tick."""
        try:  # rows that failed to write are retried every second
            item = self._queue.get(timeout=1.0) if self._pending else self._queue.get()
        except queue.Empty:
            return []
        if isinstance(item, list):
            # Rows are already durable in the journal: gather a batch before waking SQLite,
            # so the writer takes the GIL rarely instead of once per request.
            time.sleep(_BATCH_WAIT_S)
        batch: list[Any] = [item]
        while len(batch) < _BATCH:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write_pending(self) -> None:
        if not self._pending:
            return
        try:
            self._insert(self._pending)
        except sqlite3.Error as exc:
            self.error = (f"could not write the usage ledger {self.path}: {exc} "
                          "(kept in the journal, retrying)")
            log.warning(self.error)
            return
        self.error = None
        self._pending = []
        with self._lock:  # everything journaled is in SQLite: start the journal afresh
            if self._queue.empty():
                self._journal.truncate(0)

    # -- reading ---------------------------------------------------------------------------
    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._read_lock:
            return self._reader.execute(sql, tuple(params)).fetchall()
