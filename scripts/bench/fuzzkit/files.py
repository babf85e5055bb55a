"""File paths (log tailer, Wazuh alerts.json): hostile lines and canaries while rotating.

Rotations are raced against the tailer while the writer keeps writing:
- rename + create in logrotate's order: the file is renamed, a new one created, and the
  "daemon" still appends a few lines (canaries among them) to the renamed file before it
  reopens the new one;
- copytruncate: copy, then truncate in place while the writer's O_APPEND descriptor stays
  open. Lines the tailer had not read before the truncation exist only in the copy, which no
  tailer can know about (logrotate documents this loss), so the harness waits until the tailer's
  checkpoint reached the end of the file before it copies and truncates;
- a last line without its newline just before a rotation.
The writer is paced by the tailer's own checkpoint (at most `LAG` bytes ahead of it).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from fuzzkit.ledger import Ledger

LAG = 4 << 20
ROTATE_AT = 8 << 20


class Checkpoint:
    """The tailer's saved position for `path`, read from its spool's checkpoints table."""

    def __init__(self, spool: Path, path: Path) -> None:
        self.spool, self.key = spool, f"logfile:{path.resolve()}"
        self._db: sqlite3.Connection | None = None

    def get(self) -> tuple[int, int] | None:
        """(inode, offset) or None before the first save."""
        if self._db is None:
            if not self.spool.exists():
                return None
            self._db = sqlite3.connect(f"file:{self.spool}?mode=ro", uri=True, timeout=10)
        try:
            row = self._db.execute("SELECT value FROM checkpoints WHERE name = ?",
                                   (self.key,)).fetchone()
        except sqlite3.OperationalError:
            return None
        if not row:
            return None
        cp = json.loads(row[0])
        return int(cp["inode"]), int(cp["offset"])

    def close(self) -> None:
        """Close the read-only connection."""
        if self._db is not None:
            self._db.close()


class Writer:
    """Appends to a log file the way a daemon does, and rotates it on demand."""

    def __init__(self, path: Path, cp: Checkpoint, ledger: Ledger, alive: Callable[[], bool]):
        self.path, self.cp, self.ledger, self.alive = path, cp, ledger, alive
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.rotations = 0
        self.waited = 0.0

    def write(self, data: bytes) -> None:
        """Append (one write: whole lines stay whole)."""
        os.write(self.fd, data)

    def _lag(self) -> int:
        st = os.fstat(self.fd)
        cp = self.cp.get()
        if cp is None or cp[0] != st.st_ino or cp[1] > st.st_size:
            return st.st_size  # not started, still on the old file, or truncation not seen
        return st.st_size - cp[1]

    def pace(self, most: int = LAG, stall: float = 60.0) -> bool:
        """Wait until the tailer is at most `most` bytes behind; False if it made no progress
        for `stall` seconds (or died)."""
        t0 = moved = time.monotonic()
        low = self._lag()
        while low > most:
            time.sleep(0.01)
            lag, now = self._lag(), time.monotonic()
            if lag < low:
                low, moved = lag, now
            elif now - moved > stall or not self.alive():
                self.ledger.notes.append(f"{self.path.name}: tailer still {lag:,} bytes behind, "
                                         f"no progress for {now - moved:.0f} s")
                return False
        self.waited += time.monotonic() - t0
        return True

    def size(self) -> int:
        """Bytes in the file being written."""
        return os.fstat(self.fd).st_size

    def rename_create(self, late: list[bytes]) -> None:
        """logrotate `create`: rename, create the new file, `late` lines still go to the old."""
        self.rotations += 1
        os.rename(self.path, self.path.with_name(f"{self.path.name}.{self.rotations}"))
        new = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        for chunk in late:  # the daemon has not reopened its log yet
            os.write(self.fd, chunk)
            time.sleep(0.002)
        os.close(self.fd)
        self.fd = new

    def copytruncate(self) -> bool:
        """logrotate `copytruncate`, once the tailer has read everything (False: not done)."""
        if not self.pace(0):
            return False
        self.rotations += 1
        shutil.copyfile(self.path, self.path.with_name(f"{self.path.name}.{self.rotations}"))
        os.ftruncate(self.fd, 0)
        return True

    def close(self) -> None:
        """Close the descriptor."""
        os.close(self.fd)


def feed(writer: Writer, count: int, every: int, rng: random.Random, ledger: Ledger, path: str,
         hostile: Callable[[], tuple[str, bytes]], canary: Callable[[str, int], bytes],
         collector: str, copytruncate: bool, huge_lines: int, deadline: float) -> None:
    """Write `count` hostile lines with a canary after every `every`, rotating as it goes."""
    batch: list[bytes] = []
    huge_at = {rng.randrange(1, count + 1) for _ in range(huge_lines if count else 0)}

    def add_canary(out: list[bytes]) -> None:
        n, mark = ledger.canary(path)
        out.append(canary(mark, n) + b"\n")
        ledger.confirm(path, n)

    add_canary(batch)
    for i in range(1, count + 1):
        if i in huge_at:  # longer than the tailer's 1 MiB read and any sane cap
            batch.append(b"<13>Nov 22 04:44:50 h p: " + b"B" * (2 << 20) + b"\n")
            ledger.hostile[f"{collector}/{path}:line_2mib"] += 1
        else:
            kind, data = hostile()
            batch.append(data + (b"\r\n" if i % 7 == 0 else b"\n"))
            ledger.hostile[f"{collector}/{path}:{kind}"] += 1
        ledger.tick(path, i, count)
        if i % every == 0:
            add_canary(batch)
        if len(batch) >= 64:
            writer.write(b"".join(batch))
            batch = []
            if not writer.pace() or time.monotonic() > deadline:
                ledger.abort(path, f"tailer stalled or phase deadline reached after {i:,} of "
                             f"{count:,} lines")
                break
            if writer.size() > ROTATE_AT:
                _rotate(writer, rng, ledger, path, collector, copytruncate, add_canary)
    add_canary(batch)
    writer.write(b"".join(batch))


def _rotate(writer: Writer, rng: random.Random, ledger: Ledger, path: str, collector: str,
            copytruncate: bool, add_canary: Callable[[list[bytes]], None]) -> None:
    if copytruncate and writer.rotations % 2:
        if writer.copytruncate():
            ledger.hostile[f"{collector}/{path}:copytruncate"] += 1
        return
    if rng.random() < 0.5:  # a last line without its newline, completed after the rename
        writer.write(b"<13>Nov 22 04:44:50 h p: unterminated before rotation")
    late: list[bytes] = [b" (completed late)\n"]
    for _ in range(rng.randint(1, 6)):
        chunk: list[bytes] = []
        add_canary(chunk)
        late += chunk
    writer.rename_create(late)
    ledger.hostile[f"{collector}/{path}:rename_create"] += 1
