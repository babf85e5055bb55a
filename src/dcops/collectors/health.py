"""Intake health shared by every collector: per-source counters and a poison-proof delivery.

Every front door (traps, syslog per transport, log files, Wazuh alerts) counts what it received,
stored and dropped by reason, its sink errors, its queue depth and the age of its oldest unstored
input, and exposes them in one set of Prometheus families (label `source`), so a failing sink or a
growing drop rate is an alert, not a silence (monitoring/prometheus/rules/dcops-intake.yml).

`deliver` hands a batch to a sink so that one event the sink cannot hold never blocks the others:
a failing batch is bisected, the events that store are stored, a single failing event goes to the
sink's dead-letter table with its raw bytes and the reason, and only a sink that cannot take even
that (database down, disk full) keeps the batch for a retry.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dcops.model.event import Event
from dcops.model.sinks import EventSink

log = logging.getLogger(__name__)

# Why an input was not stored. Everything else a collector counts is an outcome, not a drop.
DROP_REASONS = ("too_large", "rate", "queue_full", "auth", "malformed", "dead_letter")
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024
# A sink raising one of these is unavailable (database locked or full, disk or I/O error): the
# batch is kept for a retry at once, never bisected nor dead-lettered (its content is not at fault).
SINK_DOWN: tuple[type[BaseException], ...] = (sqlite3.OperationalError, OSError)
TRUNCATED_FIELD = "log.truncated"  # True on events whose input was cut at max_message_bytes
ORIGINAL_SIZE_FIELD = "log.original_size"  # bytes the input had before it was cut


@dataclass(slots=True)
class SourceStats:
    """Counters and gauges of one intake source (snmp_trap, syslog_udp, syslog_tcp, ...)."""

    source: str
    received_total: int = 0
    stored_total: int = 0
    truncated_total: int = 0
    unparsed_total: int = 0
    sink_errors_total: int = 0
    drops: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    queue_depth: Callable[[], int] | None = None
    queue_capacity: int = 0
    # receive time (time.time()) of the oldest input read but not yet stored; None when none
    oldest_unstored: Callable[[], float | None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self, n: int = 1) -> None:
        """Inputs (messages, packets, lines) read from the network or a file."""
        with self._lock:
            self.received_total += n

    def stored(self, n: int = 1) -> None:
        """Events the sink made durable."""
        with self._lock:
            self.stored_total += n

    def dropped(self, reason: str, n: int = 1) -> None:
        """Inputs not stored, by reason (one of DROP_REASONS)."""
        if reason not in DROP_REASONS:
            raise ValueError(f"drop reason {reason!r} unknown (expected one of {DROP_REASONS})")
        with self._lock:
            self.drops[reason] += n

    def truncated(self, n: int = 1) -> None:
        """Inputs cut at max_message_bytes (stored, with the truncated mark)."""
        with self._lock:
            self.truncated_total += n

    def unparsed(self, n: int = 1) -> None:
        """Inputs no parser understood (e.g. an alerts.json line that is not JSON): stored as raw
        events, so not a drop, but counted so a broken sender shows."""
        with self._lock:
            self.unparsed_total += n

    def sink_error(self, n: int = 1) -> None:
        """A publish to the sink raised."""
        with self._lock:
            self.sink_errors_total += n


class IntakeMetrics(Collector):
    """All sources of one process, as one set of metric families (prometheus_client Collector)."""

    def __init__(self) -> None:
        self.sources: dict[str, SourceStats] = {}
        self._lock = threading.Lock()

    def source(self, name: str) -> SourceStats:
        """The stats of `name`, created on first use."""
        with self._lock:
            if name not in self.sources:
                self.sources[name] = SourceStats(name)
            return self.sources[name]

    def collect(self) -> Iterator[Metric]:
        """prometheus_client Collector protocol."""
        srcs = sorted(self.sources.values(), key=lambda s: s.source)
        fams: list[Metric] = []

        def counter(name: str, doc: str, get: Callable[[SourceStats], int]) -> None:
            c = CounterMetricFamily(name, doc, labels=["source"])
            for s in srcs:
                c.add_metric([s.source], get(s))
            fams.append(c)

        counter("dcops_intake_received", "Inputs read (messages, packets, lines)",
                lambda s: s.received_total)
        counter("dcops_intake_stored", "Events made durable by the sink", lambda s: s.stored_total)
        counter("dcops_intake_truncated", "Inputs cut at max_message_bytes (stored, marked)",
                lambda s: s.truncated_total)
        counter("dcops_intake_unparsed", "Inputs no parser understood, stored as raw events",
                lambda s: s.unparsed_total)
        counter("dcops_intake_sink_errors", "Publishes to the sink that raised",
                lambda s: s.sink_errors_total)
        dropped = CounterMetricFamily(
            "dcops_intake_dropped", "Inputs not stored, by reason (too_large, rate, queue_full, "
            "auth, malformed, dead_letter)", labels=["source", "reason"])
        for s in srcs:
            for reason in DROP_REASONS:
                dropped.add_metric([s.source, reason], s.drops.get(reason, 0))
        fams.append(dropped)
        depth = GaugeMetricFamily("dcops_intake_queue_depth", "Inputs waiting in memory",
                                  labels=["source"])
        cap = GaugeMetricFamily("dcops_intake_queue_capacity", "Most inputs the queue holds",
                                labels=["source"])
        age = GaugeMetricFamily("dcops_intake_oldest_unstored_age_seconds",
                                "Age of the oldest input read but not yet stored (0: none)",
                                labels=["source"])
        now = time.time()
        for s in srcs:
            if s.queue_depth is not None:
                depth.add_metric([s.source], s.queue_depth())
                cap.add_metric([s.source], s.queue_capacity)
            oldest = s.oldest_unstored() if s.oldest_unstored is not None else None
            age.add_metric([s.source], max(0.0, now - oldest) if oldest is not None else 0.0)
        fams += [depth, cap, age]
        yield from fams


def clip(data: bytes, limit: int) -> tuple[bytes, bool]:
    """`data` cut at `limit` bytes (0 = no limit), and whether it was cut."""
    if limit and len(data) > limit:
        return data[:limit], True
    return data, False


def deliver(sink: EventSink, batch: Sequence[Event], stats: SourceStats) -> list[Event]:
    """Publish `batch`; return the events to retry later because the sink is unavailable.

    A sink that raises one of SINK_DOWN is down: everything not yet stored is returned at once.
    On any other failure the batch is bisected; an event that fails alone is dead-lettered (if
    the sink can: `dead_letter(source, raw, reason, event_id)`) and counted as dropped
    `dead_letter`. If the dead-letter write fails too, the sink is down: nothing more is tried
    now and every event not yet stored is returned, in order.
    """
    if not batch:
        return []
    todo: list[Sequence[Event]] = [batch]
    while todo:
        part = todo.pop(0)
        try:
            sink.publish(part)
        except Exception as exc:  # whatever the sink raises, bisect or retry
            stats.sink_error()
            if isinstance(exc, SINK_DOWN):
                log.warning("event sink unavailable (%s: %s); %d events kept for retry",
                            type(exc).__name__, exc, sum(len(p) for p in [part, *todo]))
                return [e for p in [part, *todo] for e in p]
            if len(part) > 1:
                mid = len(part) // 2
                todo[:0] = [part[:mid], part[mid:]]
                continue
            if _dead_letter(sink, part[0], exc):
                stats.dropped("dead_letter")
                continue
            log.warning("event sink unavailable (%s: %s); %d events kept for retry",
                        type(exc).__name__, exc, sum(len(p) for p in [part, *todo]))
            return [e for p in [part, *todo] for e in p]
        stats.stored(len(part))
    return []


def _dead_letter(sink: EventSink, event: Event, exc: Exception) -> bool:
    dl = getattr(sink, "dead_letter", None)
    if dl is None:
        return False
    raw = event.raw if isinstance(event.raw, str) else repr(event.raw)
    try:
        dl(str(event.source), raw.encode("utf-8", "replace"), f"{type(exc).__name__}: {exc}",
           str(event.id))
    except Exception:  # the sink cannot take even this: it is down
        return False
    log.warning("event %s from %s dead-lettered: %s: %s", event.id, event.source,
                type(exc).__name__, exc)
    return True
