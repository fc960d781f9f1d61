"""When the app dies anyway: what happened is written under the user state dir, never to a
terminal that isn't there, and the next start says so once.

A long-running process (the tray app, ``serve``) calls :meth:`CrashWatch.start`:

- a fatal error (``Fatal Python error: …``, a segfault, an abort) is written by faulthandler,
  stacks of every thread, to ``crash-<kind>.log``;
- an unhandled exception (``sys.excepthook``, ``threading.excepthook``, the asyncio loop's
  handler) is logged with its traceback to ``exo-bridge.log`` (rotated, 3 x 1 MB);
- a session marker ``sessions/<pid>.json`` exists while the process runs; ``heartbeat()``
  touches it (its mtime is "last seen alive") and ``stop()`` removes it at a clean exit.

:func:`detect` (at the next start, and in ``exo-bridge status``) turns every marker whose
process is gone into a :class:`Crash`, kept in ``last-crash.json``. Nothing written here holds a
key or a token: faulthandler writes only file names and line numbers, and log records pass
through :func:`router.redact.redact` first.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import json
import logging
import logging.handlers
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from router.config import state_dir
from router.processes import alive, process_start
from router.redact import redact, redact_logs

log = logging.getLogger(__name__)

HEARTBEAT_S = 60.0
LOG_FILE = "exo-bridge.log"
LAST_CRASH = "last-crash.json"
_CRASH_LOG_KEEP = 64 * 1024  # a crash log above 4x this is cut to its last part at start


@dataclass(frozen=True, slots=True)
class Crash:
    kind: str  # "tray" or "serve"
    pid: int
    at: float  # unix seconds: when it died (or was last seen alive)
    summary: str  # one line: the fatal error, or why we cannot say more
    details: str  # the file to read
    notified: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def clock_time(self) -> str:
        return time.strftime("%H:%M", time.localtime(self.at))

    def message(self) -> str:
        return f"Exo Bridge quit unexpectedly at {self.clock_time()} — details in {self.details}"


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then masks anything key-shaped (tracebacks included)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class CrashWatch:
    """One process's crash reporting; ``start()`` once, ``stop()`` at a clean exit."""

    def __init__(self, kind: str, directory: Path | None = None):
        self.kind = kind
        self.directory = directory or state_dir()
        self.marker = self.directory / "sessions" / f"{os.getpid()}.json"
        self.crash_log = self.directory / f"crash-{kind}.log"
        self._fatal_file: IO[str] | None = None
        self._handler: logging.Handler | None = None

    @property
    def log_file(self) -> Path:
        return self.directory / LOG_FILE

    def start(self) -> None:
        """Begin reporting (best effort: a state dir we cannot write never stops the app)."""
        try:
            self.marker.parent.mkdir(parents=True, exist_ok=True)
            self._write_marker({"kind": self.kind, "pid": os.getpid(), "started": time.time(),
                                "process_start": process_start(os.getpid())})
            self._start_fatal_log()
            self._start_log_file()
        except OSError as exc:
            log.warning("no crash reports this time: cannot write %s (%s)", self.directory,
                        exc.strerror)
            return
        redact_logs()
        sys.excepthook = self._excepthook
        threading.excepthook = self._thread_excepthook

    def _start_fatal_log(self) -> None:
        _trim(self.crash_log)
        self._fatal_file = open(self.crash_log, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        self._fatal_file.write(f"--- exo-bridge {self.kind} pid {os.getpid()} started "
                               f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        self._fatal_file.flush()
        faulthandler.enable(self._fatal_file, all_threads=True)

    def _start_log_file(self) -> None:
        handler = logging.handlers.RotatingFileHandler(self.directory / LOG_FILE,
                                                       maxBytes=1_000_000, backupCount=3,
                                                       encoding="utf-8")
        handler.setLevel(logging.WARNING)
        handler.setFormatter(RedactingFormatter(
            f"%(asctime)s {self.kind}[%(process)d] %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
        self._handler = handler

    async def beat(self) -> None:
        """Heartbeats for as long as the process runs (one wake-up a minute)."""
        while True:
            self.heartbeat()
            await asyncio.sleep(HEARTBEAT_S)

    def heartbeat(self) -> None:
        """Mark the process alive now (its last-seen time if it is killed)."""
        with contextlib.suppress(OSError):
            os.utime(self.marker)

    def crashed(self, summary: str) -> None:
        """The process is about to exit on an unexpected error: the next start will say so."""
        try:
            data = json.loads(self.marker.read_text(encoding="utf-8"))
            data.update(crashed_at=time.time(), summary=redact(summary)[:300],
                        details=str(self.directory / LOG_FILE))
            self._write_marker(data)
        except (OSError, ValueError):
            pass

    def stop(self) -> None:
        """A clean exit: no crash to report."""
        with contextlib.suppress(OSError):
            self.marker.unlink(missing_ok=True)
        if self._fatal_file is not None:
            faulthandler.disable()
            self._fatal_file.close()
            self._fatal_file = None
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
            self._handler.close()
            self._handler = None

    def loop_exception(self, loop: object, context: dict[str, Any]) -> None:
        """The asyncio loop's exception handler: log what nobody handled."""
        exc = context.get("exception")
        log.error("unhandled error in the event loop: %s", context.get("message", ""),
                  exc_info=exc if isinstance(exc, BaseException) else None)

    def _excepthook(self, kind: type[BaseException], value: BaseException,
                    tb: TracebackType | None) -> None:
        log.error("unhandled exception", exc_info=(kind, value, tb))

    def _thread_excepthook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            log.error("unhandled exception in thread %s", getattr(args.thread, "name", "?"),
                      exc_info=(args.exc_type, args.exc_value, args.exc_traceback))

    def _write_marker(self, data: dict[str, Any]) -> None:
        partial = self.marker.with_suffix(".partial")
        partial.write_text(json.dumps(data), encoding="utf-8")
        partial.replace(self.marker)


def detect(directory: Path | None = None) -> Crash | None:
    """Turn the markers of processes that are gone into crash reports; the newest crash known
    (also one reported before), or None."""
    directory = directory or state_dir()
    try:
        markers = sorted((directory / "sessions").glob("*.json"))
        for marker in markers:
            crash = _crash_of(marker, directory)
            if crash is not None:
                _save(directory, crash)
                marker.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("cannot read the crash reports in %s (%s)", directory, exc.strerror)
    return last_crash(directory)


def last_crash(directory: Path | None = None) -> Crash | None:
    path = (directory or state_dir()) / LAST_CRASH
    try:
        return Crash(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def mark_notified(directory: Path | None = None) -> None:
    directory = directory or state_dir()
    crash = last_crash(directory)
    if crash is not None and not crash.notified:
        with contextlib.suppress(OSError):
            _save(directory, Crash(**{**crash.as_dict(), "notified": True}))


def _crash_of(marker: Path, directory: Path) -> Crash | None:
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
        pid, kind = int(data["pid"]), str(data["kind"])
        seen = marker.stat().st_mtime
    except (OSError, ValueError, KeyError, TypeError):
        marker.unlink(missing_ok=True)  # unreadable: a partial write, nothing to report
        return None
    if alive(pid, data.get("process_start")):
        return None
    if "crashed_at" in data:
        return Crash(kind, pid, float(data["crashed_at"]), str(data.get("summary", "")),
                     str(data.get("details", directory / LOG_FILE)))
    crash_log = directory / f"crash-{kind}.log"
    fatal = _fatal_error(crash_log, pid)
    if fatal is not None:
        return Crash(kind, pid, max(seen, crash_log.stat().st_mtime), fatal, str(crash_log))
    return Crash(kind, pid, seen, "it stopped without a word (killed, or the machine went down); "
                 "last seen running then", str(directory / LOG_FILE))


def _fatal_error(crash_log: Path, pid: int) -> str | None:
    """The first line of what faulthandler wrote for this process, if it wrote anything."""
    try:
        text = crash_log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    header = f" pid {pid} started "
    if header not in text:
        return None
    section = text.rpartition(header)[2].partition("\n--- exo-bridge ")[0]
    lines = [line for line in section.splitlines()[1:] if line.strip()]
    return lines[0][:300] if lines else None


def _save(directory: Path, crash: Crash) -> None:
    partial = directory / (LAST_CRASH + ".partial")
    partial.write_text(json.dumps(crash.as_dict()), encoding="utf-8")
    partial.replace(directory / LAST_CRASH)


def _trim(path: Path) -> None:
    try:
        if path.stat().st_size > 4 * _CRASH_LOG_KEEP:
            tail = path.read_bytes()[-_CRASH_LOG_KEEP:]
            path.write_bytes(tail[tail.find(b"\n--- exo-bridge ") + 1:])
    except OSError:
        pass
