"""The JetStream bus: `Bus`, `Checkpoints` and dead letters over a NATS JetStream cluster.

The API is synchronous like the SQLite spool's: every call runs a coroutine on the bus's own
event loop thread (`LoopThread`) and waits for it, so collectors and the detection runner use
either engine unchanged. Positions are stream sequences of `<PREFIX>_EVENTS`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from dcops.errors import DcopsError
from dcops.model.event import Event
from dcops.pipeline.codec import encode
from dcops.pipeline.jetstream import store
from dcops.pipeline.jetstream.config import JetStreamConfig
from dcops.pipeline.jetstream.loop import LoopThread
from dcops.pipeline.jetstream.publisher import (
    Outgoing,
    PublishTimeout,
    Refused,
    Stored,
    publish_all,
)
from dcops.pipeline.jetstream.retry import RETRYABLE, is_retryable, retrying
from dcops.pipeline.jetstream.session import Session, decode_or_keep
from dcops.pipeline.jetstream.subjects import (
    deadletter_subject,
    event_subject,
    partition_filter,
    partition_of,
    read_by_partitions,
)

T = TypeVar("T")
HEADROOM_SECONDS = 1.0  # how long a backlog measurement is trusted before measuring again
BACKPRESSURE_POLL = 0.05
DEAD_LETTER_ROOM = 4096  # bytes of a dead letter's envelope besides its raw input


class BusError(DcopsError):
    """The event bus refused an operation (configuration, permissions)."""


class BusUnavailableError(BusError, ConnectionError):
    """The event bus did not answer in time: keep the events and retry (collectors do)."""


class JetStreamBus:
    """Bus and checkpoint store on a NATS JetStream cluster (see docs/scale.md)."""

    def __init__(self, config: JetStreamConfig | str, **overrides: Any) -> None:
        cfg = JetStreamConfig.from_url(config, **overrides) if isinstance(config, str) \
            else config.with_(**overrides) if overrides else config
        self.config = cfg
        self._loop = LoopThread()
        self._session = Session(cfg)
        self._headroom = 0
        self._headroom_until = 0.0
        self._closed = False
        try:
            self._call(self._session.open(), "connect", cfg.publish_timeout + 10)
        except BusUnavailableError as exc:
            self._loop.stop()
            raise BusUnavailableError(f"{exc}{self._login_hint()}") from exc
        except BaseException:
            self._loop.stop()
            raise

    def _login_hint(self) -> str:
        """What a connection closed by the server during login usually means. nats-server writes
        its reason (-ERR 'Authorization Violation') and closes; when the client's CONNECT/PING
        arrives after that, TCP resets the connection and the reason, unread, is lost with it
        (seen under load). Say so, rather than only "connection reset"."""
        last = self._session.last_error
        if not last.startswith(("ConnectionResetError", "BrokenPipeError", "UnexpectedEOF",
                                "IncompleteReadError", "SSLEOFError")):
            return ""
        return ("; the server closed the connection during login: usually a refused user, "
                "password or client certificate (nats-server's log names the authorization "
                "error), else a server shutting down")

    # -- plumbing ---------------------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T], what: str, timeout: float | None = None) -> T:
        limit = timeout if timeout is not None else self.config.publish_timeout + 10
        try:
            return self._loop.run(coro, limit)
        except (TimeoutError, PublishTimeout) as exc:
            raise BusUnavailableError(f"{self._where()}: {what}: {str(exc) or 'timed out'}"
                                      f"{self._why()}") from exc
        except DcopsError:
            raise
        except Exception as exc:
            if _retryable(exc):
                raise BusUnavailableError(f"{self._where()}: {what}: {type(exc).__name__}: "
                                          f"{exc}{self._why()}") from exc
            raise BusError(f"{self._where()}: {what}: {type(exc).__name__}: {exc}"
                           f"{self._why()}") from exc

    def _where(self) -> str:
        return f"bus {','.join(self.config.servers)}"

    def _why(self) -> str:
        last = self._session.last_error
        return f" (last connection error: {last})" if last else ""

    def _retry(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        return self._call(retrying(fn, self.config.publish_timeout), what)

    def close(self) -> None:
        """Close readers and the connection, stop the loop thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):  # closing a lost connection has nothing to say
            self._loop.run(self._session.close(), 15)
        self._loop.stop()

    def __enter__(self) -> JetStreamBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- publishing -------------------------------------------------------------------------

    def publish(self, events: Sequence[Event]) -> None:
        """Store events (acknowledged by the stream); blocks while the backlog is full.

        Idempotent by Event.id within the duplicate window (`Nats-Msg-Id`). An event that cannot
        be stored as it is (encoding, size) goes to the dead letters; only an unreachable bus
        raises (BusUnavailableError, after `publish_timeout`).
        """
        if not events:
            return
        self._wait_for_room(len(events))
        items: list[Outgoing] = []
        sent: list[Event] = []
        poison: list[tuple[Event, str]] = []
        prefix, parts = self.config.prefix, self.config.partitions
        for e in events:
            try:
                items.append(Outgoing(event_subject(prefix, e, parts), encode(e), str(e.id)))
                sent.append(e)
            except Exception as exc:  # any encoding failure is this event's
                poison.append((e, f"{type(exc).__name__}: {exc}"))
        deadline = time.monotonic() + self.config.publish_timeout
        results = self._call(self._publish(items, sent, deadline),
                             f"publish {len(items)} events")
        poison += [(e, r.reason) for e, r in zip(sent, results, strict=True)
                   if isinstance(r, Refused)]
        for e, reason in poison:
            raw = e.raw if isinstance(e.raw, str) else repr(e.raw)
            self.dead_letter(str(e.source), raw.encode("utf-8", "replace"), reason, str(e.id))

    async def _publish(self, items: list[Outgoing], sent: list[Event],
                       deadline: float) -> list[Stored | Refused]:
        cfg = self.config
        results = await publish_all(self._session.mux, items, stream=cfg.events_stream,
                                    inflight=cfg.max_inflight, ack_timeout=cfg.ack_timeout,
                                    deadline=deadline)
        by_filter: dict[str, int] = {}
        for e, r in zip(sent, results, strict=True):
            if isinstance(r, Stored):
                f = partition_filter(cfg.prefix, partition_of(e, cfg.partitions), cfg.partitions)
                by_filter[f] = max(by_filter.get(f, 0), r.seq)
        self._session.stored([r.seq for r in results if isinstance(r, Stored)], by_filter)
        return results

    def _wait_for_room(self, n: int) -> None:
        """Backpressure: block while the slowest registered cursor lags `max_backlog` events."""
        limit = self.config.max_backlog
        if limit is None:
            return
        if self._headroom >= n and time.monotonic() < self._headroom_until:
            self._headroom -= n
            return
        while True:
            lag = self.backlog()
            if lag < limit:
                self._headroom = limit - lag - n
                self._headroom_until = time.monotonic() + HEADROOM_SECONDS
                return
            time.sleep(BACKPRESSURE_POLL)

    def backlog(self) -> int:
        """Events not yet acked by the slowest registered consumer (0 with no consumer)."""
        return self._retry("backlog", self._session.backlog)

    def count(self) -> int:
        """Events in the stream."""
        return self._retry("count", self._session.event_count)

    # -- dead letters ---------------------------------------------------------------------------

    def dead_letter(self, source: str, raw: bytes, reason: str, event_id: str = "") -> None:
        """Keep one item that could not be stored as an event, with its raw bytes and why."""
        room = max(1024, self._session.max_payload - DEAD_LETTER_ROOM)
        raw = bytes(raw)
        cut = len(raw) > room * 3 // 4
        body = json.dumps({
            "at": time.time(), "source": str(source), "event_id": str(event_id),
            "reason": str(reason)[:1000] + (" (raw input cut)" if cut else ""),
            "raw": base64.b64encode(raw[: room * 3 // 4]).decode("ascii"),
        }).encode()
        item = Outgoing(deadletter_subject(self.config.prefix, source), body, uuid.uuid4().hex)
        deadline = time.monotonic() + self.config.publish_timeout
        cfg = self.config
        self._call(publish_all(self._session.mux, [item], stream=cfg.deadletter_stream,
                               inflight=1, ack_timeout=cfg.ack_timeout, deadline=deadline),
                   "dead letter")

    def dead_letter_count(self) -> int:
        """Dead letters kept."""
        return self._retry("dead letter count", self._session.dead_letter_count)

    def dead_letters(self, limit: int = 100) -> list[dict[str, object]]:
        """The newest dead letters: time, source, event id, reason and raw bytes."""
        bodies = self._retry("dead letters", lambda: self._session.newest_dead(limit))
        out: list[dict[str, object]] = []
        for b in bodies:
            d = json.loads(b)
            out.append({"at": d["at"], "source": d["source"], "event_id": d["event_id"],
                        "reason": d["reason"], "raw": base64.b64decode(d["raw"])})
        return out

    # -- consuming ----------------------------------------------------------------------------

    def register(self, consumer: str) -> None:
        """Create a consumer cursor at the start of the stream if it does not exist."""
        self._retry("register", lambda: store.register_cursor(self._session.cursors, consumer))

    def cursor(self, consumer: str) -> int:
        """The consumer's acked position (0 if new)."""
        cur = self._retry("cursor", lambda: store.read_cursor(self._session.cursors, consumer))
        return cur.seq

    def fetch(self, consumer: str, limit: int, *, after: int | None = None
              ) -> list[tuple[int, Event]]:
        """Events after the consumer's cursor (after `after` when given: a fenced runner reads
        from where its own windows stand)."""
        return self.fetch_after(self.cursor(consumer) if after is None else after, limit)

    def fetch_after(
        self, position: int, limit: int, upto: int | None = None, *, subject_filter: str = ""
    ) -> list[tuple[int, Event]]:
        """Events after `position` (and at or before `upto`; on `subject_filter` when given),
        in order."""
        if limit <= 0 or (upto is not None and upto <= position):
            return []
        return self._retry("fetch", lambda: self._session.read(position, limit, upto,
                                                                subject_filter))

    def ack(self, consumer: str, position: int, *, subject_filter: str = "",
            owner: str | None = None) -> None:
        """Advance the cursor (never backwards); with `owner`, only while `owner` holds the
        cursor's claim (CursorTakenError otherwise)."""
        s = self._session

        async def newest(old: int, new: int) -> float | None:
            return await s.newest_ts(old, new, subject_filter)

        self._retry("ack", lambda: store.advance_cursor(
            s.cursors, s.js, self._cursor_subjects, consumer, position, newest, owner))

    def claim(self, consumer: str, owner: str) -> int:
        """Make `owner` the only writer of the cursor (acks naming another owner are refused);
        the cursor's position."""
        s = self._session
        return self._retry("claim cursor", lambda: store.claim_cursor(
            s.cursors, s.js, self._cursor_subjects, consumer, owner))

    @property
    def _cursor_subjects(self) -> str:
        return f"$KV.{self.config.cursor_bucket}."

    def last_acked_time(self, consumer: str) -> datetime | None:
        """Timestamp of the newest acked event."""
        cur = self._retry("cursor", lambda: store.read_cursor(self._session.cursors, consumer))
        if not cur.seq or cur.ts is None:
            return None
        return datetime.fromtimestamp(cur.ts, UTC)

    def replay(self, consumer: str, since: datetime, *, subject_filter: str = "") -> list[Event]:
        """Acked events with timestamp >= since, in stream order.

        Reads from publish time `since - replay_slack` (all of the stream when the slack is
        None): an event published before that whose own time is at or after `since` (a source
        clock ahead by more than the slack) is not replayed.
        """
        upto = self.cursor(consumer)
        if not upto:
            return []
        slack = self.config.replay_slack
        start = None if slack is None else since - timedelta(seconds=slack)
        bodies = self._retry("replay", lambda: self._session.scan(start, upto, subject_filter))
        out = []
        for seq, body in bodies:
            e = decode_or_keep(seq, body)  # a message not ours must not stop a replay
            if e.timestamp >= since:
                out.append(e)
        return out

    # -- partitions ---------------------------------------------------------------------------

    def partition(self, p: int) -> PartitionBus:
        """The events of partition `p` only (`partitions=` of this bus), as a `Bus`."""
        parts = self.config.partitions
        if not 0 <= p < parts:
            raise BusError(f"partition {p}: this bus has partitions={parts} (0 to {parts - 1})")
        return PartitionBus(self, partition_filter(self.config.prefix, p, parts))

    def last_position(self) -> int:
        """The newest position of the events stream."""
        return self._retry("stream info", self._session.last_seq)

    def next_position(self, after: int, subject_filter: str) -> int | None:
        """Position of the first event on `subject_filter` after `after`, as the stream leader
        holds it (None: none)."""
        return self._retry("next position",
                           lambda: self._session.next_seq(after, subject_filter))

    def stray_subjects(self) -> dict[str, int]:
        """Event subjects no partition of this bus reads, with their message counts (events
        published with another `partitions=`, or before partitioning)."""
        counts = self._retry("stream subjects", self._session.subject_counts)
        cfg = self.config
        return {s: n for s, n in sorted(counts.items())
                if not read_by_partitions(cfg.prefix, s, cfg.partitions)}

    # -- state and checkpoints -------------------------------------------------------------------

    def save_state(self, consumer: str, position: int, state: bytes) -> None:
        """Save a consumer's in-memory state as it was after handling `position`."""
        self._retry("save state", lambda: store.save_state(self._session.state, consumer,
                                                           position, state))

    def load_state(self, consumer: str) -> tuple[int, bytes] | None:
        """The last saved state and its position."""
        return self._retry("load state", lambda: store.load_state(self._session.state, consumer))

    def load_checkpoint(self, name: str) -> str | None:
        """A saved checkpoint value."""
        return self._retry("load checkpoint",
                           lambda: store.load_checkpoint(self._session.checkpoints, name))

    def save_checkpoint(self, name: str, value: str) -> None:
        """Save a checkpoint durably (replicated like the stream)."""
        self._retry("save checkpoint",
                    lambda: store.save_checkpoint(self._session.checkpoints, name, value))

    def update_checkpoint(
        self, name: str, change: Callable[[str | None], str | None]
    ) -> str | None:
        """Compare-and-set a checkpoint: `change(old)` -> new (None: unchanged); the value
        stored at the end (worker leases and group membership are built on it)."""
        s = self._session
        return self._retry("update checkpoint", lambda: store.update_checkpoint(
            s.checkpoints, s.js, f"$KV.{self.config.checkpoint_bucket}.", name, change))


class PartitionBus:
    """One partition's view of a JetStream bus: reads only `subject_filter`; cursors and state
    by name as on the bus. Positions stay stream sequences (sparse here).

    A caught-up partition moves its cursor to the stream's end as it was when it was last
    found caught up at least `IDLE_ACK_SECONDS` earlier, once the stream leader confirms it
    holds no event of the partition's subject between the cursor and that end (the reader's
    consumer may sit on a replica still catching up after a node restart, answering "nothing"
    for events the leader has), so the slowest-cursor backlog and `min(cursors)` do not stall
    on a partition with no traffic.
    """

    IDLE_ACK_SECONDS = 2.0

    def __init__(self, bus: JetStreamBus, subject_filter: str) -> None:
        self.bus, self.subject_filter = bus, subject_filter
        self._mark: tuple[float, int] | None = None  # (when, stream end) last found caught up
        self._owners: dict[str, str] = {}  # cursors this view claimed: consumer -> owner

    def fetch(self, consumer: str, limit: int, *, after: int | None = None
              ) -> list[tuple[int, Event]]:
        """Events of this partition after the consumer's cursor (after `after` when given)."""
        pos = self.bus.cursor(consumer) if after is None else after
        got = self.fetch_after(pos, limit)
        if got:
            self._mark = None
            return got
        now = time.monotonic()
        if self._mark is not None and now - self._mark[0] >= self.IDLE_ACK_SECONDS:
            end = self._mark[1]
            if end > pos:
                nxt = self.bus.next_position(pos, self.subject_filter)
                if nxt is None or nxt > end:  # the leader has none of ours in (pos, end]
                    self.ack(consumer, end)
            self._mark = None
        if self._mark is None:
            self._mark = (now, self.bus.last_position())
        return []

    def fetch_after(
        self, position: int, limit: int, upto: int | None = None
    ) -> list[tuple[int, Event]]:
        """Events of this partition after `position` (and at or before `upto`)."""
        return self.bus.fetch_after(position, limit, upto, subject_filter=self.subject_filter)

    def ack(self, consumer: str, position: int, *, owner: str | None = None) -> None:
        """Advance the cursor (never backwards); the claim's owner is named when this view
        claimed the cursor (so the idle ack in `fetch` is fenced too)."""
        self.bus.ack(consumer, position, subject_filter=self.subject_filter,
                     owner=owner if owner is not None else self._owners.get(consumer))

    def claim(self, consumer: str, owner: str) -> int:
        """Claim the cursor for `owner`; later acks through this view name it."""
        pos = self.bus.claim(consumer, owner)
        self._owners[consumer] = owner
        return pos

    def cursor(self, consumer: str) -> int:
        """The consumer's acked position."""
        return self.bus.cursor(consumer)

    def register(self, consumer: str) -> None:
        """Create the cursor at the start if it does not exist."""
        self.bus.register(consumer)

    def publish(self, events: Sequence[Event]) -> None:
        """Publish through the bus (events go to the partition of their host)."""
        self.bus.publish(events)

    def replay(self, consumer: str, since: datetime) -> list[Event]:
        """Acked events of this partition with timestamp >= since."""
        return self.bus.replay(consumer, since, subject_filter=self.subject_filter)

    def last_acked_time(self, consumer: str) -> datetime | None:
        """Timestamp of the newest acked event."""
        return self.bus.last_acked_time(consumer)

    def save_state(self, consumer: str, position: int, state: bytes) -> None:
        """Save the partition's engine state."""
        self.bus.save_state(consumer, position, state)

    def load_state(self, consumer: str) -> tuple[int, bytes] | None:
        """The partition's last saved state."""
        return self.bus.load_state(consumer)


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, RETRYABLE) and is_retryable(exc)


__all__ = ["BusError", "BusUnavailableError", "JetStreamBus", "PartitionBus"]
