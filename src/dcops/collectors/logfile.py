"""Log-file tailer (auth.log, audit.log, syslog): follows rotation, resumes at inode and offset."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from dcops.collectors.parsers import Normaliser
from dcops.errors import CollectorError
from dcops.model.event import Event
from dcops.model.sinks import EventSink


class OffsetStore(Protocol):
    """Where the tailer keeps its position (the pipeline spool implements it)."""

    def load_checkpoint(self, name: str) -> str | None:
        """The saved value, or None."""
        ...

    def save_checkpoint(self, name: str, value: str) -> None:
        """Save durably."""
        ...


class LineNormaliser(Protocol):
    """Turns lines into Events (dcops.collectors.parsers.Normaliser, the Wazuh alert reader)."""

    stats: Counter[str]

    @property
    def pending(self) -> bool:
        """Lines are held back (an incomplete audit event)."""
        ...

    @property
    def pending_serials(self) -> tuple[str, ...]:
        """Ids of held-back multi-line events."""
        ...

    def line(
        self,
        raw: str,
        *,
        id_parts: tuple[Any, ...],
        received: datetime | None = None,
        peer: str = "",
    ) -> list[Event]:
        """Normalise one line."""
        ...

    def flush(self) -> list[Event]:
        """Complete held-back events."""
        ...


@dataclass(slots=True)
class _Pos:
    inode: int
    offset: int


class FileTailer:
    """Tail one file into an EventSink.

    Position is saved only after the sink made the events durable (at-least-once; event ids come
    from inode and offset, so re-reading after a crash creates no duplicate). Rotation by rename
    and create is followed by draining the old file first (also after a restart, by finding the
    rotated file with the saved inode); copytruncate is detected by the file shrinking.
    """

    def __init__(
        self,
        path: str | Path,
        sink: EventSink,
        store: OffsetStore,
        *,
        source: str = "logfile",
        host: str = "",
        batch_lines: int = 1000,
        from_end: bool = False,
        audit_idle: float = 1.0,
        normaliser: LineNormaliser | None = None,
        program: str = "",
    ) -> None:
        self.path = Path(path)
        self.sink, self.store = sink, store
        self.normaliser: LineNormaliser = normaliser or Normaliser(
            source, default_host=host, default_program=program
        )
        self.batch_lines = batch_lines
        self.from_end = from_end
        self.audit_idle = audit_idle  # seconds without new data before held audit records flush
        self._last_data = 0.0
        self._key = f"logfile:{self.path.resolve()}"
        self._fh: BinaryIO | None = None
        self._pos = _Pos(0, 0)  # committed position
        self._read = 0  # read position in the current file
        self._safe = 0  # offset up to which every line is in a published event
        self._pending_start = 0
        self.published = 0

    def _open(self, path: Path, inode: int, offset: int) -> None:
        fh = path.open("rb")
        if os.fstat(fh.fileno()).st_ino != inode:  # replaced between stat and open: a new file
            inode = os.fstat(fh.fileno()).st_ino
            offset = 0
        self._adopt(fh, inode, offset)

    def _adopt(self, fh: BinaryIO, inode: int, offset: int) -> None:
        if self._fh:
            self._fh.close()
        self._fh = fh
        self._fh.seek(offset)
        self._pos = _Pos(inode, offset)
        self._read = self._safe = self._pending_start = offset

    def _start(self) -> bool:
        """Open at the saved position, draining a rotated file first; False if absent."""
        saved = self.store.load_checkpoint(self._key)
        if saved is None:
            try:
                st = self.path.stat()
            except FileNotFoundError:
                return False
            self._open(self.path, st.st_ino, st.st_size if self.from_end else 0)
            return True
        cp = json.loads(saved)
        inode, offset = int(cp["inode"]), int(cp["offset"])
        # Open first, then compare: a rotation between a stat() and the open() would otherwise
        # start the new file and leave the rest of the saved one unread.
        try:
            fh: BinaryIO | None = self.path.open("rb")
        except FileNotFoundError:
            fh = None
        if fh is not None:
            st = os.fstat(fh.fileno())
            if st.st_ino == inode:  # the saved file, held open: poll() follows any rotation
                self._adopt(fh, inode, offset if offset <= st.st_size else 0)
                return True
            fh.close()
        rotated = self._find_inode(inode)
        if rotated is not None:
            self._open(rotated, inode, offset)
            self._drain(final=True)
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return self._fh is not None  # renamed, not recreated yet: poll() opens it later
        self._open(self.path, st.st_ino, 0)
        return True

    def _find_inode(self, inode: int) -> Path | None:
        for p in self.path.parent.glob(self.path.name + "*"):
            try:
                if p != self.path and p.stat().st_ino == inode and p.suffix not in (".gz", ".xz"):
                    return p
            except OSError:
                continue
        return None

    def poll(self) -> int:
        """Read what is new (following rotation); returns events published."""
        before = self.published
        if self._fh is None and not self._start():
            return 0
        self._drain()
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return self.published - before  # renamed, not recreated yet
        if st.st_ino != self._pos.inode:
            self._drain(final=True)
            self._open(self.path, st.st_ino, 0)
            self._drain()
        elif st.st_size < self._read:  # copytruncate
            self._open(self.path, st.st_ino, 0)
            self._drain()
        return self.published - before

    def _drain(self, *, final: bool = False) -> None:
        """Read to EOF in batches; `final` treats a last line without newline as complete."""
        assert self._fh is not None
        events: list[Event] = []
        lines = 0
        while True:
            self._fh.seek(self._read)
            chunk = self._fh.read(1 << 20)
            if not chunk:
                break
            self._last_data = time.monotonic()
            cut = chunk.rfind(b"\n")
            if cut < 0:
                if not final:
                    break
                cut = len(chunk) - 1
            for raw in chunk[: cut + 1].splitlines(keepends=True):
                start = self._read
                self._read += len(raw)
                events += self._line(raw, start)
                lines += 1
                if lines >= self.batch_lines:
                    self._commit(events)
                    events, lines = [], 0
        if final or (
            self.normaliser.pending and time.monotonic() - self._last_data > self.audit_idle
        ):
            events += self.normaliser.flush()
            self._safe = self._read
        self._commit(events)

    def _line(self, raw: bytes, start: int) -> list[Event]:
        serials = self.normaliser.pending_serials
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        out = self.normaliser.line(text, id_parts=(self._pos.inode, start)) if text.strip() else []
        now = self.normaliser.pending_serials
        if not now:
            self._safe = self._read
        elif now != serials and (not serials or now[0] != serials[0]):
            self._pending_start = start
            self._safe = start
        else:
            self._safe = self._pending_start
        return out

    def _commit(self, events: Sequence[Event]) -> None:
        if events:
            self.sink.publish(events)
            self.published += len(events)
        if self._safe != self._pos.offset:
            self._pos.offset = self._safe
            self.store.save_checkpoint(
                self._key, json.dumps({"inode": self._pos.inode, "offset": self._safe})
            )

    def run(self, stop: threading.Event, interval: float = 0.5) -> None:
        """Poll until `stop` is set."""
        while not stop.is_set():
            try:
                self.poll()
            except OSError as exc:
                raise CollectorError(f"{self.path}: cannot read: {exc}") from exc
            stop.wait(interval)

    def close(self) -> None:
        """Publish held-back audit records and close the file."""
        if self._fh:
            self._commit(self.normaliser.flush())
            self._fh.close()
            self._fh = None
