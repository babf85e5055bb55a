"""Store and forward: a collector's events go to a local SQLite outbox, a thread forwards them.

A collector whose bus is remote (NATS JetStream) must keep accepting while the bus is down: it
publishes to a local outbox (a `SqliteSpool`, durable on return, so a source acknowledges its
input only once the events are on local disk), and the forwarder publishes the outbox in order to
the bus, moving its cursor (`forward`) only after the bus acknowledged. While the bus is
unreachable the outbox grows (bounded by its `max_backlog`: then the sources block) and the
forwarder retries; when the bus returns it drains. A forward interrupted between the bus's
acknowledgement and the cursor (SIGKILL) publishes the same events again: the bus deduplicates
them by event id (`Nats-Msg-Id`, within its duplicate window), so nothing is stored twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from dcops.model.event import Event
from dcops.pipeline.spool import SqliteSpool

log = logging.getLogger(__name__)
CONSUMER = "forward"  # the forwarder's cursor in the outbox


class Remote(Protocol):
    """What the forwarder needs of the remote bus."""

    def publish(self, events: Sequence[Event]) -> None:
        """Store durably (idempotent by event id); raises when unreachable."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


@dataclass(slots=True)
class ForwardStats:
    """Counters of one forwarder."""

    forwarded: int = 0
    batches: int = 0
    failures: int = 0  # publish or connect attempts the bus did not answer
    connected: bool = False
    last_error: str = ""


class StoreAndForward:
    """EventSink and checkpoint store of a collector whose bus is remote (see module doc).

    `connect()` opens the remote bus; it may raise `unavailable` (retried every `retry` seconds,
    the outbox keeps filling meanwhile) or any other error (a configuration mistake: the
    forwarder stops and `check()` raises it in the collector's thread).
    """

    def __init__(
        self,
        outbox: SqliteSpool,
        connect: Callable[[], Remote],
        *,
        unavailable: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError),
        batch: int = 1000,
        retry: float = 1.0,
        keep_seconds: float = 600.0,
        idle: float = 0.05,
    ) -> None:
        self.outbox, self._connect = outbox, connect
        self.unavailable = unavailable
        self.batch, self.retry, self.keep_seconds, self.idle = batch, retry, keep_seconds, idle
        self.stats = ForwardStats()
        self._remote: Remote | None = None
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._last_prune = 0.0
        outbox.register(CONSUMER)

    # -- the collector's side -----------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The outbox file (its /metrics open it on a connection of their own)."""
        return self.outbox.path

    def publish(self, events: Sequence[Event]) -> None:
        """Store in the outbox (durable on return; blocks while the outbox is full)."""
        self.outbox.publish(events)

    def dead_letter(self, source: str, raw: bytes, reason: str, event_id: str = "") -> None:
        """Keep what cannot be stored in the outbox's dead letters."""
        self.outbox.dead_letter(source, raw, reason, event_id)

    def dead_letter_count(self) -> int:
        """Dead letters in the outbox."""
        return self.outbox.dead_letter_count()

    def load_checkpoint(self, name: str) -> str | None:
        """A checkpoint (file offsets), kept locally beside the events it covers."""
        return self.outbox.load_checkpoint(name)

    def save_checkpoint(self, name: str, value: str) -> None:
        """Save a checkpoint in the outbox."""
        self.outbox.save_checkpoint(name, value)

    def pending(self) -> int:
        """Events in the outbox the bus has not acknowledged yet."""
        return self.outbox.backlog()

    def check(self) -> None:
        """Raise the forwarder's fatal error, if it stopped on one."""
        if self._failure is not None:
            raise self._failure

    # -- the forwarder --------------------------------------------------------------------------

    def start(self) -> None:
        """Start forwarding in a thread of its own."""
        self._thread = threading.Thread(target=self._run, name="bus-forward", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if not self.step():
                    self._stop.wait(self.idle if self.stats.connected else self.retry)
        except BaseException as exc:  # reported by check() and close()
            log.error("bus forwarder stopped: %s", exc)
            self._failure = exc

    def step(self) -> int:
        """Forward one batch; returns how many events the bus acknowledged (0: none)."""
        if self._remote is None and not self._open():
            return 0
        got = self.outbox.fetch(CONSUMER, self.batch)
        if not got:
            self._prune()
            return 0
        remote = self._remote
        if remote is None:  # closed meanwhile
            return 0
        try:
            remote.publish([e for _, e in got])
        except self.unavailable as exc:
            self._down(exc)
            return 0
        self.outbox.ack(CONSUMER, got[-1][0])
        self.stats.forwarded += len(got)
        self.stats.batches += 1
        self.stats.connected = True
        return len(got)

    def _open(self) -> bool:
        try:
            self._remote = self._connect()
        except self.unavailable as exc:
            self._down(exc)
            return False
        self.stats.connected = True
        log.info("bus forwarder: connected")
        return True

    def _down(self, exc: BaseException) -> None:
        if self.stats.connected or not self.stats.failures:
            log.warning("bus unreachable, events stay in the outbox %s: %s", self.path, exc)
        self.stats.connected = False
        self.stats.failures += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"

    def _prune(self) -> None:
        """Drop forwarded events older than `keep_seconds` (the bus's duplicate window)."""
        now = time.monotonic()
        if now - self._last_prune >= 10.0:
            self._last_prune = now
            self.outbox.prune(self.keep_seconds)

    def drain(self, seconds: float) -> int:
        """Forward what is left for at most `seconds` (stop first); returns what is still left."""
        until = time.monotonic() + seconds
        while time.monotonic() < until and self._failure is None:
            try:
                if not self.step() and (self.pending() == 0 or not self.stats.connected):
                    break
            except BaseException as exc:  # a fatal error: keep it for check()
                self._failure = exc
                break
        return self.pending()

    def stop(self, drain: float = 0.0) -> int:
        """Stop the thread, then forward for at most `drain` seconds; returns what is left
        (it stays in the outbox and goes at the next start)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(max(drain, 1.0) + 5)
            if self._thread.is_alive():  # inside a publish the bus does not answer
                return self.pending()
        return self.drain(drain) if drain > 0 else self.pending()

    def close(self, drain: float = 0.0) -> int:
        """Stop, close the bus connection and the outbox; returns events left in the outbox."""
        left = self.stop(drain)
        if self._remote is not None and (self._thread is None or not self._thread.is_alive()):
            try:
                self._remote.close()
            except Exception as exc:  # closing a lost connection has nothing to say
                log.debug("bus close: %s", exc)
        if self._thread is None or not self._thread.is_alive():
            self.outbox.close()
        return left


class ForwardMetrics:
    """A collector's store and forward on /metrics (prometheus_client Collector protocol).

    `reader` is a connection of its own to the outbox, so a scrape answers while a publish
    waits on the collector's connection.
    """

    def __init__(self, saf: StoreAndForward, reader: SqliteSpool) -> None:
        self.saf, self.reader = saf, reader

    def collect(self) -> Iterator[Metric]:
        """Outbox backlog, bus reachability, events forwarded, failed attempts."""
        st = self.saf.stats
        g = GaugeMetricFamily("dcops_bus_outbox_pending", "Events in the local outbox the bus "
                              "has not acknowledged yet (they grow while the bus is unreachable)")
        g.add_metric([], self.reader.backlog())
        yield g
        up = GaugeMetricFamily("dcops_bus_connected", "1 when the last forward or connect to "
                               "the bus succeeded")
        up.add_metric([], 1.0 if st.connected else 0.0)
        yield up
        fwd = CounterMetricFamily("dcops_bus_forwarded", "Events the bus acknowledged")
        fwd.add_metric([], st.forwarded)
        yield fwd
        bad = CounterMetricFamily("dcops_bus_forward_failures", "Connect or publish attempts "
                                  "the bus did not answer")
        bad.add_metric([], st.failures)
        yield bad
