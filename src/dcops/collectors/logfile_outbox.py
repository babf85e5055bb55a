"""What a tailer has read and not yet stored: one batch of events and the lines to dead-letter.

Delivery goes through `health.deliver` (bisection, poison to the dead-letter table). When the sink
is down everything stays here, in order, and the tailer reads nothing more until `flush` succeeds:
the file is the queue, so memory holds at most one batch.
"""

from __future__ import annotations

import logging
import time

from dcops.collectors.health import SourceStats, deliver
from dcops.model.event import Event
from dcops.model.sinks import EventSink

log = logging.getLogger(__name__)


class Outbox:
    """Undelivered events and dead letters of one tailer."""

    def __init__(self, sink: EventSink, stats: SourceStats, name: str) -> None:
        self.sink, self.stats, self.name = sink, stats, name
        self.events: list[Event] = []
        self.dead: list[tuple[str, bytes, str, str]] = []  # source, raw, reason, event id
        self.since: float | None = None  # time.time() of the oldest undelivered input
        self.delivered = 0  # events stored, over the tailer's life

    @property
    def depth(self) -> int:
        """Items waiting."""
        return len(self.events) + len(self.dead)

    def read(self) -> None:
        """Input was read that is not stored yet (starts the age clock)."""
        if self.since is None:
            self.since = time.time()

    def dead_letter(self, source: str, raw: bytes, reason: str, event_id: str) -> None:
        """Keep a line aside (written to the sink's dead-letter table by the next flush)."""
        self.dead.append((source, raw, reason, event_id))
        self.read()

    def flush(self, events: list[Event]) -> bool:
        """Deliver dead letters, then `events` after those already waiting; False if the sink is
        down (everything not delivered stays, in order)."""
        self.events += events
        while self.dead:
            try:
                self._write_dead(*self.dead[0])
            except Exception as exc:
                return self.failed(exc)
            self.stats.dropped("dead_letter")
            self.dead.pop(0)
        if self.events:
            stored = self.stats.stored_total
            self.events = deliver(self.sink, self.events, self.stats)
            self.delivered += self.stats.stored_total - stored
            if self.events:
                return False
        self.since = None
        return True

    def _write_dead(self, source: str, raw: bytes, reason: str, eid: str) -> None:
        dl = getattr(self.sink, "dead_letter", None)
        if dl is None:
            log.error("%s: the sink has no dead-letter table; line dropped: %r", self.name,
                      raw[:200])
            return
        dl(source, raw, reason, eid)

    def failed(self, exc: Exception) -> bool:
        """Count and log a sink or checkpoint-store failure; always False."""
        self.stats.sink_error()
        log.warning("%s: sink unavailable (%s: %s); retrying", self.name, type(exc).__name__, exc)
        return False
