"""Read-only access to the spool's events for readers outside the pipeline (the console's event
details, compliance evidence), so that none of them queries the spool's tables itself.

A reader never creates, locks or migrates the spool: it opens the file read-only and treats a
missing or unreadable spool as holding no events (the console and the auditor then show none).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing
from datetime import datetime
from pathlib import Path

from dcops.model.event import Event
from dcops.pipeline.codec import decode

#: SQLite's default limit on bound parameters is 999 in older builds: ask in chunks below it.
_CHUNK = 500


class SpoolReader:
    """Events of a SQLite spool by id or by time, read-only."""

    def __init__(self, path: Path, *, max_ids: int = 1000) -> None:
        self.path = path
        self.max_ids = max_ids

    def _connect(self) -> sqlite3.Connection | None:
        if not self.path.is_file():
            return None
        try:
            return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        except sqlite3.Error:
            return None

    def by_ids(self, ids: Sequence[str]) -> list[Event]:
        """The events with these ids (at most `max_ids`, duplicates once); ids not in the spool
        (pruned, or another spool's) are left out."""
        wanted = list(dict.fromkeys(ids))[:self.max_ids]
        db = self._connect() if wanted else None
        if db is None:
            return []
        out: list[Event] = []
        with closing(db):
            try:
                for start in range(0, len(wanted), _CHUNK):
                    chunk = wanted[start:start + _CHUNK]
                    marks = ",".join("?" * len(chunk))
                    query = f"SELECT body FROM events WHERE id IN ({marks})"  # noqa: S608 - placeholders only
                    out.extend(decode(body) for (body,) in db.execute(query, chunk))
            except sqlite3.Error:
                return []
        return out

    def since(self, moment: datetime) -> Iterator[Event]:
        """Every event whose own time is at or after `moment`, in the order they were stored."""
        db = self._connect()
        if db is None:
            return
        with closing(db):
            try:
                rows = db.execute("SELECT body FROM events WHERE ts >= ? ORDER BY seq",
                                  (moment.timestamp(),))
                for (body,) in rows:
                    yield decode(body)
            except sqlite3.Error:
                return


class SpoolEvents:
    """The console's EventLookup (dcops.triage.store_contract) over a spool, read-only per lookup.

    A spool that does not exist (yet) or cannot be read gives no events: the alert page then
    lists the event ids only.
    """

    MESSAGE_CHARS = 500

    def __init__(self, path: Path) -> None:
        self.path = path

    def events(self, ids: Sequence[str]) -> list[dict[str, str]]:
        """Time, host, source, action and message of the events with these ids."""
        out: list[dict[str, str]] = []
        for e in SpoolReader(self.path).by_ids(ids):
            f = e.fields
            host = f.get("host.name") or f.get("observer.name") or f.get("host.ip") or ""
            message = str(f.get("message") or e.raw or "")
            out.append({"id": e.id, "time": e.timestamp.isoformat(), "host": str(host),
                        "source": e.source, "action": str(f.get("event.action") or ""),
                        "message": message[:self.MESSAGE_CHARS]})
        return sorted(out, key=lambda x: x["time"])
