"""The ledger's SQLite side: opening (0600, migrated, corruption moved aside), inserting rows with
their rollups, and budget reservations that hold across every process on the data dir."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from router.errors import LedgerCorrupt, LedgerUnavailable
from router.ledger.journal import PRIVATE
from router.ledger.rows import (
    CALLED,
    COLUMNS,
    COMPLETION_TOKENS,
    COST_USD,
    DAY,
    INSERT,
    OUTCOME,
    PROMPT_TOKENS,
    PROVIDER,
    RESERVATION,
    UID,
    UPSERT_DAILY,
    UPSERT_HIST,
    Values,
    rollup,
)
from router.ledger.schema import MIGRATIONS, SCHEMA_VERSION
from router.money.budget_rule import passed

log = logging.getLogger(__name__)


def connect(path: Path, *, busy_s: float = 5.0) -> sqlite3.Connection:
    """A connection to the ledger file, created 0600 if new (its -wal and -shm take the same)."""
    if not path.exists():
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE))
    conn = sqlite3.connect(path, timeout=busy_s, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema to SCHEMA_VERSION, one versioned step at a time."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise LedgerUnavailable(f"the ledger's schema (v{version}) is newer than this program "
                                f"(v{SCHEMA_VERSION}); update exo-bridge")
    for target, script in MIGRATIONS:
        if target > version:
            with transaction(conn):
                if conn.execute("PRAGMA user_version").fetchone()[0] >= target:
                    continue  # another process migrated it meanwhile
                for statement in script:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={target}")


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK only if SQLite has not already rolled back (a full
    disk ends the transaction itself; a second rollback would hide the real error)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def open_checked(path: Path) -> sqlite3.Connection:
    """Open, check (``PRAGMA quick_check``: the one check every process makes at start) and
    migrate; raises LedgerCorrupt for a damaged file, LedgerUnavailable otherwise."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise unavailable(path.parent, exc) from None
    if path.is_dir():
        raise LedgerUnavailable(f"{path} is a directory where the usage ledger should be; move "
                                "it away (or set EXO_BRIDGE_DATA_DIR to another place)")
    try:
        conn = connect(path)
    except (sqlite3.Error, OSError) as exc:
        raise classify(path, exc) from None
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        damage = quick_check(conn)  # every process, at start: a damaged file is not used
        if damage is not None:
            raise sqlite3.DatabaseError(f"quick_check: {damage} (database disk image is malformed)")
        migrate(conn)
        with transaction(conn):  # a read-only file or directory fails here, not at the first row
            pass
    except (sqlite3.Error, OSError) as exc:
        conn.close()
        raise classify(path, exc) from None
    return conn


def quick_check(conn: sqlite3.Connection) -> str | None:
    """None if SQLite finds the file sound, else its first complaint."""
    found = conn.execute("PRAGMA quick_check").fetchall()
    return None if found == [("ok",)] else str(found[0][0])[:200]


def classify(path: Path, exc: BaseException) -> LedgerUnavailable:
    text = str(exc).lower()
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return LedgerCorrupt(f"the usage ledger {path} is damaged ({exc})")
    return unavailable(path, exc)


def unavailable(path: Path, exc: BaseException) -> LedgerUnavailable:
    reason = getattr(exc, "strerror", None) or str(exc)
    if "readonly" in reason.lower() or "read-only" in reason.lower() or "permission" in reason.lower():
        fix = f"make {path.parent if path.suffix else path} writable"
    elif "full" in reason.lower() or "space" in reason.lower():
        fix = "free some disk space"
    else:
        fix = "check that the data directory is writable (or set EXO_BRIDGE_DATA_DIR)"
    return LedgerUnavailable(f"cannot use the usage ledger {path}: {reason}; {fix}")


def move_aside(path: Path) -> Path:
    """Rename a damaged ledger (and its -wal/-shm) out of the way; never delete it."""
    aside = path.with_name(f"{path.name}.corrupt-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}")
    path.rename(aside)
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            extra.rename(aside.with_name(aside.name + suffix))
    return aside


def salvage(aside: Path, conn: sqlite3.Connection, day: str,
            refused: Callable[[Values, str], None]) -> str:
    """Carry what is still readable of a damaged ledger's ``day`` into the new one: the day's
    totals (so its budgets hold) and as many of its rows as can be read. Says what was kept."""
    try:
        old = sqlite3.connect(f"file:{aside}?mode=ro", uri=True)
    except sqlite3.Error:
        return "nothing could be read"
    try:
        totals = _readable(old, "SELECT * FROM daily WHERE day = ?", (day,))
        hist = _readable(old, "SELECT * FROM latency_hist WHERE day = ?", (day,))
        rows = _readable_rows(old, day)
    finally:
        old.close()
    with transaction(conn):
        if totals:  # the totals as they were; the rows below must not be counted again
            conn.executemany(f"INSERT INTO daily VALUES ({', '.join('?' * len(totals[0]))})", totals)
            conn.executemany("INSERT INTO latency_hist VALUES (?, ?, ?, ?)", hist)
            conn.executemany(INSERT, rows)
    if not totals:
        insert(conn, [(*row, None) for row in rows], refused, replay=True)
    return (f"{len(rows)} of today's rows kept" + (", today's totals kept" if totals
                                                    else ", today's totals rebuilt from them"))


def _readable(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.Error:
        return []


def _readable_rows(conn: sqlite3.Connection, day: str) -> list[tuple[Any, ...]]:
    """A day's attempt rows, read by ranges of ids (the day's index may be what is damaged);
    a range that fails is split until only the rows on damaged pages are lost."""
    last = _readable(conn, "SELECT max(id) FROM attempts", ())
    top = last[0][0] if last and last[0][0] else 0
    found: list[tuple[Any, ...]] = []
    ranges = [(low, min(top, low + 1023)) for low in range(1, top + 1, 1024)]
    while ranges:
        low, high = ranges.pop()
        try:
            rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM attempts WHERE id BETWEEN ? AND ?",
                                (low, high)).fetchall()
        except sqlite3.Error:
            if high > low:
                middle = (low + high) // 2
                ranges += [(low, middle), (middle + 1, high)]
            continue
        found += [row for row in rows if row[1] == day]
    return found


# -- rows -----------------------------------------------------------------------------------
def insert(conn: sqlite3.Connection, rows: Sequence[Values],
           refused: Callable[[Values, str], None], *, replay: bool = False) -> int:
    """Insert rows with their rollups and drop their reservations, in one transaction. A row
    SQLite refuses goes to ``refused`` and never holds back the others. Returns rows added."""
    with transaction(conn):
        if replay:  # a journal may repeat rows SQLite already has
            rows = [r for r in rows if conn.execute(
                "SELECT 1 FROM attempts WHERE uid = ?", (r[UID],)).fetchone() is None]
        try:
            added = _insert_all(conn, rows)
        except (sqlite3.IntegrityError, sqlite3.InterfaceError, OverflowError, ValueError):
            added = _insert_each(conn, rows, refused)
        conn.executemany("DELETE FROM reservations WHERE id = ?",
                         [(r[RESERVATION],) for r in rows if r[RESERVATION]])
    return len(added)


def _insert_all(conn: sqlite3.Connection, rows: Sequence[Values]) -> Sequence[Values]:
    conn.execute("SAVEPOINT batch")
    try:
        conn.executemany(INSERT, [r[:UID + 1] for r in rows])
        daily, hist = rollup(rows)
        conn.executemany(UPSERT_DAILY, daily)
        conn.executemany(UPSERT_HIST, hist)
    except BaseException:
        conn.execute("ROLLBACK TO batch")
        conn.execute("RELEASE batch")
        raise
    conn.execute("RELEASE batch")
    return rows


def _insert_each(conn: sqlite3.Connection, rows: Sequence[Values],
                 refused: Callable[[Values, str], None]) -> list[Values]:
    added = []
    for row in rows:
        try:
            _insert_all(conn, [row])
            added.append(row)
        except (sqlite3.IntegrityError, sqlite3.InterfaceError, OverflowError, ValueError) as exc:
            refused(row, f"SQLite refused it: {exc}")
    return added


# -- budgets across processes ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Limits:
    requests: float | None
    tokens: float | None
    cost_usd: float | None


@dataclass(frozen=True, slots=True)
class Hold:
    requests: int
    tokens: int
    cost_usd: float


DayTotals = tuple[Hold, Hold, int]  # a provider's day: (written, held, requests answered)


@dataclass(frozen=True, slots=True)
class HoldAsk:
    """One request's hold: new, or more for ``reservation`` (a growing answer)."""

    provider: str
    day: str
    want: Hold
    limits: Limits
    reservation: str | None = None


@dataclass(frozen=True, slots=True)
class Settle:
    """An attempt has ended: its hold becomes what it really used (1 request, its tokens and
    cost), at once, so the next hold decided sees it before the attempt's row lands."""

    reservation: str
    used: Hold


@dataclass(frozen=True, slots=True)
class Release:
    """A hold nobody will use (granted to a request that was cancelled meanwhile)."""

    reservation: str


Granted = str | tuple[str, float, float]  # the hold's id, or (unit, spent, limit) when over
Change = HoldAsk | Settle | Release


def reserve(conn: sqlite3.Connection, owner: str, asks: Sequence[Change]) -> list[Granted | None]:
    """Decide each change in order, in one write transaction: a hold against its day's limits,
    counting every process's rows and holds (the asks that came together are decided together);
    a settle or a release (None for those)."""
    results: list[Granted | None] = []
    with transaction(conn):
        spent: dict[tuple[str, str], Hold] = {}
        for ask in asks:
            if not isinstance(ask, HoldAsk):
                _change(conn, ask)
                spent.clear()  # a total may have changed
                results.append(None)
                continue
            key = (ask.provider, ask.day)
            now = spent[key] if key in spent else totals(conn, ask.provider, ask.day)
            over = _over(ask, now)
            if over is not None:
                results.append(over)
                spent[key] = now
                continue
            results.append(_hold(conn, owner, ask))
            spent[key] = Hold(now.requests + ask.want.requests, now.tokens + ask.want.tokens,
                              now.cost_usd + ask.want.cost_usd)
    return results


def _change(conn: sqlite3.Connection, change: Settle | Release) -> None:
    if isinstance(change, Release):
        conn.execute("DELETE FROM reservations WHERE id = ?", (change.reservation,))
    else:  # no row yet: the hold is its usage now (a row already written deleted it: no-op)
        conn.execute("UPDATE reservations SET tokens = ?, cost_usd = ? WHERE id = ?",
                     (change.used.tokens, change.used.cost_usd, change.reservation))


def _over(ask: HoldAsk, spent: Hold) -> tuple[str, float, float] | None:
    limits, want = ask.limits, ask.want
    return passed(((limits.requests, spent.requests, want.requests, "request"),
                   (limits.tokens, spent.tokens, want.tokens, "token"),
                   (limits.cost_usd, spent.cost_usd, want.cost_usd, "USD")),
                  growth=ask.reservation is not None)


def _hold(conn: sqlite3.Connection, owner: str, ask: HoldAsk) -> str:
    if ask.reservation is None:
        reservation = uuid.uuid4().hex
        conn.execute("INSERT INTO reservations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (reservation, owner, ask.provider, ask.day, ask.want.requests,
                      ask.want.tokens, ask.want.cost_usd, time.time()))
        return reservation
    conn.execute("UPDATE reservations SET tokens = tokens + ?, cost_usd = cost_usd + ? WHERE id = ?",
                 (ask.want.tokens, ask.want.cost_usd, ask.reservation))
    return ask.reservation


def totals(conn: sqlite3.Connection, provider: str, day: str) -> Hold:
    """Calls, tokens and cost on ``day``: written rows plus every process's holds."""
    used = conn.execute("SELECT calls, prompt_tokens + completion_tokens, cost_usd FROM daily "
                        "WHERE day = ? AND provider = ?", (day, provider)).fetchone() or (0, 0, 0.0)
    held = conn.execute("SELECT count(*), coalesce(sum(tokens), 0), coalesce(sum(cost_usd), 0) "
                        "FROM reservations WHERE day = ? AND provider = ?", (day, provider)).fetchone()
    return Hold(used[0] + held[0], used[1] + held[1], used[2] + held[2])


def day_totals(conn: sqlite3.Connection, day: str) -> dict[str, DayTotals]:
    """provider -> (written, held, requests answered) on ``day``, for the displays (a Hold
    counts calls: what a daily request limit counts)."""
    found: dict[str, DayTotals] = {}
    for provider, calls, tokens, cost, answered in conn.execute(
            "SELECT provider, calls, prompt_tokens + completion_tokens, cost_usd, requests "
            "FROM daily WHERE day = ?", (day,)):
        found[provider] = (Hold(calls, tokens, cost), Hold(0, 0, 0.0), answered)
    for provider, count, tokens, cost in conn.execute(
            "SELECT provider, count(*), sum(tokens), sum(cost_usd) FROM reservations WHERE day = ? "
            "GROUP BY provider", (day,)):
        written, _, answered = found.get(provider, (Hold(0, 0, 0.0), Hold(0, 0, 0.0), 0))
        found[provider] = (written, Hold(count, tokens or 0, cost or 0.0), answered)
    return found


def read_only_totals(path: Path, day: str,
                     journaled: Sequence[Values] = ()) -> dict[str, DayTotals]:
    """``day_totals`` of a ledger that cannot be written (a read-only disk), with the rows of
    ``journaled`` (stopped processes' journals) it does not have yet, each in place of its
    hold. Opened read-only, else as immutable (a WAL not checkpointed is then not seen)."""
    failure: sqlite3.Error | None = None
    for mode in ("mode=ro", "immutable=1") if path.is_file() else ():
        try:
            conn = sqlite3.connect(f"{path.absolute().as_uri()}?{mode}", uri=True)
        except sqlite3.Error as exc:
            failure = exc
            continue
        try:
            return _with_journaled(conn, day_totals(conn, day), day, journaled)
        except sqlite3.Error as exc:
            failure = exc
        finally:
            conn.close()
    if failure is not None:
        raise failure
    return _with_journaled(None, {}, day, journaled)


def _with_journaled(conn: sqlite3.Connection | None, totals: dict[str, DayTotals],
                    day: str, journaled: Sequence[Values]) -> dict[str, DayTotals]:
    zero = Hold(0, 0, 0.0)
    for r in journaled:
        if r[DAY] != day or (conn is not None and conn.execute(
                "SELECT 1 FROM attempts WHERE uid = ?", (r[UID],)).fetchone() is not None):
            continue
        provider = str(r[PROVIDER])
        written, held, answered = totals.get(provider, (zero, zero, 0))
        written = Hold(written.requests + int(r[CALLED]),
                       written.tokens + int(r[PROMPT_TOKENS]) + int(r[COMPLETION_TOKENS]),
                       written.cost_usd + float(r[COST_USD]))
        answered += r[OUTCOME] == "ok"
        hold = conn.execute("SELECT tokens, cost_usd FROM reservations WHERE id = ?",
                            (r[RESERVATION],)).fetchone() if conn is not None else None
        if hold is not None:  # the row replaces its hold
            held = Hold(held.requests - 1, held.tokens - hold[0], held.cost_usd - hold[1])
        totals[provider] = (written, held, answered)
    return totals


def release_owner(conn: sqlite3.Connection, owner: str, today: str) -> int:
    """Drop the holds of a process that is gone (after its journal was replayed), of days
    before ``today`` only. A hold of today with no row is a request that may have been sent
    and paid for (the process was killed mid-answer): it counts, with its estimate, until
    the day ends."""
    with transaction(conn):
        return conn.execute("DELETE FROM reservations WHERE owner = ? AND day < ?",
                            (owner, today)).rowcount


def owners(conn: sqlite3.Connection, today: str) -> list[str]:
    """Processes holding budget of days before ``today`` (theirs to drop once they are gone)."""
    return [row[0] for row in conn.execute(
        "SELECT DISTINCT owner FROM reservations WHERE day < ?", (today,))]


def dumps(values: Values) -> str:
    return json.dumps(values, allow_nan=False, default=str)
