"""Spool -> detection engine -> DetectionSink, advancing the cursor only after the sink accepted."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, cast, runtime_checkable

from dcops.model.event import Detection, Event
from dcops.model.sinks import DetectionSink
from dcops.pipeline.bus import Bus, FencedBus

log = logging.getLogger(__name__)


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
    detection ids are stable, so re-processing a batch after a restart is harmless. Within one
    process a batch is matched once: when the sink or the cursor fails after the engine took the
    batch (the bus failing over), the next step commits that batch again (its detections to the
    sink, then the cursor) instead of feeding the same events to the engine twice, which would
    count them twice in the correlation windows. Correlation state is rebuilt
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
        owner: str | None = None,
    ) -> None:
        """`owner`: acks name it (the bus must be a FencedBus whose cursor `owner` claimed);
        CursorTakenError from a step means the cursor was claimed by someone else."""
        self.bus, self.engine, self.sink = bus, engine, sink
        self.owner = owner
        self.consumer, self.batch, self.replay_window = consumer, batch, replay_window
        self.snapshot_every = snapshot_every
        self.stats = RunnerStats()
        self._started = False
        self._last_snapshot = 0.0
        self._at: int | None = None  # the position the engine's windows stand at
        # A batch the engine has matched whose detections or cursor are not stored yet:
        # (detections, last position, events).
        self._pending: tuple[list[Detection], int, int] | None = None

    def start(self) -> None:
        """Rebuild correlation state (from a snapshot, else from the replay window).

        With a snapshot, a start that fails half-way (the bus unavailable) is done again whole
        by the next step: the restore replaces the windows, so nothing is fed twice.
        """
        if isinstance(self.engine, SnapshotEngine):
            saved = self.bus.load_state(self.consumer)
            pos = saved[0] if saved else 0
            if saved:
                self.engine.restore(saved[1])
            upto = self.bus.cursor(self.consumer)
            self._refeed(pos, upto)
            self._at = max(pos, upto)
            log.info("%s: windows restored at %d (%s), %d event(s) re-fed up to the cursor %d",
                     self.consumer, pos, "saved" if saved else "none saved",
                     self.stats.replayed, upto)
            self._last_snapshot = time.monotonic()
            self._started = True
            return
        # Without a snapshot nothing replaces what a replay fed: started before replaying, so a
        # replay that fails half-way is not fed again (its windows lose what it did not feed).
        self._started = True
        self._at = self.bus.cursor(self.consumer)
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
        if self._pending is not None:  # matched, not yet committed: commit, do not match again
            return self._commit(*self._pending)
        if self.owner is None:
            batch = self.bus.fetch(self.consumer, self.batch)
        else:  # from where the windows stand, not from a cursor a new owner may have moved
            batch = cast(FencedBus, self.bus).fetch(self.consumer, self.batch, after=self._at)
        self.stats.caught_up = len(batch) < self.batch
        if not batch:
            return 0
        self._pending = (self.engine.process([e for _, e in batch]), batch[-1][0], len(batch))
        return self._commit(*self._pending)

    def _commit(self, dets: list[Detection], pos: int, n: int) -> int:
        """Detections to the sink, then the cursor to `pos` (either may raise: the batch stays
        pending and the next step commits it again; the sink takes a detection id once)."""
        self._accept(dets)
        if self.owner is None:
            self.bus.ack(self.consumer, pos)
        else:
            cast(FencedBus, self.bus).ack(self.consumer, pos, owner=self.owner)
        self._pending = None
        self._at = pos
        self.stats.events += n
        self.stats.detections += len(dets)
        self.stats.batches += 1
        if (
            isinstance(self.engine, SnapshotEngine)
            and time.monotonic() - self._last_snapshot >= self.snapshot_every
        ):
            self.snapshot(pos)
        return n

    def snapshot(self, position: int | None = None) -> None:
        """Save the engine state as of the acked position (if the engine can); a pending batch
        is committed first, so the state never holds events beyond the cursor."""
        if self._pending is not None:
            self._commit(*self._pending)
            position = None  # the cursor now stands at the end of that batch
        if isinstance(self.engine, SnapshotEngine):
            if position is None:  # where the windows stand (a new owner may move the cursor)
                position = self.bus.cursor(self.consumer) if self._at is None else self._at
            self.bus.save_state(self.consumer, position, self.engine.snapshot())
            self._last_snapshot = time.monotonic()
            self.stats.snapshots += 1

    def run(self, stop: threading.Event, idle: float = 0.2) -> None:
        """Loop until `stop` is set, sleeping `idle` seconds when caught up."""
        while not stop.is_set():
            if self.step() == 0:
                stop.wait(idle)
        self.snapshot()
