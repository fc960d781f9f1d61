"""The usage ledger: one SQLite row per attempt, shared by every process on the data dir, never
losing what was delivered.

``$EXO_BRIDGE_DATA_DIR/usage.sqlite3`` in WAL mode (files 0600). ``record(rows)`` appends the rows
to this process's own journal (ledger_journal) before the answer is delivered, and a writer
thread inserts them into SQLite in batches, off the event loop, each batch with its per-day
rollup and the deletion of the budget holds it replaces (ledger_store). Budgets hold across
processes: a request to a provider with daily limits reserves its worst case in SQLite, under a
write transaction that counts every process's rows and holds.

The writer never dies and never loops: a row SQLite refuses is quarantined; a full, read-only,
locked or missing ledger keeps the rows in memory (and the journal, if it can be written) and
is retried; meanwhile ``problem`` says what is wrong, the path and the fix, and the router uses
no paid provider (their spending could not be recorded). A damaged file is found by ``PRAGMA
quick_check`` soon after start (and daily), moved aside (never deleted), and a new one started
with what is still readable of today's rows, so today's budgets still hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from router import ledger_journal as journal
from router import ledger_store as store
from router.errors import LedgerCorrupt, LedgerUnavailable
from router.ledger_rows import Row, Values, bucket_ms, rows_for
from router.ledger_store import Granted, Hold, HoldAsk, Limits
from router.processes import owner_alive, owner_id

log = logging.getLogger(__name__)

LEDGER_FILE = "usage.sqlite3"
_BATCH = 5000
_BATCH_WAIT_S = 0.25
_RETRY_S = 2.0  # a ledger that cannot be written is tried again this often
_HOUSEKEEPING_S = 30.0  # orphaned journals and holds of processes that are gone
_CHECK_EVERY_S = 86400.0  # PRAGMA quick_check
_MEMORY_ROWS = 500_000  # rows kept in memory while nothing can be written (about 150 MB)
_RESERVE_BUSY_S = 2.0

__all__ = ["LEDGER_FILE", "Hold", "HoldAsk", "Ledger", "LedgerUnavailable", "Limits", "Row",
           "bucket_ms", "rows_for"]


def _settle(answer: asyncio.Future[Granted], result: object) -> None:
    if answer.done():  # the request was cancelled meanwhile
        return
    if isinstance(result, BaseException):
        answer.set_exception(result)
    else:
        answer.set_result(result)  # type: ignore[arg-type]


class Ledger:
    def __init__(self, path: Path, *, on_problem: Callable[[str | None], None] | None = None):
        self.path = path
        self.directory = path.parent
        self.owner = owner_id()
        self.notice: str | None = None  # said once at start (a damaged file moved aside)
        self.problem: str | None = None  # why rows cannot be written now (path and fix)
        self.on_problem = on_problem  # called from the writer thread when ``problem`` changes
        self.today: dict[str, tuple[Hold, Hold, int]] = {}  # provider -> (written, held,
        # requests answered), for displays
        self.today_day = ""
        self._conn: sqlite3.Connection | None = None
        self._budget_conn: sqlite3.Connection | None = None
        self._write_lock = threading.Lock()  # one SQLite writer at a time in this process
        self._reader: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        self._journal: journal.Journal | None = None
        self._lock = threading.Lock()  # journal append + queue put, vs. journal emptying
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._holds: queue.SimpleQueue[Any] = queue.SimpleQueue()  # budget holds to decide
        self._holder: threading.Thread | None = None
        self._pending: list[Values] = []
        self._next_try = 0.0
        self._next_housekeeping = 0.0
        self._next_check = time.monotonic() + 1.0
        self._open()
        self._writer = threading.Thread(target=self._write_loop, name="exo-bridge-ledger",
                                        daemon=True)
        self._writer.start()

    @classmethod
    def in_dir(cls, directory: Path, **kw: Any) -> Ledger:
        return cls(directory / LEDGER_FILE, **kw)

    @property
    def can_record(self) -> bool:
        return self.problem is None

    @property
    def error(self) -> str | None:  # the older name
        return self.problem

    # -- opening ----------------------------------------------------------------------------
    def _open(self) -> bool:
        """Open (or re-open) the file; False, with ``problem`` set, when it cannot be used."""
        try:
            try:
                conn = store.open_checked(self.path)
            except LedgerCorrupt as exc:
                conn = self._start_afresh(str(exc))
            self._journal = self._journal or journal.Journal(self.directory, self.owner)
        except (LedgerUnavailable, OSError) as exc:
            problem = exc if isinstance(exc, LedgerUnavailable) else store.unavailable(self.path, exc)
            self._set_problem(str(problem))
            return False
        self._conn = conn
        try:
            self._adopt_orphans()
            self._refresh_today()
        except (sqlite3.Error, OSError) as exc:
            if not self._damaged(exc):  # busy: housekeeping tries again
                log.warning("could not replay the journals of stopped processes yet: %s", exc)
        return True

    def _damaged(self, exc: BaseException) -> bool:
        """If ``exc`` says the file is damaged, start afresh (True); else False."""
        if not isinstance(store.classify(self.path, exc), LedgerCorrupt):
            return False
        try:
            self._conn = self._start_afresh(str(exc))
            self._adopt_orphans()
            self._refresh_today()
        except (LedgerUnavailable, sqlite3.Error, OSError) as again:
            self._conn = None
            self._set_problem(str(store.unavailable(self.path, again)))
        return True

    def _start_afresh(self, why: str) -> sqlite3.Connection:
        """Move a damaged file aside and start a new one with what is readable of today."""
        for conn in (self._conn, self._budget_conn, self._reader):
            if conn is not None:
                conn.close()
        self._conn = self._budget_conn = self._reader = None
        aside = store.move_aside(self.path)
        conn = store.open_checked(self.path)
        kept = store.salvage(aside, conn, datetime.now(UTC).date().isoformat(), self._refused)
        self.notice = (f"the usage ledger was damaged ({why.rpartition('(')[2].rstrip(')')}); it "
                       f"was moved to {aside} and a new one started ({kept})")
        log.warning(self.notice)
        return conn

    def _connection(self, attr: str, busy_s: float) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self, attr)
        if conn is None:
            conn = store.connect(self.path, busy_s=busy_s)
            setattr(self, attr, conn)
        return conn

    # -- writing ----------------------------------------------------------------------------
    def record(self, rows: Sequence[Row]) -> None:
        """Make rows durable now (one append to this process's journal, no fsync: a killed
        process loses nothing) and hand them to the writer thread for SQLite."""
        values = [row.values() for row in rows]
        with self._lock:
            if self._journal is not None:
                try:
                    self._journal.append(values)
                except OSError as exc:
                    self._set_problem(str(store.unavailable(self._journal.path, exc)))
            self._queue.put(values)

    def flush(self, timeout: float = 10.0) -> None:
        """Block until everything recorded so far has been tried (tests, shutdown)."""
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def close(self) -> None:
        self._queue.put(None)
        self._writer.join(15)
        with self._lock:
            if self._journal is not None:
                if self._pending:  # not written: the next process replays them from here
                    try:
                        self._journal.append(self._pending)
                    except OSError:
                        log.error("%d usage rows could not be written anywhere (%s)",
                                  len(self._pending), self.problem)
                self._journal.close(remove=not self._pending)
                self._journal = None
        if self._holder is not None:
            self._holds.put(None)
            self._holder.join(15)
        for conn in (self._budget_conn, self._reader):
            if conn is not None:
                conn.close()

    def _write_loop(self) -> None:
        while True:
            batch = self._next_batch()
            for entry in batch:
                if isinstance(entry, list):
                    self._keep(entry)
                elif entry == "check":
                    self._next_check = 0.0
            self._write_pending()
            self._housekeeping()
            for entry in batch:
                if isinstance(entry, threading.Event):
                    entry.set()
            if any(entry is None for entry in batch):
                if self._conn is not None:
                    self._conn.close()
                return

    def _keep(self, values: list[Values]) -> None:
        self._pending.extend(values)
        if len(self._pending) > _MEMORY_ROWS:  # nothing written for a very long time
            dropped = len(self._pending) - _MEMORY_ROWS
            del self._pending[:dropped]
            log.error("the usage ledger could not be written for too long: %d rows dropped from "
                      "memory (they are still in the journal if it could be written)", dropped)

    def _next_batch(self) -> list[Any]:
        """What is queued: rows, flush events, None (close). Empty after a retry tick."""
        wait = 1.0 if self._pending or self.problem else max(
            0.05, min(_HOUSEKEEPING_S, self._next_check - time.monotonic()))
        try:
            item = self._queue.get(timeout=wait)
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
        if time.monotonic() < self._next_try:
            return
        if (self._conn is None or self._journal is None) and not self._open():
            self._next_try = time.monotonic() + _RETRY_S
            return
        if not self._pending:
            return
        assert self._conn is not None
        try:
            with self._write_lock:  # never left to SQLite's busy wait (it sleeps up to 100 ms)
                store.insert(self._conn, self._pending, self._refused)
        except sqlite3.Error as exc:
            self._write_failed(exc)
            return
        self._pending = []
        self._set_problem(None)
        self._refresh_today()
        with self._lock:  # everything journaled is in SQLite: start the journal afresh
            if self._queue.empty() and self._journal is not None:
                with contextlib.suppress(OSError):
                    self._journal.empty()

    def _write_failed(self, exc: sqlite3.Error) -> None:
        if self._damaged(exc):
            return  # a new file: the rows go there at the next tick
        problem = store.classify(self.path, exc)
        self._set_problem(f"{problem} (rows are kept and written when it works again)")
        self._next_try = time.monotonic() + _RETRY_S

    def _refused(self, values: Values, reason: str) -> None:
        log.error("a usage row was quarantined in %s: %s", self.directory / journal.QUARANTINE,
                  reason)
        journal.quarantine(self.directory, reason, store.dumps(values))

    def _set_problem(self, problem: str | None) -> None:
        if problem == self.problem:
            return
        self.problem = problem
        if problem:
            log.warning(problem)
        if self.on_problem is not None:
            self.on_problem(problem)

    # -- housekeeping -----------------------------------------------------------------------
    def _housekeeping(self) -> None:
        now = time.monotonic()
        if self._conn is None or self.problem:
            return
        try:
            if now >= self._next_check:
                self._next_check = now + _CHECK_EVERY_S
                damage = store.quick_check(self._conn)
                if damage is not None:
                    self._conn = self._start_afresh(f"quick_check: {damage}")
            if now >= self._next_housekeeping:
                self._next_housekeeping = now + _HOUSEKEEPING_S
                self._adopt_orphans()
                self._refresh_today()
        except (sqlite3.Error, LedgerUnavailable, OSError) as exc:
            if not self._damaged(exc):
                log.warning("ledger housekeeping failed: %s", exc)

    def _adopt_orphans(self) -> None:
        """Rows journaled by processes that are gone go in (once); their holds are released."""
        assert self._conn is not None
        for path in journal.orphans(self.directory, self.owner):
            good: list[Values] = []
            for item in journal.read_rows(path):
                if isinstance(item, journal.Unusable):
                    self._refused_line(item.reason, item.line)
                else:
                    good.append(item)
            with self._write_lock:
                if good:
                    store.insert(self._conn, good, self._refused, replay=True)
                store.release_owner(self._conn, path.stem)
            path.unlink(missing_ok=True)
        for owner in store.owners(self._conn):
            if owner != self.owner and not owner_alive(owner):
                with self._write_lock:
                    store.release_owner(self._conn, owner)

    def _refused_line(self, reason: str, line: str) -> None:
        log.error("a journal line was quarantined: %s", reason)
        journal.quarantine(self.directory, reason, line)

    def _refresh_today(self) -> None:
        if self._conn is None:
            return
        day = datetime.now(UTC).date().isoformat()
        self.today, self.today_day = store.day_totals(self._conn, day), day

    # -- budgets ----------------------------------------------------------------------------
    async def hold(self, ask: HoldAsk) -> Granted:
        """A budget hold (its id), or (unit, spent, limit) when over. The holds asked for while
        one is being written are decided together in the next transaction (one write for
        many concurrent requests). Raises LedgerUnavailable when the ledger cannot take it."""
        if self.problem:
            raise LedgerUnavailable(self.problem)
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Granted] = loop.create_future()
        self._start_holder()
        self._holds.put((ask, lambda result: loop.call_soon_threadsafe(_settle, answer, result)))
        return await answer

    def _start_holder(self) -> None:
        if self._holder is None:
            self._holder = threading.Thread(target=self._hold_loop, name="exo-bridge-budget",
                                            daemon=True)
            self._holder.start()

    def _hold_loop(self) -> None:
        while (first := self._holds.get()) is not None:
            batch = [first]
            while len(batch) < _BATCH:
                try:
                    item = self._holds.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._holds.put(None)  # stop after this batch
                    break
                batch.append(item)
            self._decide(batch)

    def _decide(self, batch: list[tuple[HoldAsk, Callable[[object], None]]]) -> None:
        results: list[object]
        try:
            with self._write_lock:
                conn = self._connection("_budget_conn", _RESERVE_BUSY_S)
                results = list(store.reserve(conn, self.owner, [ask for ask, _ in batch]))
        except sqlite3.Error as exc:
            results = [store.classify(self.path, exc)] * len(batch)
        for (_, reply), result in zip(batch, results, strict=True):
            reply(result)

    def write_now(self, rows: Sequence[Values]) -> int:
        """Insert rows at once, in the caller's thread (bulk loads: benchmarks, tests)."""
        with self._write_lock:
            conn = self._connection("_budget_conn", _RESERVE_BUSY_S)
            added = store.insert(conn, rows, self._refused)
        self._refresh_today_elsewhere()
        return added

    def _refresh_today_elsewhere(self) -> None:
        day = datetime.now(UTC).date().isoformat()
        with self._write_lock:
            self.today = store.day_totals(self._connection("_budget_conn", _RESERVE_BUSY_S), day)
            self.today_day = day

    # -- reading ----------------------------------------------------------------------------
    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._read_lock:
            try:
                conn = self._connection("_reader", 5.0)
                return conn.execute(sql, tuple(params)).fetchall()
            except sqlite3.Error as exc:
                raise store.classify(self.path, exc) from None

    def check_now(self, timeout: float = 120.0) -> None:
        """Have SQLite check the file now (``usage``): a damaged one is moved aside at once."""
        self._queue.put("check")
        self.flush(timeout)

    def quarantined(self) -> int:
        return journal.quarantined(self.directory)

    def state(self) -> dict[str, Any]:
        """As `status --json` and the endpoint's /health show it."""
        return {"path": str(self.path), "can_record": self.can_record, "problem": self.problem,
                "quarantined": self.quarantined(),
                "quarantine": str(self.directory / journal.QUARANTINE)}
