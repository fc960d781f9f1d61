"""Each process's own journal, and the quarantine.

A process appends its rows to ``journals/<pid>-<start>.jsonl`` (one small write, no fsync: a
``kill -9`` loses nothing, the OS has it) before the answer is delivered, and empties only its own
journal once SQLite has every row in it. A journal whose process is gone is an orphan: the next
process to look replays it (rows are unique by uid, so nothing counts twice) and removes it.

A line that cannot be used (cut short by a kill, or of the wrong shape) and a row SQLite refuses
go to ``usage.quarantine.jsonl`` with the reason: kept, readable, counted in ``usage``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from router.ledger.rows import Values, checked_values
from router.processes import owner_alive

JOURNALS = "journals"
QUARANTINE = "usage.quarantine.jsonl"
PRIVATE = 0o600  # data files are the user's alone


def open_private(path: Path, flags: int) -> int:
    """A file descriptor for ``path``, created 0600 if new."""
    return os.open(path, flags | os.O_CREAT, PRIVATE)


class Journal:
    """This process's journal."""

    def __init__(self, directory: Path, owner: str):
        self.path = directory / JOURNALS / f"{owner}.jsonl"
        self.path.parent.mkdir(mode=0o700, exist_ok=True)
        self._fd = open_private(self.path, os.O_WRONLY | os.O_APPEND)

    def append(self, values: list[Values]) -> None:
        """One write for the batch; raises OSError (a full disk) for the caller to handle."""
        data = b"".join(json.dumps(v, separators=(",", ":"), allow_nan=False).encode() + b"\n"
                        for v in values)
        written = os.write(self._fd, data)
        if written != len(data):  # a short write on a nearly full disk: keep lines whole
            os.ftruncate(self._fd, os.fstat(self._fd).st_size - written)
            raise OSError(28, "No space left on device")

    def empty(self) -> None:
        os.ftruncate(self._fd, 0)

    def close(self, *, remove: bool) -> None:
        os.close(self._fd)
        if remove:
            self.path.unlink(missing_ok=True)


def orphans(directory: Path, own: str) -> list[Path]:
    """Journals whose process is gone (and the single journal of versions before these)."""
    found = []
    legacy = directory / "usage.sqlite3.journal"
    if legacy.exists():
        found.append(legacy)
    for path in sorted((directory / JOURNALS).glob("*.jsonl")):
        if path.stem != own and not owner_alive(path.stem):
            found.append(path)
    return found


class Unusable(NamedTuple):
    reason: str
    line: str


def read_rows(path: Path) -> Iterator[Values | Unusable]:
    """Each line of a journal: its values, or why it cannot be used."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        yield Unusable(f"cannot read {path}: {exc.strerror}", "")
        return
    for line in lines:
        if not line.strip():
            continue
        text = line.decode("utf-8", "replace")
        try:
            raw = json.loads(line, parse_constant=_no_constant)
        except ValueError:
            yield Unusable("not JSON (a line cut short?)", text)
            continue
        checked = checked_values(raw)
        yield Unusable(checked, text) if isinstance(checked, str) else checked


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number a ledger keeps")


def quarantine(directory: Path, reason: str, line: str) -> None:
    """Keep what could not be used, with why (best effort: a full disk loses the note)."""
    entry = json.dumps({"at": time.time(), "reason": reason, "line": line}) + "\n"
    try:
        fd = open_private(directory / QUARANTINE, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, entry.encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def quarantined(directory: Path) -> int:
    try:
        with open(directory / QUARANTINE, "rb") as handle:
            return sum(1 for _ in handle)
    except OSError:
        return 0
