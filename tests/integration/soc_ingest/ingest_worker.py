"""Subprocess for the SIGKILL test: tail a log into the spool and run detection into a SQLite sink.

Usage: ingest_worker.py run LOG SPOOL SINK [--drain]  |  ingest_worker.py reference SPOOL
The engine is a small stand-in with a resetting event-count correlation and snapshot/restore, the
semantics of dcops.detect's correlations; the sink is a SQLite table with a unique detection id.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from dcops.collectors.logfile import FileTailer
from dcops.model.event import Detection, Event
from dcops.pipeline import Runner, SqliteSpool


class ToyEngine:
    """Per-event rule on failed ssh logins, and 3 failures from one address (then reset)."""

    def __init__(self) -> None:
        self.groups: dict[str, list[str]] = {}

    def process(self, events: Sequence[Event]) -> list[Detection]:
        out = []
        for e in events:
            if e.fields.get("event.outcome") != "failure":
                continue
            out.append(Detection("fail", "failed login", "low", e.timestamp, (e.id,)))
            win = self.groups.setdefault(str(e.fields.get("source.ip")), [])
            win.append(e.id)
            if len(win) >= 3:
                out.append(
                    Detection(
                        "brute",
                        "brute force",
                        "high",
                        e.timestamp,
                        tuple(win),
                        key=str(e.fields.get("source.ip")),
                    )
                )
                win.clear()
        return out

    def snapshot(self) -> bytes:
        return json.dumps(self.groups).encode()

    def restore(self, state: bytes) -> None:
        self.groups = json.loads(state)


class SqliteSink:
    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS detections (id TEXT PRIMARY KEY, rule TEXT)")
        self.db.execute("CREATE TABLE IF NOT EXISTS attempts (id TEXT)")

    def accept(self, detections: Sequence[Detection]) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        for d in detections:
            self.db.execute("INSERT INTO attempts VALUES (?)", (d.id,))
            self.db.execute("INSERT OR IGNORE INTO detections VALUES (?, ?)", (d.id, d.rule_id))
        self.db.execute("COMMIT")


def run(log: str, spool_path: str, sink_path: str, drain: bool) -> None:
    spool = SqliteSpool(spool_path)  # one thread: the runner cannot drain while publish blocks
    spool.register("detect")
    tailer = FileTailer(Path(log), spool, spool, host="lab1", batch_lines=50)
    runner = Runner(spool, ToyEngine(), SqliteSink(sink_path), batch=40, snapshot_every=0.05)
    print("ready", flush=True)
    while True:
        n = tailer.poll()
        m = runner.step()
        if drain and n == 0 and m == 0:
            tailer.close()
            while runner.step():
                pass
            runner.snapshot()
            return
        if n == 0 and m == 0:
            time.sleep(0.01)


def reference(spool_path: str) -> None:
    spool = SqliteSpool(spool_path)
    engine = ToyEngine()
    ids: list[str] = []
    pos = 0
    while batch := spool.fetch_after(pos, 1000):
        ids += [d.id for d in engine.process([e for _, e in batch])]
        pos = batch[-1][0]
    print(json.dumps(ids))


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3], sys.argv[4], "--drain" in sys.argv)
    else:
        reference(sys.argv[2])
