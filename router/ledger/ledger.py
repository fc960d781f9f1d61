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
is retried; an unexpected error is logged and the turn tried again after a pause; meanwhile
``problem`` says what is wrong, the path and the fix, and the router uses no paid provider
(their spending could not be recorded). A ledger that cannot be written is read read-only, so
today's totals still hold. A damaged file is found by ``PRAGMA quick_check`` when any process
opens it (and daily), moved aside (never deleted), and a new one started with what is still
readable of today's rows, so today's budgets still hold.

One place owns a budget hold's life (``hold``, ``settle``, ``release``, decided in order by
one thread): granted, it becomes the attempt's real usage when the attempt ends, then its row
replaces it; one granted to a request cancelled meanwhile is released; one of a process that
died without a row counts until the day ends.
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

from router.errors import LedgerCorrupt, LedgerUnavailable
from router.ledger import journal, store
from router.ledger.rows import Row, Values, bucket_ms, rows_for
from router.ledger.store import Change, Granted, Hold, HoldAsk, Limits, Release, Settle
from router.processes import owner_alive, owner_id

log = logging.getLogger(__name__)

_WRITER_FAULT = "the usage ledger's writer"

LEDGER_FILE = "usage.sqlite3"
_BATCH = 5000
_BATCH_WAIT_S = 0.25
_RETRY_S = 2.0  # a ledger that cannot be written is tried again this often
_HOUSEKEEPING_S = 30.0  # orphaned journals and holds of processes that are gone
_CHECK_EVERY_S = 86400.0  # PRAGMA quick_check
_MEMORY_ROWS = 500_000  # rows kept in memory while nothing can be written (about 150 MB)
_RESERVE_BUSY_S = 2.0
_FAULTS_TO_CLOSE = 3  # unexpected errors in a row before the writer says it cannot record
_FAULT_BACKOFF_S = (0.25, 30.0)  # first and longest wait after an unexpected error

__all__ = ["LEDGER_FILE", "Hold", "HoldAsk", "Ledger", "LedgerUnavailable", "Limits", "Row",
           "bucket_ms", "rows_for"]


class _Waiting:
    """A request waiting for its hold, as the budget thread and the request's loop share it:
    exactly one of them releases a new hold granted to a request that went away."""

    __slots__ = ("_lock", "answer", "ask", "gone", "granted", "loop")

    def __init__(self, ask: HoldAsk, loop: asyncio.AbstractEventLoop):
        self.ask = ask
        self.loop = loop
        self.answer: asyncio.Future[Granted] = loop.create_future()
        self._lock = threading.Lock()
        self.gone = False
        self.granted: str | None = None

    def deliver(self, result: object) -> bool:
        """In the budget thread: hand the result to the request; False (the caller releases
        it) for a new hold whose request is gone."""
        new = self.ask.reservation is None and isinstance(result, str)
        with self._lock:
            if self.gone:
                return not new
            if new:
                self.granted = result  # type: ignore[assignment]
        try:
            self.loop.call_soon_threadsafe(self._answered, result)
        except RuntimeError:  # its loop is closed: nobody will use it
            return not new
        return True

    def _answered(self, result: object) -> None:
        if self.answer.done():  # cancelled meanwhile: leave() gave the hold back
            return
        if isinstance(result, BaseException):
            self.answer.set_exception(result)
        else:
            self.answer.set_result(result)  # type: ignore[arg-type]

    def leave(self) -> str | None:
        """On the request's loop, as it is cancelled: the new hold granted to it, if any (the
        caller releases it); any later one is released by the budget thread."""
        with self._lock:
            self.gone = True
            return self.granted


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
        self._taken: list[Any] = []  # taken from the queue by the writer, not yet done with
        self._closing = False
        self._stop_backoff = threading.Event()
        self._next_try = 0.0
        self._next_housekeeping = 0.0
        self._next_check = time.monotonic() + _CHECK_EVERY_S  # checked at open, then daily
        self._open()
        self._writer = threading.Thread(target=self._write_loop, name="exo-bridge-ledger",
                                        daemon=True)
        self._writer.start()

    @classmethod
    def in_dir(cls, directory: Path, **kw: Any) -> Ledger:
        return cls(directory / LEDGER_FILE, **kw)

    @property
    def can_record(self) -> bool:
        if self.problem is None and not self._writer.is_alive() and not self._closing:
            self._set_problem(f"{_WRITER_FAULT} stopped; restart exo-bridge (paid providers are "
                              "off until then)")
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
            kept = " (today's use so far still counts)" if self._read_only_totals() else ""
            self._set_problem(f"{problem}; nothing new can be recorded{kept}")
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
        self._closing = True
        self._queue.put(None)
        self._stop_backoff.set()
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
        """Turns until closed. An unexpected error is logged and the turn tried again after a
        pause (nothing taken from the queue is lost); when they keep coming, ``problem`` says
        so, and paid providers are off until a turn succeeds. Should the thread end anyway,
        ``problem`` says that too."""
        faults = 0
        try:
            while True:
                try:
                    if self._turn():
                        return
                except Exception as exc:  # never let the writer die: every row would be lost
                    faults += 1
                    self._writer_fault(exc, faults)
                    continue
                if faults:
                    faults = 0
                    if self.problem is not None and self.problem.startswith(_WRITER_FAULT):
                        self._set_problem(None)
        finally:
            if not self._closing:
                self._set_problem(f"{_WRITER_FAULT} stopped; restart exo-bridge (paid providers "
                                  "are off until then)")

    def _turn(self) -> bool:
        """One turn of the writer: take what is queued, write, housekeeping. True when closed."""
        if not self._taken:
            self._next_batch()
        waiting: list[Any] = []
        for entry in self._taken:
            if isinstance(entry, list):
                self._keep(entry)
            elif entry == "check":
                self._next_check = 0.0
            else:
                waiting.append(entry)
        self._taken = waiting  # rows and checks are taken in; flushes and close wait for the end
        self._write_pending()
        self._housekeeping()
        self._taken = []
        for entry in waiting:
            if isinstance(entry, threading.Event):
                entry.set()
        if any(entry is None for entry in waiting):
            if self._conn is not None:
                self._conn.close()
            return True
        return False

    def _writer_fault(self, exc: Exception, faults: int) -> None:
        log.error("the usage ledger's writer hit an unexpected error (%s: %s); it goes on",
                  type(exc).__name__, exc, exc_info=faults == 1)
        if faults >= _FAULTS_TO_CLOSE:
            self._set_problem(f"{_WRITER_FAULT} keeps failing ({type(exc).__name__}: {exc}); "
                              "it retries, paid providers are off until it records again")
        first, longest = _FAULT_BACKOFF_S
        with contextlib.suppress(Exception):  # the clock itself may be what fails
            self._stop_backoff.wait(min(longest, first * 2 ** (faults - 1)))

    def _keep(self, values: list[Values]) -> None:
        self._pending.extend(values)
        if len(self._pending) > _MEMORY_ROWS:  # nothing written for a very long time
            dropped = len(self._pending) - _MEMORY_ROWS
            del self._pending[:dropped]
            log.error("the usage ledger could not be written for too long: %d rows dropped from "
                      "memory (they are still in the journal if it could be written)", dropped)

    def _next_batch(self) -> None:
        """Take what is queued (rows, flush events, None: close) into ``_taken`` as it is
        taken, so an error meanwhile loses nothing. Nothing after a retry tick."""
        wait = 1.0 if self._pending or self.problem else max(
            0.05, min(_HOUSEKEEPING_S, self._next_check - time.monotonic()))
        try:
            item = self._queue.get(timeout=wait)
        except queue.Empty:
            return
        self._taken.append(item)
        if isinstance(item, list):
            # Rows are already durable in the journal: gather a batch before waking SQLite,
            # so the writer takes the GIL rarely instead of once per request.
            time.sleep(_BATCH_WAIT_S)
        while len(self._taken) < _BATCH:
            try:
                self._taken.append(self._queue.get_nowait())
            except queue.Empty:
                break

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
        """Rows journaled by processes that are gone go in (once), each deleting its hold.
        A hold of today left without a row (the process was killed mid-answer) still counts
        until the day ends; older ones are dropped."""
        assert self._conn is not None
        today = datetime.now(UTC).date().isoformat()
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
                store.release_owner(self._conn, path.stem, today)
            path.unlink(missing_ok=True)
        for owner in store.owners(self._conn, today):
            if owner != self.owner and not owner_alive(owner):
                with self._write_lock:
                    store.release_owner(self._conn, owner, today)

    def _refused_line(self, reason: str, line: str) -> None:
        log.error("a journal line was quarantined: %s", reason)
        journal.quarantine(self.directory, reason, line)

    def _read_only_totals(self) -> bool:
        """Today's totals from the file as it is, opened read-only, when it cannot be written:
        the day's limits still hold on what was used before (True if it could be read)."""
        if self._conn is not None:
            return self.today_day == datetime.now(UTC).date().isoformat()
        day = datetime.now(UTC).date().isoformat()
        try:
            totals = store.read_only_totals(self.path, day, self._journaled())
        except (sqlite3.Error, OSError) as exc:
            log.warning("today's totals could not be read from %s either: %s", self.path, exc)
            return False
        self.today, self.today_day = totals, day
        return True

    def _journaled(self) -> list[Values]:
        """The rows in stopped processes' journals (read, not replayed: nothing can be written)."""
        return [item for path in journal.orphans(self.directory, self.owner)
                for item in journal.read_rows(path) if not isinstance(item, journal.Unusable)]

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
        waiting = _Waiting(ask, asyncio.get_running_loop())
        self._start_holder()
        self._holds.put((ask, waiting))
        try:
            return await waiting.answer
        except asyncio.CancelledError:  # the request went away: a hold granted already goes
            granted = waiting.leave()
            if granted is not None:
                self.release(granted)
            raise

    def settle(self, reservation: str, used: Hold) -> None:
        """The attempt holding ``reservation`` ended having used ``used``: the hold becomes
        that at once (before any later hold of this process is decided), until its row,
        written soon after, replaces it."""
        self._change(Settle(reservation, used))

    def release(self, reservation: str) -> None:
        """A hold that no attempt will use (its request was cancelled before it ran)."""
        self._change(Release(reservation))

    def _change(self, change: Change) -> None:
        self._start_holder()
        self._holds.put((change, None))

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
            try:
                self._decide(batch)
            except Exception:  # never expected: _decide answers every error itself
                log.exception("the budget thread hit an unexpected error; it goes on")

    def _decide(self, batch: list[tuple[Change, _Waiting | None]]) -> None:
        """Holds, settles and releases, in the order they came, in one transaction (a hold
        whose request went away is not taken; one granted as it went away is released at
        once). Never raises: the budget thread must outlive any error (a hold it cannot
        decide is refused)."""
        batch = [(change, waiting) for change, waiting in batch
                 if waiting is None or not waiting.gone]
        results = self._changed([change for change, _ in batch])
        unclaimed = [result for (_, waiting), result in zip(batch, results, strict=True)
                     if waiting is not None and not waiting.deliver(result)]
        self._changed([Release(granted) for granted in unclaimed if isinstance(granted, str)])

    def _changed(self, changes: list[Change]) -> list[object]:
        if not changes:
            return []
        try:
            with self._write_lock:
                conn = self._connection("_budget_conn", _RESERVE_BUSY_S)
                return list(store.reserve(conn, self.owner, changes))
        except sqlite3.Error as exc:
            return [store.classify(self.path, exc)] * len(changes)
        except Exception as exc:
            log.exception("the budget's holds could not be decided")
            return [LedgerUnavailable(f"the usage ledger could not decide a budget hold "
                                      f"({type(exc).__name__}: {exc})")] * len(changes)

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
