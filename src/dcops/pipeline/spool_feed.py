"""One spool writer fed by worker processes (`dcops collect syslog --workers N`).

SQLite takes one writer at a time: worker processes writing the same spool file wait for each
other's lock (its busy handler sleeps milliseconds at a time), and two workers stored less than
one. Here each worker encodes its events itself (`encode_rows`, the costly part after parsing)
and sends the rows over a pipe; `SpoolFeed`, a thread of the main process, is the only writer:
it stores what every worker sent since its last transaction in one transaction (group commit)
and only then answers each worker, so a worker acknowledges its reads only once they are in the
spool, as with a local spool.

Messages on a worker's pipe, worker -> main: ("rows", rows, poison) and ("dead", source, raw,
reason, event_id), each answered ("ok",) or ("down", text) (the spool is unavailable: the
worker's sink raises sqlite3.OperationalError and retries like with a local spool);
("stats", snapshot) is not answered (the worker's counters, for /metrics and the stop line).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from dcops.model.event import Event
from dcops.pipeline.spool import SqliteSpool, encode_rows

log = logging.getLogger(__name__)
Rows = list[tuple[str, float, bytes]]
Poison = list[tuple[str, bytes, str, str]]


class RemoteSpool:
    """A worker's event sink: encodes here, stores through the main process's `SpoolFeed`."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._call = threading.Lock()  # one request and its answer at a time
        self._send = threading.Lock()  # stats go out between them

    def _request(self, msg: tuple[Any, ...]) -> None:
        with self._call:
            try:
                with self._send:
                    self.conn.send(msg)
                answer = self.conn.recv()
            except (EOFError, OSError) as exc:
                raise sqlite3.OperationalError(f"spool writer gone: {exc!r}") from exc
        if answer[0] != "ok":
            raise sqlite3.OperationalError(str(answer[1]))

    def publish(self, events: Sequence[Event]) -> None:
        """Store events (one transaction in the main process); returns once they are stored."""
        if events:
            rows, poison = encode_rows(events)
            self._request(("rows", rows, poison))

    def dead_letter(self, source: str, raw: bytes, reason: str, event_id: str = "") -> None:
        """Set aside one item that could not be stored."""
        self._request(("dead", str(source), bytes(raw), str(reason), str(event_id)))

    def send_stats(self, snapshot: dict[str, Any]) -> None:
        """The worker's counters (not answered); a gone main process is ignored here."""
        with contextlib.suppress(OSError, ValueError), self._send:
            self.conn.send(("stats", snapshot))


class SpoolFeed:
    """The main process's writer thread: stores the workers' rows, group-committed."""

    def __init__(self, spool: SqliteSpool, conns: dict[int, Connection],
                 on_stats: Callable[[int, dict[str, Any]], None],
                 on_gone: Callable[[int], None]) -> None:
        self.spool, self.on_stats, self.on_gone = spool, on_stats, on_gone
        self._conns = dict(conns)
        self._by_conn = {id(c): w for w, c in conns.items()}
        self._stop = threading.Event()
        self.transactions = 0
        self.failure: BaseException | None = None  # why the writer thread ended early
        self._thread = threading.Thread(target=self._run, name="spool-feed", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread once nothing more is waiting (call it after the workers are gone)."""
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while self._conns:
                ready = wait(list(self._conns.values()), 0.1)
                if not ready and self._stop.is_set():
                    break  # (after the workers' last messages: their final counters)
                todo: list[tuple[Connection, tuple[Any, ...]]] = []
                for c in ready:
                    assert isinstance(c, Connection)
                    self._read(c, todo)
                if todo:
                    self._store(todo)
        except Exception as exc:  # the collector sees it (WorkerPool.failed) and stops, loudly
            self.failure = exc
            log.exception("spool feed failed: workers can no longer store")

    def _read(self, c: Connection, todo: list[tuple[Connection, tuple[Any, ...]]]) -> None:
        """Every message waiting on `c` (a worker blocks after a request: at most one)."""
        worker = self._by_conn[id(c)]
        try:
            while c.poll():
                msg = c.recv()
                if msg[0] == "stats":
                    self.on_stats(worker, msg[1])
                else:
                    todo.append((c, msg))
        except (EOFError, OSError):
            del self._conns[worker]
            self.on_gone(worker)

    def _store(self, todo: list[tuple[Connection, tuple[Any, ...]]]) -> None:
        rows: Rows = []
        dead: Poison = []
        for _, msg in todo:
            if msg[0] == "rows":
                rows += msg[1]
                dead += msg[2]
            else:
                _, source, raw, reason, event_id = msg
                dead.append((source, raw, reason, event_id))
        try:
            self.spool.publish_rows(rows, dead)
            answer: tuple[Any, ...] = ("ok",)
            self.transactions += 1
        except sqlite3.Error as exc:  # unavailable: the workers retry
            log.warning("spool: %d rows from workers not stored (%s)", len(rows), exc)
            answer = ("down", f"{type(exc).__name__}: {exc}")
        for c, _ in todo:  # a worker gone is noticed on the next read of its pipe
            with contextlib.suppress(OSError, ValueError):
                c.send(answer)
