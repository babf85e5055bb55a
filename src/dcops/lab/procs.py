"""Small process helpers: children, liveness, and stopping a process tree for certain."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def alive(pid: int) -> bool:
    """True when `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def ppid(pid: int) -> int:
    """The parent of `pid` (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def children(pid: int) -> list[int]:
    """Direct children of `pid` (from /proc/<pid>/task/*/children)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def cmdline(pid: int) -> list[str]:
    """The argv of `pid`, or [] when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def reap(pid: int) -> None:
    """Collect `pid` when it is our own child (no zombie left behind)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_gone(pids: list[int], timeout: float) -> bool:
    """Wait until none of `pids` is alive; True when they all went in time."""
    deadline = time.monotonic() + timeout
    while True:
        for pid in pids:
            reap(pid)
        if not any(alive(p) for p in pids):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def signal_pid(pid: int, sig: int) -> None:
    """Send `sig` to `pid`, ignoring a process that is already gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def stop(pids: list[int], *, graceful: int | None = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Stop processes: `graceful` signal first (if any), SIGKILL whatever is left after timeout."""
    live = [p for p in pids if alive(p)]
    if graceful is not None:
        for pid in live:
            signal_pid(pid, graceful)
        if wait_gone(live, timeout):
            return
    for pid in live:
        signal_pid(pid, signal.SIGKILL)
    wait_gone(live, 5.0)
