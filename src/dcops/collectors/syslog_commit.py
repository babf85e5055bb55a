"""The syslog writer's second stage: a thread that publishes parsed batches to the sink.

Parsing batch n+1 overlaps the spool transaction of batch n (SQLite releases the interpreter
lock while it writes and syncs), so throughput is not the sum of both. At most one batch waits
for the committer: the parser then blocks, the connections wait for their acknowledgement, and
the kernel buffers push back on the senders. A sink that raises is handled by `deliver`
(bisection, poison dead-lettered) and a sink that is down is retried with back-off, until
`abandon` at the shutdown deadline.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dcops.collectors.health import IntakeMetrics, deliver
from dcops.model.event import Event
from dcops.model.sinks import EventSink

if TYPE_CHECKING:
    from dcops.collectors.syslog_writer import Item

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Batch:
    """What one parse cycle produced, and what to do once it is stored."""

    events: dict[str, list[Event]] = field(default_factory=dict)  # per source
    taken: dict[str, int] = field(default_factory=dict)  # messages per source
    complete: list[Item] = field(default_factory=list)  # reads whose last message is here
    oldest: dict[str, float] = field(default_factory=dict)  # read time per source


class Committer:
    """One thread storing batches in order; `on_done(batch)` runs after each one is stored."""

    def __init__(self, sink: EventSink, metrics: IntakeMetrics, legacy: Counter[str],
                 on_done: Callable[[Batch], None], finished: threading.Event) -> None:
        self.sink, self.metrics, self.legacy = sink, metrics, legacy
        self.on_done, self.finished = on_done, finished
        self._queue: queue.Queue[Batch | None] = queue.Queue(maxsize=1)
        self._abandon = threading.Event()
        self._thread = threading.Thread(target=self._run, name="syslog-commit", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def submit(self, batch: Batch | None) -> None:
        """Queue a batch (None: the last one was sent); blocks while one is already waiting."""
        self._queue.put(batch)

    def abandon(self) -> None:
        """Stop retrying a sink that is down (shutdown deadline): what is unstored is lost."""
        self._abandon.set()

    def _run(self) -> None:
        try:
            while (batch := self._queue.get()) is not None:
                if not self.store(batch.events):
                    return  # abandoned: these stay counted as read and not stored
                self.on_done(batch)
        except Exception:
            log.exception("syslog commit failed; messages read and not stored are lost")
        finally:
            self.finished.set()

    def store(self, by_source: dict[str, list[Event]]) -> bool:
        """Publish (one transaction when all goes well); retry a down sink until abandoned."""
        parts = {s: evs for s, evs in by_source.items() if evs}
        if not parts:
            return True
        try:
            self.sink.publish([e for evs in parts.values() for e in evs])
        except Exception as exc:  # bisect per source below: poison is dead-lettered
            log.warning("syslog: batch not stored at once (%s: %s)", type(exc).__name__, exc)
        else:
            for s, evs in parts.items():
                self.metrics.source(s).stored(len(evs))
            self.legacy["published"] += sum(map(len, parts.values()))
            return True
        delay = 0.05
        while parts:
            for s in list(parts):
                before = len(parts[s])
                left = deliver(self.sink, parts[s], self.metrics.source(s))
                self.legacy["published"] += before - len(left)
                if left:
                    parts[s] = left
                else:
                    del parts[s]
            if parts and self._abandon.wait(delay):
                lost = sum(map(len, parts.values()))
                log.error("syslog: sink still down at shutdown; %d events not stored", lost)
                return False
            delay = min(delay * 2, 2.0)
        return True
