"""Spool -> detection engine -> DetectionSink, advancing the cursor only after the sink accepted."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from dcops.model.event import Detection, Event
from dcops.model.sinks import DetectionSink
from dcops.pipeline.bus import Bus


class Engine(Protocol):
    """What the runner needs from the detection engine (dcops.detect.Engine)."""

    def process(self, events: Sequence[Event]) -> list[Detection]:
        """Match events; correlation state is kept in memory between calls."""
        ...


@dataclass(slots=True)
class RunnerStats:
    """Counters of one runner."""

    events: int = 0
    replayed: int = 0
    detections: int = 0
    batches: int = 0


class Runner:
    """Feeds events from the bus to the engine and detections to the sink.

    At start it re-feeds the acked events of the last `replay_window` (the longest correlation
    timespan) so in-memory correlation state is rebuilt after a restart; detections that come out
    again carry the same ids and the sink ignores them.
    """

    def __init__(
        self,
        bus: Bus,
        engine: Engine,
        sink: DetectionSink,
        *,
        consumer: str = "detect",
        batch: int = 1000,
        replay_window: timedelta = timedelta(0),
    ) -> None:
        self.bus, self.engine, self.sink = bus, engine, sink
        self.consumer, self.batch, self.replay_window = consumer, batch, replay_window
        self.stats = RunnerStats()
        self._started = False

    def start(self) -> None:
        """Rebuild correlation state from the replay window."""
        self._started = True
        last = self.bus.last_acked_time(self.consumer)
        if last is None or self.replay_window <= timedelta(0):
            return
        events = self.bus.replay(self.consumer, last - self.replay_window)
        if events:
            dets = self.engine.process(events)
            if dets:
                self.sink.accept(dets)
            self.stats.replayed += len(events)

    def step(self) -> int:
        """Handle one batch; returns how many events it handled (0 when caught up)."""
        if not self._started:
            self.start()
        batch = self.bus.fetch(self.consumer, self.batch)
        if not batch:
            return 0
        dets = self.engine.process([e for _, e in batch])
        if dets:
            self.sink.accept(dets)
        self.bus.ack(self.consumer, batch[-1][0])
        self.stats.events += len(batch)
        self.stats.detections += len(dets)
        self.stats.batches += 1
        return len(batch)

    def run(self, stop: threading.Event, idle: float = 0.2) -> None:
        """Loop until `stop` is set, sleeping `idle` seconds when caught up."""
        while not stop.is_set():
            if self.step() == 0:
                stop.wait(idle)
