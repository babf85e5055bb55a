"""Log-file tailer (auth.log, audit.log, syslog, alerts.json): bounded, rotation-proof, resumable.

Position is saved only after the sink made the events durable (at-least-once; event ids come from
inode, copytruncate generation and offset, so re-reading after a crash creates no duplicate). No
line longer than `max_message_bytes` is read into memory: it is cut, marked (`log.truncated`,
`log.original_size`) and counted. Rotation by rename and create, an atomic replace, a swapped
symlink and a deleted file are followed after the old file has been read to its end and has been
quiet for `rotate_wait` seconds (a writer that has not reopened yet still appends to it);
copytruncate is detected by the file shrinking or its first bytes changing, and the lines written
after the last read are taken from the copy. A line the normaliser fails on is dead-lettered.
If the sink is down the batch is kept and retried and nothing more is read (the file is the queue).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from dcops.collectors.health import (
    DEFAULT_MAX_MESSAGE_BYTES,
    ORIGINAL_SIZE_FIELD,
    TRUNCATED_FIELD,
    SourceStats,
)
from dcops.collectors.logfile_lines import Line, LineReader, last_line_end, utf8_text
from dcops.collectors.logfile_outbox import Outbox
from dcops.collectors.logfile_state import FileId, find_copy, find_renamed, load, open_id
from dcops.collectors.parsers import Normaliser
from dcops.model.event import Event
from dcops.model.sinks import EventSink

log = logging.getLogger(__name__)
BATCH_BYTES = 8 << 20  # a batch is committed at batch_lines lines or this many bytes


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


class FileTailer:
    """Tail one file into an EventSink (see the module docstring)."""

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
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        rotate_wait: float = 0.0,
        stats: SourceStats | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.sink, self.store, self.source = sink, store, source
        self.normaliser: LineNormaliser = normaliser or Normaliser(
            source, default_host=host, default_program=program,
            max_message_chars=max_message_bytes,  # never cuts again what the reader kept
        )
        self.stats = stats or SourceStats(source)
        self.events: Counter[str] = Counter()  # rotations and other file incidents, by kind
        self.batch_lines = batch_lines
        self.from_end = from_end
        self.audit_idle = audit_idle  # seconds without new data before held audit records flush
        # seconds a rotated-away file must have been quiet (no bytes, no mtime change) before it
        # is left: a writer that has not reopened the new file yet still appends to the old one
        self.rotate_wait = rotate_wait
        self._clock = clock  # wall-clock time (compared with file mtimes)
        # the file name is kept as given (a symlink swapped to a new target keeps its checkpoint)
        self._key = f"logfile:{self.path.parent.resolve() / self.path.name}"
        self._reader = LineReader(max_message_bytes)
        self._fd: int | None = None
        self._fid = FileId(0)
        self._saved = -1  # offset of the saved checkpoint (-1: none saved by this tailer)
        self._safe = 0  # offset up to which every line is in a delivered or pending event
        self._pending_start = 0
        self._trunc_held: int | None = None  # size of a cut line the normaliser holds back
        self._grew_at = -float("inf")  # clock() when the current file last gave bytes
        self._truncating = False
        self._out = Outbox(sink, self.stats, str(self.path))
        self._last_error = ""
        self._received = 0  # lines read since the last commit (counted in stats there)
        self.published = 0

    # -- health ---------------------------------------------------------------------------------
    @property
    def queue_depth(self) -> int:
        """Events read but not yet stored (the sink is down)."""
        return self._out.depth

    @property
    def oldest_unstored(self) -> float | None:
        """time.time() of the oldest input read but not stored, or None."""
        return self._out.since

    @property
    def nul_runs(self) -> int:
        """Runs of NUL bytes skipped at line starts."""
        return self._reader.nul_runs

    @property
    def unread_bytes(self) -> int:
        """Bytes of the current file after the saved position."""
        if self._fd is None:
            return 0
        try:
            return max(0, os.fstat(self._fd).st_size - max(self._saved, 0))
        except OSError:
            return 0

    # -- opening ---------------------------------------------------------------------------------
    def _adopt(self, fd: int, fid: FileId, offset: int) -> None:
        self._close_fd()
        self._fd, self._fid = fd, fid
        self._reader.reset(offset)
        self._safe = self._pending_start = offset

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _start(self) -> bool:
        """Open at the saved position, the rotated file first if it was rotated; False if absent."""
        saved = load(v) if (v := self.store.load_checkpoint(self._key)) is not None else None
        opened = open_id(self.path)  # open first, then compare: rotation may happen in between
        if saved is None:
            if opened is None:
                return False
            fd, fid = opened
            self._adopt(fd, fid, last_line_end(fd) if self.from_end else 0)
            return True
        old, offset = saved
        if opened is not None:
            fd, fid = opened
            if fid.inode == old.inode:  # poll() detects a truncation and follows any rotation
                old.file = fid.file
                if old.matches(fd):
                    old.learn_head(fd)
                self._adopt(fd, old, offset)
                return True
        where = find_renamed(self.path, old)
        if where is not None and (o := open_id(where)) is not None and o[1].inode == old.inode:
            if opened is not None:
                os.close(opened[0])
            self.events["renamed"] += 1
            old.file = o[1].file
            self._adopt(o[0], old, offset)  # poll() reads it to its end, then the new file
            return True
        if opened is None:
            return False
        self._adopt(*opened, 0)
        return True

    # -- polling --------------------------------------------------------------------------------
    def poll(self, stop: threading.Event | None = None) -> int:
        """Read what is new (following rotation); returns events published. Never raises for
        the file or the sink: errors are logged, counted and retried on the next poll."""
        before = self.published
        try:
            self._poll(stop)
            self._last_error = ""
        except OSError as exc:
            self.events["io_error"] += 1
            msg = f"{self.path}: cannot read: {exc.strerror or exc}"
            if msg != self._last_error:
                log.warning("%s (retrying every poll)", msg)
                self._last_error = msg
        return self.published - before

    def _poll(self, stop: threading.Event | None) -> None:
        if not self._commit([]):
            return  # the sink is still down: read nothing more
        if self._fd is None:
            try:
                if not self._start():
                    return
            except OSError:
                raise
            except Exception as exc:  # the checkpoint store is down
                self._out.failed(exc)
                return
        assert self._fd is not None
        if (os.fstat(self._fd).st_size < self._reader.scan or not self._fid.matches(self._fd)
                or not _line_start(self._fd, self._reader.start)):
            self._truncated()
            return
        self._fid.learn_head(self._fd)
        if self._drain(stop=stop):
            self._follow(stop)

    def _truncated(self) -> None:
        """copytruncate: lines after the last read come from the copy, then the file from 0."""
        assert self._fd is not None
        if not self._truncating:
            self._truncating = True
            self.events["copytruncate"] += 1
            log.info("%s: truncated (copytruncate); reading it again from its start", self.path)
        copy = find_copy(self.path, self._fid, self._reader.start + 1)
        if copy is not None and (o := open_id(copy)) is not None:
            self.events["copy_read"] += 1
            fd, self._fd = self._fd, o[0]
            try:
                done = self._drain(final=True)
            finally:
                os.close(self._fd)
                self._fd = fd
        else:  # nothing to rescue: complete what the normaliser holds, read nothing
            done = self._finish()
        if not done:
            return  # the sink is down: the next poll detects the truncation again and goes on
        self._truncating = False
        new = FileId(self._fid.inode, self._fid.gen + 1, file=self._fid.file)
        new.learn_head(self._fd)
        self._fid = new
        self._reader.reset(0)
        self._safe = self._pending_start = 0
        self._drain()

    def _follow(self, stop: threading.Event | None) -> None:
        """Leave a file that was rotated away, replaced or deleted once it has been quiet."""
        assert self._fd is not None
        try:
            st: os.stat_result | None = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if st is not None and st.st_ino == self._fid.inode:
            return
        old = os.fstat(self._fd)
        gone = old.st_nlink == 0
        if st is None and not gone:
            return  # renamed, not recreated yet: its writer may still append
        if self._clock() - max(self._grew_at, old.st_mtime) < self.rotate_wait:
            return  # still written to (or just now): read on, switch later
        if not self._drain(final=True, stop=stop):
            return
        # Open the successor before leaving (an unreadable one keeps the old file current).
        opened = open_id(self.path) if st is not None else None
        kind = ("deleted" if opened is None else "symlink" if self.path.is_symlink()
                else "replaced" if gone else "renamed")
        self.events[kind] += 1
        log.info("%s: %s; %s", self.path, kind, "released" if opened is None else "reading on")
        if opened is None:  # deleted and not recreated: forget it (its inode may be reused)
            self._close_fd()
            self._fid = FileId(0)
            try:
                self._save(0)
            except Exception as exc:  # a reused inode is still told apart by its head bytes
                self._out.failed(exc)
            return
        self._adopt(*opened, 0)
        self._drain(stop=stop)

    def _drain(self, *, final: bool = False, stop: threading.Event | None = None) -> bool:
        """Read to EOF in batches; `final` treats a last line without newline as complete.
        False if the sink could not take a batch (it is retried by the next poll)."""
        assert self._fd is not None
        events: list[Event] = []
        lines = size = 0
        scanned = self._reader.scan
        for ln in self._reader.read(self._fd, final=final):
            events += self._line(ln)
            lines, size = lines + 1, size + len(ln.data)
            if lines >= self.batch_lines or size >= BATCH_BYTES:
                self._grew_at = self._clock()
                if not self._commit(events):
                    return False
                events, lines, size = [], 0, 0
                if stop is not None and stop.is_set():
                    return False
        if self._reader.scan != scanned:
            self._grew_at = self._clock()
        if final or (
            self.normaliser.pending and self._clock() - self._grew_at > self.audit_idle
        ):
            return self._finish(events)
        return self._commit(events)

    def _finish(self, events: list[Event] | None = None) -> bool:
        """Complete held-back events: everything read so far is then in events."""
        events = (events or []) + self._flush_normaliser()
        self._safe = self._reader.start
        return self._commit(events)

    def _line(self, ln: Line) -> list[Event]:
        out: list[Event] = []
        serials = self.normaliser.pending_serials
        if ln.data.strip():
            self._received += 1
            out = self._normalise(ln)
        now = self.normaliser.pending_serials
        if not now:
            self._safe = ln.end
        elif now != serials and (not serials or now[0] != serials[0]):
            self._pending_start = ln.start
            self._safe = ln.start
        else:
            self._safe = self._pending_start
        if not now:
            self._trunc_held = None
        return out

    def _normalise(self, ln: Line) -> list[Event]:
        cut = ln.cut
        text = utf8_text(ln.data, cut)
        nstats = self.normaliser.stats
        malformed = nstats.get("malformed", 0)
        out: list[Event] = []
        try:
            out = self.normaliser.line(text, id_parts=self._fid.id_parts(ln.start))
        except Exception as exc:  # a parser bug must not stop the file: keep the line aside
            self._normaliser_failed(ln, exc)
        if (n := nstats.get("malformed", 0) - malformed) > 0:
            self.stats.unparsed(n)  # kept as raw events: counted, not dropped
        if cut and (out or self.normaliser.pending):
            self.stats.truncated()
            if not out:  # an audit record held back: its event is marked when it comes out
                self._trunc_held = ln.size
            else:
                _mark(out, ln.size)
        elif self._trunc_held is not None:
            _mark(out, self._trunc_held)
        if out and self._out.since is None:
            self._out.read()
        return out

    def _normaliser_failed(self, ln: Line, exc: Exception) -> None:
        self.events["normaliser_error"] += 1
        reason = f"normaliser {type(exc).__name__}: {exc}"
        eid = Event.make_id(self.source, *self._fid.id_parts(ln.start))
        log.warning("%s offset %d: %s; line dead-lettered", self.path, ln.start, reason)
        self._out.dead_letter(self.source, ln.data, reason, eid)

    def _flush_normaliser(self) -> list[Event]:
        try:
            out = self.normaliser.flush()
        except Exception as exc:
            self.events["normaliser_error"] += 1
            log.warning("%s: normaliser flush failed: %s: %s", self.path, type(exc).__name__, exc)
            return []
        if self._trunc_held is not None:
            _mark(out, self._trunc_held)
        self._trunc_held = None
        return out

    # -- delivery -------------------------------------------------------------------------------
    def _commit(self, events: list[Event]) -> bool:
        """Deliver, then save the position; False if the sink is down (everything undelivered
        is kept, the position stays)."""
        if self._received:
            self.stats.received(self._received)
            self._received = 0
        delivered = self._out.flush(events)
        self.published = self._out.delivered
        if not delivered:
            return False
        if self._fd is not None and self._safe != self._saved:
            try:
                self._save(self._safe)
            except Exception as exc:  # events are stored; the position is saved next time
                self._out.failed(exc)
        return True

    def _save(self, offset: int) -> None:
        self.store.save_checkpoint(self._key, self._fid.dump(offset))
        self._saved = offset

    def run(self, stop: threading.Event, interval: float = 0.5) -> None:
        """Poll until `stop` is set."""
        while not stop.is_set():
            self.poll(stop)
            stop.wait(interval)

    def close(self) -> None:
        """Publish held-back audit records (if the sink takes them) and close the file."""
        if self._fd is not None:
            if not self._out.depth:
                self._finish()
            self._close_fd()


def _mark(events: list[Event], size: int) -> None:
    for e in events:
        e.fields[TRUNCATED_FIELD] = True
        e.fields[ORIGINAL_SIZE_FIELD] = size


def _line_start(fd: int, offset: int) -> bool:
    """The next line still starts at `offset`: the byte before it ends a line (or is part of a
    run of NULs skipped). A copytruncate whose new content starts with the same head bytes and
    has grown past the position by the next poll fails this (the head check alone missed it)."""
    return offset == 0 or os.pread(fd, 1, offset - 1) in (b"\n", b"\x00")
