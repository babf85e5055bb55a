"""Counters of TCP worker processes (`dcops collect syslog --workers N`), merged into the main
process's /metrics and its stop line.

Each worker sends a `snapshot` of its server twice a second and once more when it stops; the
main process keeps the newest per worker and `Merged` adds them to its own counters, so
`dcops_intake_*` and `dcops_syslog_*` count every process (malformed frames, truncations and
connections of a worker included).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import Metric

from dcops.collectors.health import IntakeMetrics, SourceStats

if TYPE_CHECKING:
    from dcops.collectors.syslog import SyslogServer

SNAPSHOT_PERIOD = 0.5  # seconds between a worker's snapshots


def snapshot(server: SyslogServer) -> dict[str, Any]:
    """A worker's counters, in plain types (sent over a pipe)."""
    sources: dict[str, Any] = {}
    for name, s in list(server.metrics.sources.items()):
        sources[name] = {
            "received": s.received_total, "stored": s.stored_total,
            "truncated": s.truncated_total, "unparsed": s.unparsed_total,
            "sink_errors": s.sink_errors_total, "drops": dict(s.drops),
            "depth": s.queue_depth() if s.queue_depth else 0, "capacity": s.queue_capacity,
            "oldest": s.oldest_unstored() if s.oldest_unstored else None,
        }
    conns = Counter(c.source for c in list(server.conns))
    return {"sources": sources, "stats": dict(server.stats), "conns": dict(conns)}


class WorkerCounters:
    """The newest snapshot of every worker (written by the spool feed thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[int, dict[str, Any]] = {}

    def update(self, worker: int, snap: dict[str, Any]) -> None:
        """Keep a worker's newest snapshot."""
        with self._lock:
            self._latest[worker] = snap

    def all(self) -> list[dict[str, Any]]:
        """Every worker's newest snapshot."""
        with self._lock:
            return list(self._latest.values())

    def stats(self) -> Counter[str]:
        """The workers' server stats (received, framing_errors, connections_refused...), summed."""
        total: Counter[str] = Counter()
        for snap in self.all():
            total.update(snap["stats"])
        return total

    def connections(self) -> Counter[str]:
        """Open connections of the workers, per source."""
        total: Counter[str] = Counter()
        for snap in self.all():
            total.update(snap["conns"])
        return total


class MergedIntake(IntakeMetrics):
    """The main process's IntakeMetrics with the workers' counters added (a Collector)."""

    def __init__(self, local: IntakeMetrics, workers: WorkerCounters) -> None:
        super().__init__()
        self.local, self.workers = local, workers

    def collect(self) -> Iterator[Metric]:
        """prometheus_client Collector protocol: sums of the main process and every worker."""
        merged = IntakeMetrics()
        for name, s in list(self.local.sources.items()):
            _add(merged.source(name), s.received_total, s.stored_total, s.truncated_total,
                 s.unparsed_total, s.sink_errors_total, dict(s.drops))
            m = merged.source(name)
            m.queue_capacity = s.queue_capacity
            depth = s.queue_depth() if s.queue_depth else 0
            oldest = s.oldest_unstored() if s.oldest_unstored else None
            m.queue_depth, m.oldest_unstored = _const(depth), _const(oldest)
        for snap in self.workers.all():
            for name, v in snap["sources"].items():
                m = merged.source(name)
                _add(m, v["received"], v["stored"], v["truncated"], v["unparsed"],
                     v["sink_errors"], v["drops"])
                m.queue_capacity = max(m.queue_capacity, v["capacity"])
                depth = (m.queue_depth() if m.queue_depth else 0) + v["depth"]
                olds = [o for o in ((m.oldest_unstored() if m.oldest_unstored else None),
                                    v["oldest"]) if o is not None]
                m.queue_depth, m.oldest_unstored = _const(depth), _const(min(olds, default=None))
        yield from merged.collect()


def _add(m: SourceStats, received: int, stored: int, truncated: int, unparsed: int,
         sink_errors: int, drops: dict[str, int]) -> None:
    m.received_total += received
    m.stored_total += stored
    m.truncated_total += truncated
    m.unparsed_total += unparsed
    m.sink_errors_total += sink_errors
    for reason, n in drops.items():
        m.drops[reason] += n


def _const(v: Any) -> Any:
    return lambda: v
