"""The default bus: a local SQLite spool in WAL mode (one file, survives SIGKILL and power loss)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily, Metric

from dcops.errors import DcopsError
from dcops.model.event import Event
from dcops.pipeline.bus import CursorTakenError
from dcops.pipeline.codec import decode, encode, ts_forms

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    ts REAL NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (consumer TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cursor_owners (consumer TEXT PRIMARY KEY, owner TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS consumer_state (
    consumer TEXT PRIMARY KEY, seq INTEGER NOT NULL, state BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    source TEXT NOT NULL,
    event_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    raw BLOB NOT NULL
);
"""
# Errors that say the database itself is unavailable (locked, disk full, I/O): retry, never
# dead-letter. Any other error on a row is about that row's content.
_TRANSIENT = (sqlite3.OperationalError,)


def _poison(e: Event, exc: Exception) -> tuple[str, bytes, str, str]:
    """A dead-letter row for an event that cannot be encoded: its raw input and why."""
    raw = e.raw if isinstance(e.raw, str) else repr(e.raw)
    return (str(e.source), raw.encode("utf-8", "replace"), f"{type(exc).__name__}: {exc}",
            str(e.id))


def encode_rows(
    events: Sequence[Event],
) -> tuple[list[tuple[str, float, bytes]], list[tuple[str, bytes, str, str]]]:
    """Spool rows (id, time, body) of `events`, and dead-letter rows for those that cannot be
    encoded (never an exception: an encoding failure is that event's)."""
    rows: list[tuple[str, float, bytes]] = []
    poison: list[tuple[str, bytes, str, str]] = []
    for e in events:
        try:
            rows.append((str(e.id), ts_forms(e.timestamp)[2], encode(e)))
        except Exception as exc:  # any encoding failure is this event's
            poison.append(_poison(e, exc))
    return rows, poison


class SpoolError(DcopsError):
    """The spool file cannot be opened or written."""


class SqliteSpool:
    """Bus and checkpoint store on one SQLite file.

    `max_backlog` bounds how far the slowest consumer may lag: `publish` blocks (backpressure)
    while more events than that are unconsumed, so memory and disk stay bounded. With no consumer
    registered yet there is no limit (collect first, detect later).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_backlog: int = 1_000_000,
        synchronous: str = "FULL",
        poll: float = 0.05,
    ) -> None:
        self.path = Path(path)
        self.max_backlog = max_backlog
        self._poll = poll
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, timeout=60, check_same_thread=False, isolation_level=None
            )
            # A new file gets 16 KiB pages (an existing one keeps its own): a commit of a batch
            # of ~700-byte rows writes a quarter of the page headers and index splits, 10 % less
            # writer CPU per row than 4 KiB pages (scripts/bench/syslog_intake.py's rows).
            self._db.execute("PRAGMA page_size=16384")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("PRAGMA cache_size=-65536")  # 64 MiB: the unique-id index stays hot
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise SpoolError(f"{self.path}: cannot open spool: {exc}") from exc

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def publish(self, events: Sequence[Event]) -> None:
        """Store events in one transaction; duplicates by id are ignored; blocks while full.

        An event the spool cannot hold (its encoding or its row fails) never fails the batch: the
        others are stored and it goes to the dead-letter table with its raw input and the reason
        (`dead_letter_count`). Only an unavailable database (locked, full, I/O) raises.
        """
        if events:
            self.publish_rows(*encode_rows(events))

    def publish_rows(
        self, rows: list[tuple[str, float, bytes]],
        poison: Sequence[tuple[str, bytes, str, str]] = (),
    ) -> None:
        """`publish` of events already encoded by `encode_rows` (elsewhere, e.g. in a worker
        process): one transaction, duplicates ignored, rows SQLite refuses dead-lettered."""
        if not rows and not poison:
            return
        dead = list(poison)
        while self.backlog() >= self.max_backlog:
            time.sleep(self._poll)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                dead += self._insert(rows)
                self._insert_dead(dead)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _insert(self, rows: list[tuple[str, float, bytes]]) -> list[tuple[str, bytes, str, str]]:
        """Insert rows inside the open transaction, bisecting around rows SQLite refuses."""
        if not rows:
            return []
        self._db.execute("SAVEPOINT batch")
        try:
            self._db.executemany(
                "INSERT OR IGNORE INTO events(id, ts, body) VALUES (?, ?, ?)", rows
            )
        except _TRANSIENT:
            self._db.execute("ROLLBACK TO batch")
            self._db.execute("RELEASE batch")
            raise
        except (sqlite3.Error, OverflowError, ValueError, TypeError) as exc:
            self._db.execute("ROLLBACK TO batch")
            self._db.execute("RELEASE batch")
            if len(rows) == 1:
                eid, _, body = rows[0]
                return [("spool", body, f"{type(exc).__name__}: {exc}", eid)]
            mid = len(rows) // 2
            return self._insert(rows[:mid]) + self._insert(rows[mid:])
        self._db.execute("RELEASE batch")
        return []

    def _insert_dead(self, items: Sequence[tuple[str, bytes, str, str]]) -> None:
        if items:
            now = time.time()
            self._db.executemany(
                "INSERT INTO dead_letters(at, source, event_id, reason, raw) "
                "VALUES (?, ?, ?, ?, ?)",
                [(now, src, eid, reason[:1000], raw) for src, raw, reason, eid in items],
            )

    def dead_letter(self, source: str, raw: bytes, reason: str, event_id: str = "") -> None:
        """Set aside one item that could not be stored, with its raw bytes and the reason."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._insert_dead([(str(source), bytes(raw), str(reason), str(event_id))])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def dead_letter_count(self) -> int:
        """Rows in the dead-letter table."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])

    def dead_letters(self, limit: int = 100) -> list[dict[str, object]]:
        """The newest dead letters: time, source, event id, reason and raw bytes."""
        with self._lock:
            rows = self._db.execute(
                "SELECT at, source, event_id, reason, raw FROM dead_letters "
                "ORDER BY seq DESC LIMIT ?", (limit,)
            ).fetchall()
        return [{"at": at, "source": src, "event_id": eid, "reason": reason, "raw": bytes(raw)}
                for at, src, eid, reason, raw in rows]

    def backlog(self) -> int:
        """Events not yet acked by the slowest registered consumer (0 with no consumer)."""
        with self._lock:
            row = self._db.execute(
                "SELECT (SELECT COALESCE(MAX(seq), 0) FROM events) - MIN(seq) FROM cursors"
            ).fetchone()
        return max(0, int(row[0] or 0))  # pruned empty: MAX(seq) is 0, behind the cursors

    def last_position(self) -> int:
        """The newest position of the spool (0 when empty)."""
        with self._lock:
            return int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])

    def count(self) -> int:
        """Events stored."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def register(self, consumer: str) -> None:
        """Create a consumer cursor at the start of the spool if it does not exist."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO cursors(consumer, seq) VALUES (?, 0)", (consumer,)
            )

    def cursor(self, consumer: str) -> int:
        """The consumer's acked position (0 if new)."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq FROM cursors WHERE consumer = ?", (consumer,)
            ).fetchone()
        return int(row[0]) if row else 0

    def fetch(self, consumer: str, limit: int, *, after: int | None = None
              ) -> list[tuple[int, Event]]:
        """Events after the consumer's cursor (after `after` when given: a fenced runner reads
        from where its own windows stand)."""
        return self.fetch_after(self.cursor(consumer) if after is None else after, limit)

    def fetch_after(
        self, position: int, limit: int, upto: int | None = None
    ) -> list[tuple[int, Event]]:
        """Events after `position` (and at or before `upto`), in order."""
        hi = upto if upto is not None else 1 << 62
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, body FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                (position, hi, limit),
            ).fetchall()
        return [(int(s), decode(b)) for s, b in rows]

    def save_state(self, consumer: str, position: int, state: bytes) -> None:
        """Save a consumer's in-memory state as it was after handling `position`."""
        with self._lock:
            self._db.execute(
                "INSERT INTO consumer_state(consumer, seq, state) VALUES (?, ?, ?) "
                "ON CONFLICT(consumer) DO UPDATE SET seq = excluded.seq, state = excluded.state",
                (consumer, position, state),
            )

    def load_state(self, consumer: str) -> tuple[int, bytes] | None:
        """The last saved state and its position."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq, state FROM consumer_state WHERE consumer = ?", (consumer,)
            ).fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    def ack(self, consumer: str, position: int, *, owner: str | None = None) -> None:
        """Advance the cursor (never backwards); with `owner`, only while `owner` holds the
        cursor's claim (CursorTakenError otherwise), in one transaction."""
        upsert = ("INSERT INTO cursors(consumer, seq) VALUES (?, ?) ON CONFLICT(consumer) "
                  "DO UPDATE SET seq = MAX(seq, excluded.seq)")
        with self._lock:
            if owner is None:
                self._db.execute(upsert, (consumer, position))
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT owner FROM cursor_owners WHERE consumer = ?",
                                       (consumer,)).fetchone()
                holder = str(row[0]) if row else ""
                if holder != owner:
                    raise CursorTakenError(consumer, holder)
                self._db.execute(upsert, (consumer, position))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def claim(self, consumer: str, owner: str) -> int:
        """Make `owner` the only writer of the cursor (created at 0 if new); its position."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT OR IGNORE INTO cursors(consumer, seq) VALUES (?, 0)",
                                 (consumer,))
                self._db.execute(
                    "INSERT INTO cursor_owners(consumer, owner) VALUES (?, ?) "
                    "ON CONFLICT(consumer) DO UPDATE SET owner = excluded.owner",
                    (consumer, owner))
                seq = self._db.execute("SELECT seq FROM cursors WHERE consumer = ?",
                                       (consumer,)).fetchone()[0]
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return int(seq)

    def last_acked_time(self, consumer: str) -> datetime | None:
        """Timestamp of the newest acked event."""
        pos = self.cursor(consumer)
        with self._lock:
            row = self._db.execute("SELECT MAX(ts) FROM events WHERE seq <= ?", (pos,)).fetchone()
        if not pos or row[0] is None:
            return None
        return datetime.fromtimestamp(float(row[0]), UTC)

    def replay(self, consumer: str, since: datetime) -> list[Event]:
        """Acked events with timestamp >= since, in spool order."""
        pos = self.cursor(consumer)
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM events WHERE seq <= ? AND ts >= ? ORDER BY seq",
                (pos, since.timestamp()),
            ).fetchall()
        return [decode(b) for (b,) in rows]

    def prune(self, keep_seconds: float, now: float | None = None) -> int:
        """Delete events every consumer acked and older than keep_seconds; returns the count."""
        cutoff = (time.time() if now is None else now) - keep_seconds
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM events WHERE seq <= (SELECT MIN(seq) FROM cursors) AND seq <= "
                "(SELECT COALESCE(MIN(seq), 1 << 62) FROM consumer_state) AND ts < ?",
                (cutoff,),
            )
        return cur.rowcount

    def load_checkpoint(self, name: str) -> str | None:
        """A saved checkpoint value."""
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM checkpoints WHERE name = ?", (name,)
            ).fetchone()
        return str(row[0]) if row else None

    def save_checkpoint(self, name: str, value: str) -> None:
        """Save a checkpoint durably."""
        with self._lock:
            self._db.execute(
                "INSERT INTO checkpoints(name, value) VALUES (?, ?) ON CONFLICT(name) "
                "DO UPDATE SET value = excluded.value",
                (name, value),
            )


    def update_checkpoint(
        self, name: str, change: Callable[[str | None], str | None]
    ) -> str | None:
        """Compare-and-set a checkpoint in one transaction: `change(old)` -> new (None:
        unchanged); returns the value stored at the end."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT value FROM checkpoints WHERE name = ?", (name,)
                ).fetchone()
                old = str(row[0]) if row else None
                new = change(old)
                if new is not None and new != old:
                    self._db.execute(
                        "INSERT INTO checkpoints(name, value) VALUES (?, ?) ON CONFLICT(name) "
                        "DO UPDATE SET value = excluded.value", (name, new))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return new if new is not None else old


class SpoolMetrics:
    """Dead letters and stored events of a spool, for a collector's /metrics (Collector)."""

    def __init__(self, spool: SqliteSpool) -> None:
        self.spool = spool

    def collect(self) -> Iterator[Metric]:
        """prometheus_client Collector protocol (reads two counts per scrape)."""
        g = GaugeMetricFamily("dcops_spool_dead_letters", "Rows in the spool's dead-letter table "
                              "(events it could not store, kept with their raw input)")
        g.add_metric([], self.spool.dead_letter_count())
        yield g
