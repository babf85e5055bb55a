"""One spool writer fed by worker processes: each event once, answered only after the commit.

The workers here are forked processes on real pipes, writing through a real SQLite spool in the
main process (dcops.pipeline.spool_feed), as `dcops collect syslog --workers N` runs them.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from dcops.model.event import Event, LogSource
from dcops.pipeline.spool import SqliteSpool
from dcops.pipeline.spool_feed import RemoteSpool, SpoolFeed

CTX = multiprocessing.get_context("fork")


def event(worker: int, i: int) -> Event:
    return Event(id=f"w{worker}-{i}", timestamp=datetime(2026, 11, 22, tzinfo=UTC),
                 source="syslog", logsource=LogSource("linux", "sshd"),
                 fields={"n": i, "worker": worker}, raw=f"line {i} of worker {worker}")


def _worker(conn: Connection, worker: int, batches: int, size: int, path: str) -> None:
    """Publish batches; after each answer, the rows must already be in the spool file."""
    sink = RemoteSpool(conn)
    for b in range(batches):
        sink.publish([event(worker, b * size + i) for i in range(size)])
        with sqlite3.connect(path) as db:  # another connection: committed, not just sent
            last = f"w{worker}-{b * size + size - 1}"
            if db.execute("SELECT COUNT(*) FROM events WHERE id = ?", (last,)).fetchone()[0] != 1:
                raise SystemExit(3)
        sink.send_stats({"worker": worker, "batches": b + 1})
    sink.dead_letter("syslog_tcp", b"\xff bad", "parse: ValueError: test", "")
    raise SystemExit(0)


def run_workers(spool: SqliteSpool, path: Path, n: int, batches: int, size: int
                ) -> tuple[SpoolFeed, dict[int, Any], list[int]]:
    stats: dict[int, Any] = {}
    gone: list[int] = []
    conns, procs = {}, []
    for w in range(n):
        mine, theirs = CTX.Pipe()
        p = CTX.Process(target=_worker, args=(theirs, w, batches, size, str(path)))
        p.start()
        theirs.close()
        conns[w], procs = mine, [*procs, p]
    feed = SpoolFeed(spool, conns, stats.__setitem__, gone.append)
    feed.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0, f"worker exit code {p.exitcode}"
    feed.stop()
    return feed, stats, gone


def test_every_event_once_and_answered_after_commit(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = SqliteSpool(path)
    feed, stats, gone = run_workers(spool, path, n=3, batches=20, size=250)
    assert spool.count() == 3 * 20 * 250
    with sqlite3.connect(path) as db:
        ids = [r[0] for r in db.execute("SELECT id FROM events")]
    assert len(set(ids)) == len(ids) == 15_000
    assert spool.dead_letter_count() == 3
    assert {w: s["batches"] for w, s in stats.items()} == {0: 20, 1: 20, 2: 20}
    assert sorted(gone) == [0, 1, 2]  # each worker's end of the pipe closed with it
    assert 0 < feed.transactions <= 3 * 20 + 3  # group commit never needs more


def test_a_spool_that_fails_makes_the_worker_sink_raise_operational_error(tmp_path: Path) -> None:
    spool = SqliteSpool(tmp_path / "spool.db")
    spool.close()  # every write now raises sqlite3.ProgrammingError: unavailable
    mine, theirs = CTX.Pipe()
    feed = SpoolFeed(spool, {0: mine}, lambda w, s: None, lambda w: None)
    feed.start()
    sink = RemoteSpool(theirs)
    done: list[BaseException] = []

    def publish() -> None:
        try:
            sink.publish([event(0, 1)])
        except BaseException as exc:  # the test inspects it
            done.append(exc)

    t = threading.Thread(target=publish)
    t.start()
    t.join(10)
    feed.stop()
    assert len(done) == 1 and isinstance(done[0], sqlite3.OperationalError)
    assert "ProgrammingError" in str(done[0])


def test_a_gone_writer_is_an_unavailable_spool_not_a_hang(tmp_path: Path) -> None:
    mine, theirs = CTX.Pipe()
    mine.close()
    with pytest.raises(sqlite3.OperationalError, match="spool writer gone"):
        RemoteSpool(theirs).publish([event(0, 1)])


def test_a_writer_thread_that_fails_says_why(tmp_path: Path) -> None:
    """An unexpected error ends the writer thread: it keeps the reason for the collector, which
    stops loudly (WorkerPool.failed) instead of leaving its workers waiting for answers."""
    mine, theirs = CTX.Pipe()

    def broken(worker: int, snapshot: dict[str, Any]) -> None:
        raise RuntimeError("counters refused")

    feed = SpoolFeed(SqliteSpool(tmp_path / "spool.db"), {0: mine}, broken, lambda w: None)
    feed.start()
    RemoteSpool(theirs).send_stats({"worker": 0})
    feed._thread.join(10)
    assert not feed._thread.is_alive()
    assert isinstance(feed.failure, RuntimeError) and "counters refused" in str(feed.failure)
