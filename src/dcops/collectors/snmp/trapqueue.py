"""The trap receiver's bounded queue of events not yet stored, and the loop that stores them.

Events wait in memory (bounded in events and bytes; beyond that they are dropped and counted as
`queue_full`) until the sink has made them durable. The sink is called in a daemon thread through
`health.deliver`: a poison event is dead-lettered, never retried forever, and a sink that is down
keeps its events queued while the loop backs off. An inform is acknowledged once its event is
stored or dead-lettered. A wedged sink (a write blocked on a lock) never blocks the event loop, so
receiving, metrics and shutdown go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from dcops.collectors.health import SourceStats, deliver
from dcops.model.event import Event
from dcops.model.sinks import EventSink

log = logging.getLogger(__name__)

T = TypeVar("T")
Peer = tuple[str, int]
QUEUE_CAPACITY = 10_000  # events waiting for the sink
QUEUE_BYTES = 16 * 1024 * 1024  # datagram bytes waiting for the sink
BATCH = 1000  # events per sink write
INTERVAL = 0.05  # seconds between writes when idle (batching by time)
BACKOFF_MIN, BACKOFF_MAX = 0.25, 5.0  # seconds between retries while the sink is down


@dataclass(slots=True)
class Item:
    """One accepted notification waiting to be stored (and its inform ack, if any)."""

    event: Event
    at: float  # time.time() it was received
    size: int  # datagram bytes
    ack: tuple[bytes, Peer] | None = None
    # why the event holds a value in another form than received (e.g. an INTEGER beyond 64 bits
    # kept as a decimal string): once stored, its raw packet is also recorded as a dead letter
    quarantine: str = ""


class PendingQueue:
    """Events read but not stored: FIFO, bounded in count and bytes; a batch is in flight."""

    def __init__(self, capacity: int = QUEUE_CAPACITY, max_bytes: int = QUEUE_BYTES) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.items: deque[Item] = deque()
        self.inflight: list[Item] = []
        self.bytes = 0

    def depth(self) -> int:
        """Events not yet stored (queued and in flight)."""
        return len(self.items) + len(self.inflight)

    def oldest(self) -> float | None:
        """Receive time of the oldest event not yet stored."""
        if self.inflight:
            return self.inflight[0].at
        return self.items[0].at if self.items else None

    def offer(self, item: Item) -> bool:
        """Queue `item`; False (caller counts `queue_full`) when it does not fit."""
        if self.depth() >= self.capacity or self.bytes + item.size > self.max_bytes:
            return False
        self.items.append(item)
        self.bytes += item.size
        return True

    def take(self, n: int) -> list[Item]:
        """Move up to `n` items to the in-flight batch and return it."""
        while self.items and len(self.inflight) < n:
            self.inflight.append(self.items.popleft())
        return list(self.inflight)

    def settle(self, left: Sequence[Event]) -> list[Item]:
        """The in-flight batch was written except `left`: those go back first; return the rest."""
        keep = {id(e) for e in left}
        done = [i for i in self.inflight if id(i.event) not in keep]
        self.items.extendleft(reversed([i for i in self.inflight if id(i.event) in keep]))
        self.inflight = []
        self.bytes -= sum(i.size for i in done)
        return done


async def in_thread(fn: Callable[[], T]) -> T:
    """Run `fn` in its own daemon thread (a sink wedged forever never holds up the exit)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: object) -> None:
        if fut.done():
            return
        if ok:
            fut.set_result(value)  # type: ignore[arg-type]
        else:
            fut.set_exception(value)  # type: ignore[arg-type]

    def work() -> None:
        try:
            ok, value = True, fn()
        except BaseException as exc:  # handed to the awaiting coroutine
            ok, value = False, exc  # type: ignore[assignment]
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
            loop.call_soon_threadsafe(settle, ok, value)

    threading.Thread(target=work, name="trap-sink", daemon=True).start()
    return await fut


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class Flusher:
    """Stores the queue's events in batches; acknowledges informs once theirs are durable."""

    def __init__(self, queue: PendingQueue, sink: EventSink | None, stats: SourceStats,
                 send: Callable[[bytes, Peer], None], batch: int = BATCH) -> None:
        self.queue = queue
        self.sink = sink
        self.stats = stats
        self.send = send
        self.batch = batch
        self.backoff = 0.0

    def _store(self, batch: Sequence[Item]) -> list[Event]:
        """Write a batch (poison dead-lettered); the events to retry because the sink is down."""
        if self.sink is None or not batch:
            return []
        events = [i.event for i in batch]
        try:
            left = deliver(self.sink, events, self.stats)
        except Exception:  # deliver handles sink errors; anything else must not lose the batch
            log.exception("trap delivery failed; %d events kept for retry", len(events))
            self.stats.sink_error()
            return events
        kept = {id(e) for e in left}
        for item in batch:
            if item.quarantine and id(item.event) not in kept:
                self._quarantine(item)
        return left

    def _quarantine(self, item: Item) -> None:
        """Record the raw packet of a stored event whose values had to be re-represented."""
        dl = getattr(self.sink, "dead_letter", None)
        if dl is None:
            return
        e = item.event
        try:
            raw = bytes.fromhex(e.raw)
        except ValueError:
            raw = e.raw.encode("utf-8", "replace")
        try:
            dl("snmp_trap", raw, f"quarantined: {item.quarantine}; stored as event {e.id}", e.id)
        except Exception:  # the event itself is stored: losing this record is only logged
            log.warning("could not record quarantined trap %s as a dead letter", e.id)

    def _settle(self, left: Sequence[Event]) -> int:
        for item in self.queue.settle(left):
            if item.ack is not None:
                self.send(*item.ack)
        return len(left)

    def flush_once(self) -> int:
        """Write one batch now, in this thread; return how many events are kept for retry."""
        return self._settle(self._store(self.queue.take(self.batch)))

    async def run(self, stop: asyncio.Event) -> None:
        """Write until `stop` is set and the queue is empty; back off while the sink is down."""
        while True:
            if not self.queue.items:
                if stop.is_set():
                    return
                await asyncio.sleep(INTERVAL)
                continue
            batch = self.queue.take(self.batch)
            started = time.monotonic()
            left = self._settle(await in_thread(partial(self._store, batch)))
            if not left:
                self.backoff = 0.0
                continue
            self.backoff = min(max(self.backoff * 2, BACKOFF_MIN), BACKOFF_MAX)
            log.warning("trap sink unavailable for %.1f s; %d events queued, retry in %.2f s",
                        time.monotonic() - started, self.queue.depth(), self.backoff)
            if stop.is_set():
                await asyncio.sleep(min(self.backoff, BACKOFF_MIN))
            else:
                await _sleep_or_stop(stop, self.backoff)
