"""`dcops detect run --metrics-listen`: a detection runner or worker on /metrics.

One set of Prometheus families per process, labels `group` (the worker group, empty for a plain
runner) and `worker` (the worker id, or the plain runner's consumer name): events handled and
detections raised, bus errors, the consumer lag and, for a worker group, its partitions (owned,
taken, given back, lost) and the stray events partition 0's owner last counted. Alert rules:
monitoring/prometheus/rules/dcops-detect.rules.yml.

The scrape never touches the bus: counters are read from the runner's stats, and the lag is
sampled by the detection loop itself (`sample`, at most every `lag_every` seconds), so a scrape
answers while the bus is failing over and costs the bus nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, cast

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from dcops.pipeline.runner import Runner
from dcops.pipeline.workers import Worker

LAG_EVERY = 5.0  # seconds between two lag samples (a stream info and a cursor read each)


class DetectMetrics:
    """Counters of one `dcops detect run` process (prometheus_client Collector protocol).

    Give `runner` (a plain runner: `worker` is its consumer) or `worker` (one of a group).
    """

    def __init__(self, *, runner: Runner | None = None, worker: Worker | None = None,
                 consumer: str = "", lag_every: float = LAG_EVERY,
                 unavailable: tuple[type[BaseException], ...] = (),
                 clock: Callable[[], float] = time.monotonic) -> None:
        if (runner is None) == (worker is None):
            raise ValueError("DetectMetrics: give a runner or a worker")
        self.runner, self.worker = runner, worker
        self.labels = ([worker.group, worker.worker_id] if worker is not None
                       else ["", consumer or (runner.consumer if runner else "")])
        self.lag_every, self.unavailable, self.clock = lag_every, unavailable, clock
        self.bus_errors = 0
        self.lag: int | None = None  # None until sampled once
        self._next = 0.0

    def bus_error(self, _exc: BaseException | None = None) -> None:
        """The bus did not answer (a step, or a lag sample)."""
        self.bus_errors += 1

    def sample(self, force: bool = False) -> None:
        """Read the lag when due: events after the cursor of the most-behind partition this
        process reads (the bus's newest position minus the cursor; on a partitioned nats://
        bus 0 for a partition caught up at its last step, else that difference, an upper
        bound). Called by the detection loop."""
        now = self.clock()
        if not force and now < self._next:
            return
        self._next = now + self.lag_every
        try:
            self.lag = self._lag()
        except self.unavailable as exc:  # keep the last sample; counted
            self.bus_error(exc)

    def _lag(self) -> int:
        if self.runner is not None:
            bus: Any = self.runner.bus
            return max(0, int(bus.last_position()) - int(bus.cursor(self.runner.consumer)))
        w = self.worker
        assert w is not None
        # A partition of a nats:// bus reads one subject: its positions are sparse, so
        # `last - cursor` also counts the other partitions' events. One that was caught up at
        # its last step is 0; one that is behind counts positions (an upper bound).
        behind = [p for p, r in sorted(w.runners.items())
                  if not (w.by_subject and r.stats.caught_up)]
        if not behind:
            return 0
        bus = w.bus
        last = int(cast(Any, bus).last_position())
        return max(0, *(last - int(bus.cursor(w.consumer(p))) for p in behind))

    def collect(self) -> Iterator[Metric]:
        """prometheus_client Collector protocol (reads counters only, never the bus)."""
        names = ["group", "worker"]
        lab = self.labels

        def counter(name: str, doc: str, value: float) -> Metric:
            c = CounterMetricFamily(name, doc, labels=names)
            c.add_metric(lab, value)
            return c

        def gauge(name: str, doc: str, value: float) -> Metric:
            g = GaugeMetricFamily(name, doc, labels=names)
            g.add_metric(lab, value)
            return g

        st: Any = self.worker.stats if self.worker is not None else self.runner.stats  # type: ignore[union-attr]
        yield counter("dcops_detect_events", "Events handled (read after the cursor and run "
                      "through the rules)", st.events)
        yield counter("dcops_detect_detections", "Detections raised (handed to the alert "
                      "store)", st.detections)
        yield counter("dcops_detect_bus_errors", "Steps or lag samples the bus did not answer "
                      "(unavailable, failing over)", self.bus_errors)
        if self.lag is not None:
            yield gauge("dcops_detect_lag_events", "Events after the cursor of the most-behind "
                        "partition this process reads (bus positions; sampled every few "
                        "seconds)", self.lag)
        w = self.worker
        if w is None:
            return
        yield gauge("dcops_detect_partitions", "Partitions of the worker group", w.partitions)
        yield gauge("dcops_detect_partitions_owned", "Partitions this worker owns now",
                    len(w.runners))
        yield counter("dcops_detect_partitions_taken", "Partitions taken (free, expired or "
                      "given back by another worker)", w.stats.taken)
        yield counter("dcops_detect_partitions_released", "Partitions given back (rebalance or "
                      "stop)", w.stats.released)
        yield counter("dcops_detect_partitions_lost", "Partitions lost (lease expired and taken "
                      "over: this worker was too slow to renew it)", w.stats.lost)
        stray = w.stats.stray if 0 in w.runners else 0
        yield gauge("dcops_detect_stray_events", "Events on subjects no partition reads (the "
                    "last check of partition 0's owner; 0 on the other workers)", stray)
