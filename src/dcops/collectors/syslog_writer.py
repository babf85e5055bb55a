"""The syslog server's writer: one thread that parses and stores what the listeners read.

The listeners on the event loop only read and frame; they hand every read to `Writer.put` (one
FIFO per source: syslog_udp, syslog_unix, syslog_tcp, syslog_tls). The writer thread takes from
them fairly (the source served least goes next, counted in messages), so a TCP backlog cannot
starve UDP nor the reverse; it normalises off the event loop (a slow message never stalls
accepting or reading) and hands one batch per cycle (a cycle ends after `cycle` seconds or
`batch` messages) to the commit thread (syslog_commit), which publishes it and then runs each
read's `done` callback on the loop: a stream connection reads again only once what it read before
is in the sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from dcops.collectors.health import (
    DEFAULT_MAX_MESSAGE_BYTES,
    ORIGINAL_SIZE_FIELD,
    TRUNCATED_FIELD,
    IntakeMetrics,
)
from dcops.collectors.parsers import Normaliser
from dcops.collectors.syslog_commit import Batch, Committer
from dcops.collectors.syslog_stream import Frame
from dcops.model.event import Event
from dcops.model.sinks import EventSink

log = logging.getLogger(__name__)

SOURCES = ("syslog_udp", "syslog_unix", "syslog_tcp", "syslog_tls", "syslog_relp")


@dataclass(slots=True)
class Item:
    """The frames of one read (a datagram, or one recv on a stream connection)."""

    source: str
    peer: str
    t: float  # time.time() when it was read
    frames: list[Frame]
    done: Callable[[], None] | None = None  # run on the event loop once stored
    pos: int = 0  # frames already normalised (a big read may take several cycles)


class Writer:
    """Fair per-source queues in front of a parse thread and a commit thread."""

    def __init__(
        self,
        sink: EventSink,
        metrics: IntakeMetrics,
        loop: asyncio.AbstractEventLoop,
        *,
        batch: int,
        cycle: float,
        idle: float,
        legacy: Counter[str],
        max_chars: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.sink, self.loop = sink, loop
        self.batch, self.cycle, self.idle = batch, cycle, idle
        self.normaliser = Normaliser("syslog", max_message_chars=max_chars)  # frames already cut
        self.metrics = metrics
        self.depth: dict[str, int] = dict.fromkeys(SOURCES, 0)  # read, not yet stored
        self.legacy = legacy
        self.finished = threading.Event()
        self._queues: dict[str, deque[Item]] = {s: deque() for s in SOURCES}
        self._inflight: list[dict[str, float]] = []  # oldest read time per source per batch
        self._served: dict[str, int] = dict.fromkeys(SOURCES, 0)  # messages taken, for fairness
        self._busy: set[str] = set()  # sources that had reads queued at the last pick
        self._cond = threading.Condition()
        self._stopping = False
        self._committer = Committer(sink, metrics, legacy, self._done, self.finished)
        self._seq = 0
        self._t, self._t_repr, self._received = -1.0, "", datetime.fromtimestamp(0, UTC)
        self._prefix = ""  # Event.order_prefix of the current read's time
        self._held = "syslog_tcp"  # source of the last line held back (auditd joining)
        self._on_stored: Callable[[list[Callable[[], None]]], None] = lambda acks: None
        self._thread = threading.Thread(target=self._run, name="syslog-writer", daemon=True)

    def start(self, on_stored: Callable[[list[Callable[[], None]]], None]) -> None:
        """Start the thread; `on_stored(callbacks)` is scheduled on the loop after each batch."""
        self._on_stored = on_stored
        self._committer.start()
        self._thread.start()

    @property
    def started(self) -> bool:
        """start() was called."""
        return self._thread.ident is not None

    def put(self, item: Item, capacity: int = 0) -> bool:
        """Queue a read; with a `capacity`, refuse it (False) when the source holds that many."""
        n = len(item.frames)
        with self._cond:
            if capacity and self.depth[item.source] + n > capacity:
                return False
            self._queues[item.source].append(item)
            self.depth[item.source] += n
            self._cond.notify()
        return True

    def oldest(self, source: str) -> float | None:
        """Read time of the oldest message of `source` not yet stored."""
        with self._cond:
            q = self._queues[source]
            times = [b[source] for b in self._inflight if source in b]
            if q:
                times.append(q[0].t)
        return min(times) if times else None

    def stop(self) -> None:
        """Store everything queued, then end the thread (see `finished`)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()

    def abandon(self) -> None:
        """Stop retrying a sink that is down (shutdown deadline): what is unstored is lost."""
        self._committer.abandon()

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._pending() and not self._stopping:
                        if not self._cond.wait(self.idle):
                            break
                    busy, stopping = self._pending(), self._stopping
                if busy:
                    self._cycle()
                elif stopping:
                    break
                elif self.normaliser.pending:  # idle: complete held-back auditd events
                    self._committer.submit(Batch({self._held: self.normaliser.flush()}))
            self._committer.submit(Batch({self._held: self.normaliser.flush()}))
        except Exception:
            log.exception("syslog writer failed; messages read and not stored are lost")
        finally:
            self._committer.submit(None)

    def _pending(self) -> bool:
        return any(self._queues.values())

    def _pick(self, oldest: dict[str, float]) -> Item | None:
        """The next read of the source served least (under the lock).

        Service is counted in messages across cycles; a source that had nothing queued joins
        again level with the least served busy one, so it neither starves nor saves up credit.
        """
        ready = [s for s in SOURCES if self._queues[s]]
        if not ready:
            self._busy.clear()
            return None
        busy = [s for s in ready if s in self._busy]
        floor = min(self._served[s] for s in busy) if busy else 0
        for s in ready:
            if s not in self._busy:
                self._served[s] = floor
        self._busy = set(ready)
        src = min(ready, key=lambda s: self._served[s])
        item = self._queues[src].popleft()
        oldest.setdefault(src, item.t)
        return item

    def _cycle(self) -> None:
        """Normalise for up to `cycle` seconds or `batch` messages; hand the batch on.

        A big read may be spread over several cycles (its `pos` says how far it got); its
        connection is told only once all of it is stored.
        """
        b = Batch()
        with self._cond:
            self._inflight.append(b.oldest)
        start, n = time.monotonic(), 0
        while (n < self.batch and time.monotonic() - start < self.cycle) or n == 0:
            with self._cond:
                item = self._pick(b.oldest)
            if item is None:
                break
            first = item.pos
            out = b.events.setdefault(item.source, [])
            while item.pos < len(item.frames):
                out += self._normalise(item, item.frames[item.pos])
                item.pos += 1
                if n + item.pos - first >= self.batch or time.monotonic() - start >= self.cycle:
                    break
            k = item.pos - first
            n += k
            b.taken[item.source] = b.taken.get(item.source, 0) + k
            with self._cond:
                self._served[item.source] += k
                if item.pos < len(item.frames):
                    self._queues[item.source].appendleft(item)
            if item.pos == len(item.frames):
                b.complete.append(item)
        self._committer.submit(b)

    def _done(self, b: Batch) -> None:
        """(commit thread) A batch is stored: account for it and acknowledge its reads."""
        with self._cond:
            for src, k in b.taken.items():
                self.depth[src] -= k
            self._inflight = [o for o in self._inflight if o is not b.oldest]
        acks = [it.done for it in b.complete if it.done is not None]
        if acks:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the server is gone
                self.loop.call_soon_threadsafe(self._on_stored, acks)

    def _normalise(self, item: Item, f: Frame) -> list[Event]:
        self._seq += 1
        if item.t != self._t:  # the frames of one read share its time: convert it once
            self._t, self._t_repr = item.t, repr(item.t)
            self._prefix = Event.order_prefix(item.t)
            self._received = datetime.fromtimestamp(item.t, UTC)
        try:
            evs = self.normaliser.line(f.data.decode("utf-8", "replace"),
                                       id_parts=(item.peer, self._t_repr, str(self._seq)),
                                       received=self._received, peer=item.peer,
                                       id_prefix=self._prefix)
        except Exception as exc:  # a parser bug costs this message, never the server
            self._dead_letter(item.source, f.data, exc)
            return []
        if not evs:
            self._held = item.source
        if f.truncated:
            for e in evs:
                e.fields[TRUNCATED_FIELD] = True
                e.fields[ORIGINAL_SIZE_FIELD] = f.size
        return evs

    def _dead_letter(self, source: str, raw: bytes, exc: Exception) -> None:
        log.warning("syslog: %s message not parsed (%s: %s)", source, type(exc).__name__, exc)
        dl = getattr(self.sink, "dead_letter", None)
        try:
            if dl is None:
                raise TypeError("the sink keeps no dead letters")
            dl(source, raw, f"parse: {type(exc).__name__}: {exc}")
        except Exception:  # no dead-letter table or it is down: counted, not kept
            self.metrics.source(source).dropped("malformed")
        else:
            self.metrics.source(source).dropped("dead_letter")
