"""The usage ledger: one SQLite row per attempt, written off the event loop, never lost.

``$EXO_BRIDGE_DATA_DIR/usage.sqlite3`` in WAL mode. A writer thread commits rows in batches;
``await ledger.record(rows)`` returns once they are committed, so an answer is delivered only
after its rows are durable (a ``kill -9`` loses nothing delivered). Triggers keep a per-day,
per-provider rollup (and a latency histogram) in the same transaction, so summaries over a
year of rows read a few hundred rows, not a million.

A corrupt file is moved aside (never deleted) and a new one started; the user is told where.
"""

from __future__ import annotations

import asyncio
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
_BATCH = 500


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

    def values(self) -> tuple[Any, ...]:
        day = datetime.fromtimestamp(self.ts, UTC).strftime("%Y-%m-%d")
        bucket = latency_bucket(self.latency_ms) if self.called else None
        return (self.ts, day, self.request_id, self.logical_model, self.model, self.provider,
                self.outcome, int(self.called), int(self.streamed), self.prompt_tokens,
                self.completion_tokens, self.prompt_tokens + self.completion_tokens, self.cost_usd,
                self.cost_source, self.latency_ms, self.ttft_ms, int(self.failed_over),
                self.failovers, self.flags, self.saved_usd, bucket)


INSERT = ("INSERT INTO attempts (ts, day, request_id, logical_model, model, provider, outcome, "
          "called, streamed, prompt_tokens, completion_tokens, total_tokens, cost_usd, cost_source, "
          "latency_ms, ttft_ms, failed_over, failovers, flags, saved_usd, latency_bucket) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


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
    for a in attempts:
        usage = a.usage or {}
        ok = a.outcome == "ok"
        rows.append(Row(now, request_id, logical_model, a.model or "", a.provider, str(a.outcome),
                        a.called, streamed, int(usage.get("prompt_tokens") or 0),
                        int(usage.get("completion_tokens") or 0), a.cost_usd,
                        a.cost_source if a.called else "free", a.latency_ms, a.ttft_ms,
                        failed_over, len(failed) if ok else 0, ",".join(a.flags),
                        saved_usd if ok else 0.0))
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
    conn = connect(path)
    try:
        if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("database disk image is malformed")
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
    """Rows go to a writer thread; ``record`` resolves once they are committed."""

    def __init__(self, path: Path):
        self.path = path
        self._conn, self.notice = open_database(path)
        self.error: str | None = None  # the last write failure, for status displays
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending: list[tuple[list[Row], asyncio.Future[None] | None]] = []
        self._writer = threading.Thread(target=self._write_loop, name="exo-bridge-ledger",
                                        daemon=True)
        self._writer.start()
        self._reader = connect(path)
        self._read_lock = threading.Lock()

    @classmethod
    def in_dir(cls, directory: Path) -> Ledger:
        return cls(directory / LEDGER_FILE)

    # -- writing ---------------------------------------------------------------------------
    async def record(self, rows: list[Row]) -> None:
        """Queue rows and wait until they are committed (the loop keeps running meanwhile)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put((rows, future))
        await asyncio.shield(future)

    def record_nowait(self, rows: list[Row]) -> None:
        self._queue.put((rows, None))

    def flush(self, timeout: float = 10.0) -> None:
        """Block until everything queued so far is committed (tests, shutdown)."""
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def close(self) -> None:
        self._queue.put(None)
        self._writer.join(15)
        self._reader.close()

    def _write_loop(self) -> None:
        while True:
            try:  # rows that failed to write are retried every second
                item = self._queue.get(timeout=1.0) if self._pending else self._queue.get()
            except queue.Empty:
                self._write_batch([])
                continue
            batch: list[Any] = [item]
            while len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(entry is None for entry in batch)
            self._write_batch([e for e in batch if isinstance(e, tuple)])
            for entry in batch:
                if isinstance(entry, threading.Event):
                    entry.set()
            if stop:
                self._conn.close()
                return

    def _write_batch(self, entries: list[tuple[list[Row], asyncio.Future[None] | None]]) -> None:
        self._pending.extend(entries)
        if not self._pending:
            return
        rows = [row.values() for rows, _ in self._pending for row in rows]
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(INSERT, rows)
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            self.error = f"could not write the usage ledger {self.path}: {exc} (kept in memory, retrying)"
            log.warning(self.error)
            self._release(ok=False)
            return
        self.error = None
        self._release(ok=True)

    def _release(self, *, ok: bool) -> None:
        """Wake the waiting requests; rows that failed stay pending for the next batch."""
        for _, future in self._pending:
            if future is not None and not future.done():
                future.get_loop().call_soon_threadsafe(_settle, future)
        if ok:
            self._pending = []

    # -- reading ---------------------------------------------------------------------------
    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._read_lock:
            return self._reader.execute(sql, tuple(params)).fetchall()


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
