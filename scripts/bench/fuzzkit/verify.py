"""Read canaries back: live (raw SQL on the spool, for pacing and settling) and final (the spool
read with `SqliteSpool.fetch_after`, every event decoded, dead letters and the JSONL sink)."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from dcops.pipeline import SqliteSpool
from fuzzkit.ledger import MARK_RX, MARK_RXB, Ledger

PAGE = 5000


class LiveTally:
    """Canaries seen so far in a spool another process is writing (never blocks it long)."""

    def __init__(self, spool: Path) -> None:
        self.spool = spool
        self.pos = 0
        self.seen: Counter[tuple[str, int]] = Counter()
        self._db: sqlite3.Connection | None = None

    def poll(self) -> int:
        """Read what is new; returns events read."""
        if self._db is None:
            if not self.spool.exists():
                return 0
            self._db = sqlite3.connect(f"file:{self.spool}?mode=ro", uri=True, timeout=10)
        n = 0
        while True:
            try:
                rows = self._db.execute("SELECT seq, body FROM events WHERE seq > ? ORDER BY seq "
                                        "LIMIT ?", (self.pos, PAGE)).fetchall()
            except sqlite3.OperationalError:
                return n
            if not rows:
                return n
            for _seq, body in rows:
                for p, num in set(MARK_RXB.findall(body)):
                    self.seen[(p.decode(), int(num))] += 1
            self.pos = rows[-1][0]
            n += len(rows)

    def missing(self, ledger: Ledger, paths: list[str]) -> int:
        """Canaries sent on `paths` (not dropped by the kernel) not seen yet."""
        return sum(1 for p in paths for n in ledger.sent[p]
                   if (p, n) not in self.seen and n not in ledger.kernel_dropped[p])

    def close(self) -> None:
        """Close the read-only connection."""
        if self._db is not None:
            self._db.close()


def settle(tallies: list[tuple[LiveTally, list[str]]], ledger: Ledger, quiet: float,
           cap: float) -> float:
    """Wait until every canary is seen or no new event arrived for `quiet` seconds."""
    t0 = last = time.monotonic()
    while time.monotonic() - t0 < cap:
        if sum(t.poll() for t, _ in tallies):
            last = time.monotonic()
        if not sum(t.missing(ledger, p) for t, p in tallies):
            break
        if time.monotonic() - last > quiet:
            break
        time.sleep(0.2)
    return time.monotonic() - t0


@dataclass
class SpoolReport:
    """What the spool holds after the collector stopped."""

    events: int = 0
    found: Counter[tuple[str, int]] = field(default_factory=Counter)
    dead_letters: int = 0
    dead_canaries: Counter[tuple[str, int]] = field(default_factory=Counter)
    unreadable: list[int] = field(default_factory=list)
    error: str = ""


def read_spool(path: Path) -> SpoolReport:
    """Every event decoded with SqliteSpool.fetch_after; canaries counted by number."""
    rep = SpoolReport()
    if not path.exists():
        rep.error = "no spool file"
        return rep
    sp = SqliteSpool(path)
    try:
        pos = 0
        while True:
            try:
                batch = sp.fetch_after(pos, PAGE)
            except Exception as exc:  # a row that does not decode: find it, note it, skip it
                bad = _next_seq(path, pos)
                rep.unreadable.append(bad)
                rep.error = f"seq {bad}: {type(exc).__name__}: {exc}"[:300]
                pos = bad
                continue
            if not batch:
                break
            for _, e in batch:
                raw = e.raw
                if e.source == "snmp_trap":  # raw is the packet in hex; v3 ones are encrypted
                    with contextlib.suppress(ValueError):
                        raw = bytes.fromhex(raw).decode("latin-1")
                    vbs = e.fields.get("snmp.varbinds")
                    if isinstance(vbs, dict):
                        raw += " " + " ".join(map(str, vbs.values()))
                for p, num in set(MARK_RX.findall(raw)):
                    rep.found[(p, int(num))] += 1
            rep.events += len(batch)
            pos = batch[-1][0]
        rep.dead_letters = sp.dead_letter_count()
        for d in sp.dead_letters(limit=1 << 40):
            raw_b = d["raw"]
            assert isinstance(raw_b, bytes)
            for p, num in set(MARK_RXB.findall(raw_b)):
                rep.dead_canaries[(p.decode(), int(num))] += 1
    finally:
        sp.close()
    return rep


def _next_seq(path: Path, pos: int) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        row = db.execute("SELECT MIN(seq) FROM events WHERE seq > ?", (pos,)).fetchone()
    return int(row[0]) if row and row[0] is not None else pos + 1


def read_jsonl(path: Path) -> Counter[tuple[str, int]]:
    """Canaries in a JSON-lines sink (one event per line)."""
    found: Counter[tuple[str, int]] = Counter()
    if not path.exists():
        return found
    with path.open("rb") as f:
        for ln in f:
            for p, num in set(MARK_RXB.findall(ln)):
                found[(p.decode(), int(num))] += 1
    return found
