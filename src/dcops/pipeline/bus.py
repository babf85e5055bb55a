"""The bus between collectors and detection: a local spool now, NATS JetStream later."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from dcops.errors import DcopsError
from dcops.model.event import Event


class CursorTakenError(DcopsError):
    """A fenced ack found the cursor claimed by another owner: the partition moved to another
    worker (this one's lease ran out while it was stalled), so this one must drop it."""

    def __init__(self, consumer: str, holder: str) -> None:
        super().__init__(f"cursor {consumer!r} is claimed by {holder or 'no one'!r}: "
                         "this worker no longer owns the partition")
        self.consumer, self.holder = consumer, holder


class Bus(Protocol):
    """Durable, ordered, at-least-once event log with named consumer cursors.

    `publish` returns only once events are durable and blocks under backpressure; an event whose
    id is already stored is ignored. Consumers `fetch` past their cursor and `ack` a position only
    after they handed the results on, so a crash re-delivers instead of losing.
    """

    def publish(self, events: Sequence[Event]) -> None:
        """Store events durably (idempotent by Event.id); block while the backlog is full."""
        ...

    def fetch(self, consumer: str, limit: int) -> list[tuple[int, Event]]:
        """Up to `limit` events after the consumer's cursor, with their positions, in order."""
        ...

    def ack(self, consumer: str, position: int) -> None:
        """Advance the consumer's cursor to `position` (everything up to it is handled)."""
        ...

    def fetch_after(
        self, position: int, limit: int, upto: int | None = None
    ) -> list[tuple[int, Event]]:
        """Events after `position` (and at or before `upto`), in order."""
        ...

    def cursor(self, consumer: str) -> int:
        """The consumer's acked position (0 if new)."""
        ...

    def save_state(self, consumer: str, position: int, state: bytes) -> None:
        """Save a consumer's in-memory state as it was after handling `position`."""
        ...

    def load_state(self, consumer: str) -> tuple[int, bytes] | None:
        """The last saved state and its position."""
        ...

    def replay(self, consumer: str, since: datetime) -> list[Event]:
        """Events already acked by the consumer whose timestamp is at or after `since`."""
        ...

    def last_acked_time(self, consumer: str) -> datetime | None:
        """Timestamp of the newest event the consumer acked, if any."""
        ...


class FencedBus(Bus, Protocol):
    """A bus whose cursors can be claimed: after `claim(consumer, owner)`, an ack that names
    another owner raises CursorTakenError instead of moving the cursor (worker groups: a worker
    stalled past its lease cannot move a cursor the partition's next owner reads from)."""

    def claim(self, consumer: str, owner: str) -> int:
        """Make `owner` the only writer of the cursor (created at 0 if new); its position."""
        ...

    def ack(self, consumer: str, position: int, *, owner: str | None = None) -> None:
        """Advance the cursor; with `owner`, only while `owner` holds the claim."""
        ...

    def fetch(self, consumer: str, limit: int, *, after: int | None = None
              ) -> list[tuple[int, Event]]:
        """Events after the consumer's cursor, or after `after` when given (a runner whose
        cursor may be moved by a new owner reads from its own position)."""
        ...


class Checkpoints(Protocol):
    """Small named values saved beside the events (file offsets of the log tailer)."""

    def load_checkpoint(self, name: str) -> str | None:
        """The saved value, or None."""
        ...

    def save_checkpoint(self, name: str, value: str) -> None:
        """Save durably."""
        ...
