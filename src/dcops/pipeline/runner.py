"""Spool -> detection engine -> DetectionSink, advancing the cursor only after the sink accepted."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, runtime_checkable

from dcops.model.event import Detection, Event
from dcops.model.sinks import DetectionSink
from dcops.pipeline.bus import Bus


class Engine(Protocol):
    """What the runner needs from the detection engine (dcops.detect.Engine)."""

    def process(self, events: Sequence[Event]) -> list[Detection]:
        """Match events; correlation state is kept in memory between calls."""
        ...


@runtime_checkable
class SnapshotEngine(Protocol):
    """An engine that can save and restore its correlation state (exact restarts)."""

    def snapshot(self) -> bytes:
        """The in-memory correlation state."""
        ...

    def restore(self, state: bytes) -> None:
        """Replace the in-memory state with a snapshot."""
        ...


@dataclass(slots=True)
class RunnerStats:
    """Counters of one runner."""

    events: int = 0
    replayed: int = 0
    detections: int = 0
    batches: int = 0
    snapshots: int = 0
    caught_up: bool = False  # the last fetch got less than a batch: nothing more was there


class Runner:
    """Feeds events from the bus to the engine and detections to the sink.

    Restart without loss or duplicates: the cursor moves only after the sink accepted, and
    detection ids are stable, so re-processing a batch is harmless. Correlation state is rebuilt
    exactly when the engine can snapshot it (saved every `snapshot_every` seconds beside the
    cursor; on start it is restored and the events after it re-fed); otherwise the runner re-feeds
    the acked events of the last `replay_window` (the longest correlation timespan), which
    restores windows but not the exact firing history.
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
        snapshot_every: float = 5.0,
    ) -> None:
        self.bus, self.engine, self.sink = bus, engine, sink
        self.consumer, self.batch, self.replay_window = consumer, batch, replay_window
        self.snapshot_every = snapshot_every
        self.stats = RunnerStats()
        self._started = False
        self._last_snapshot = 0.0

    def start(self) -> None:
        """Rebuild correlation state (from a snapshot, else from the replay window)."""
        self._started = True
        if isinstance(self.engine, SnapshotEngine):
            saved = self.bus.load_state(self.consumer)
            pos = saved[0] if saved else 0
            if saved:
                self.engine.restore(saved[1])
            self._refeed(pos, self.bus.cursor(self.consumer))
            self._last_snapshot = time.monotonic()
            return
        last = self.bus.last_acked_time(self.consumer)
        if last is None or self.replay_window <= timedelta(0):
            return
        events = self.bus.replay(self.consumer, last - self.replay_window)
        if events:
            self._accept(self.engine.process(events))
            self.stats.replayed += len(events)

    def _refeed(self, after: int, upto: int) -> None:
        while after < upto:
            batch = self.bus.fetch_after(after, self.batch, upto)
            if not batch:
                return
            self._accept(self.engine.process([e for _, e in batch]))
            self.stats.replayed += len(batch)
            after = batch[-1][0]

    def _accept(self, dets: list[Detection]) -> None:
        if dets:
            self.sink.accept(dets)

    def step(self) -> int:
        """Handle one batch; returns how many events it handled (0 when caught up)."""
        if not self._started:
            self.start()
        batch = self.bus.fetch(self.consumer, self.batch)
        self.stats.caught_up = len(batch) < self.batch
        if not batch:
            return 0
        dets = self.engine.process([e for _, e in batch])
        self._accept(dets)
        pos = batch[-1][0]
        self.bus.ack(self.consumer, pos)
        self.stats.events += len(batch)
        self.stats.detections += len(dets)
        self.stats.batches += 1
        if (
            isinstance(self.engine, SnapshotEngine)
            and time.monotonic() - self._last_snapshot >= self.snapshot_every
        ):
            self.snapshot(pos)
        return len(batch)

    def snapshot(self, position: int | None = None) -> None:
        """Save the engine state as of the acked position (if the engine can)."""
        if isinstance(self.engine, SnapshotEngine):
            pos = self.bus.cursor(self.consumer) if position is None else position
            self.bus.save_state(self.consumer, pos, self.engine.snapshot())
            self._last_snapshot = time.monotonic()
            self.stats.snapshots += 1

    def run(self, stop: threading.Event, idle: float = 0.2) -> None:
        """Loop until `stop` is set, sleeping `idle` seconds when caught up."""
        while not stop.is_set():
            if self.step() == 0:
                stop.wait(idle)
        self.snapshot()
