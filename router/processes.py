"""Which process wrote something, and whether it still runs (a reused pid is told apart)."""

from __future__ import annotations

import os
from pathlib import Path


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int, started: object = None) -> bool:
    """Whether ``pid`` is still the process that started at ``started`` (None: any)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return started is None or process_start(pid) == started


def owner_id() -> str:
    """This process, as other processes can check it: ``<pid>-<start>``."""
    pid = os.getpid()
    return f"{pid}-{process_start(pid)}"


def owner_alive(owner: str) -> bool:
    pid, _, started = owner.partition("-")
    try:
        return alive(int(pid), None if started in ("", "None") else int(started))
    except ValueError:
        return False
